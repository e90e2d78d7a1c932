// Bit-exactness check: TL1 (zip and sgn loops, scalar and NEON LUT) vs a scalar int32 reference and vs
// the project's own I2_S kernels (generic + neon [+ dotprod]) on the same ternary weights.
#include "tl1.h"
#include "i2s-gemm.h"
#include "i2s-kernels.h"
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static uint64_t rs = 0x9E3779B97F4A7C15ull;
static uint32_t rnd(void) { rs ^= rs << 13; rs ^= rs >> 7; rs ^= rs << 17; return (uint32_t) (rs >> 11); }

static void i2s_pack(const int8_t * t, int64_t M, int64_t K, uint8_t * w) {  // docs/formats.md §2
    memset(w, 0, M * K / 4 + 32);
    for (int64_t g = 0; g < M * K; ++g) {
        const int64_t b = g / 128, e = g % 128;
        w[32 * b + e % 32] |= (uint8_t) ((t[g] + 1) << (6 - 2 * (e / 32)));
    }
}

static int check(const char * what, const int32_t * got, const int32_t * want, int64_t M) {
    for (int64_t r = 0; r < M; ++r)
        if (got[r] != want[r]) { printf("  MISMATCH %s row %lld: %d != %d\n", what, (long long) r, got[r], want[r]); return 1; }
    return 0;
}

int main(void) {
    static const int64_t Ks[] = { 64, 194, 256, 320, 2560, 6912, 8640 };
    int fails = 0, cases = 0;
    for (int mode = 0; mode < 5; ++mode)  // 0 random, 1 all +127 & w=+1, 2 all -127 & w=+1, 3 +-127 & w=-1, 4 random extremes
        for (size_t ki = 0; ki < sizeof Ks / sizeof Ks[0]; ++ki) {
            const int64_t K = Ks[ki], M = 96;
            int8_t * t = malloc(M * K), * a = malloc(K), * lut = malloc(16 * K), * lut2 = malloc(16 * K);
            uint8_t * w = malloc(M * K / 4), * wi = malloc(M * K / 4 + 32);
            int32_t ref[96], o[96], asum = 0;
            for (int64_t k = 0; k < K; ++k) {
                a[k] = mode == 0 ? (int8_t) ((int) (rnd() % 255) - 127) : mode == 1 ? 127 : mode == 2 ? -127
                     : mode == 3 ? (k & 1 ? 127 : -127) : (rnd() & 1 ? 127 : -127);
                asum += a[k];
            }
            for (int64_t g = 0; g < M * K; ++g)
                t[g] = mode == 0 || mode == 4 ? (int8_t) ((int) (rnd() % 3) - 1) : mode == 3 ? (g & 1 ? -1 : 1) : 1;
            tl1_gemv_ref(t, a, M, K, ref);
            tl1_pack(t, M, K, w);
            tl1_build_lut_ref(a, K, lut);
            if (K % 16 == 0) tl1_build_lut_neon(a, K, lut2); else memcpy(lut2, lut, 16 * K);
            cases++;
            if (memcmp(lut, lut2, 16 * K)) { printf("  LUT neon != ref K=%lld\n", (long long) K); fails++; }
            tl1_gemv_zip(K, w, lut, M, o); fails += check("tl1_zip", o, ref, M);
            tl1_gemv_sgn(K, w, lut, M, o); fails += check("tl1_sgn", o, ref, M);
            tl1_gemv_sgn2(K, w, lut, M, o); fails += check("tl1_sgn2", o, ref, M);
            i2s_pack(t, M, K, wi);
            bitnet_i2s_gemm_generic(K, wi, 0, M, a, &asum, K, 1, o, M); fails += check("i2s_generic", o, ref, M);
            if (K % 64 == 0) { bitnet_i2s_gemm_neon(K, wi, 0, M, a, &asum, K, 1, o, M); fails += check("i2s_neon", o, ref, M); }
#ifdef BITNET_I2S_HAVE_DOTPROD
            if (K % 64 == 0) { bitnet_i2s_gemm_dotprod(K, wi, 0, M, a, &asum, K, 1, o, M); fails += check("i2s_dotprod", o, ref, M); }
#endif
            free(t); free(a); free(lut); free(lut2); free(w); free(wi);
        }
#ifdef BITNET_I2S_HAVE_DOTPROD
    const char * kset = "tl1_zip tl1_sgn tl1_sgn2 lut_neon(K%%16==0) i2s_generic i2s_neon i2s_dotprod";
#else
    const char * kset = "tl1_zip tl1_sgn tl1_sgn2 lut_neon(K%%16==0) i2s_generic i2s_neon";
#endif
    printf("%d cases (M=96, K in {64,194,256,320,2560,6912,8640}; I2_S SIMD only K%%64==0, random + worst-case |sum| 254*K/2), kernels [%s]: %s\n", cases, kset,
           fails ? "FAIL" : "all bit-exact vs scalar int32 reference");
    return fails != 0;
}
