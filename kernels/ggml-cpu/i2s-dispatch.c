// Chooses the I2_S kernel for this build's CPU features. Arch-specific kernels register here
// (see arch/x86 and arch/arm); the generic kernel is the fallback and the test oracle.
#include "i2s-gemm.h"
#include "i2s-kernels.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

// fastest first: select() takes the first entry that handles K
static const struct bitnet_i2s_kernel kernels[] = {
#ifdef BITNET_I2S_HAVE_AVX512VNNI
    { "avx512vnni", bitnet_i2s_gemm_avx512vnni, BITNET_I2S_SIMD_K_ALIGN,
      BITNET_I2S_AVX512_PACK_COLS, bitnet_i2s_pack_avx512vnni, bitnet_i2s_gemm_packed_avx512vnni },
#endif
#ifdef BITNET_I2S_HAVE_AVXVNNI
    { "avxvnni",    bitnet_i2s_gemm_avxvnni,    BITNET_I2S_SIMD_K_ALIGN, 0, NULL, NULL },
#endif
#ifdef BITNET_I2S_HAVE_AVX2
    { "avx2",       bitnet_i2s_gemm_avx2,       BITNET_I2S_SIMD_K_ALIGN, 0, NULL, NULL },
#endif
#ifdef BITNET_I2S_HAVE_DOTPROD
    { "dotprod",    bitnet_i2s_gemm_dotprod,    BITNET_I2S_SIMD_K_ALIGN, 0, NULL, NULL },
#endif
#ifdef BITNET_I2S_HAVE_NEON
    { "neon",       bitnet_i2s_gemm_neon,       BITNET_I2S_SIMD_K_ALIGN, 0, NULL, NULL },
#endif
    { "generic",    bitnet_i2s_gemm_generic,    1,                       0, NULL, NULL },
};
#define N_KERNELS ((int) (sizeof(kernels) / sizeof(kernels[0])))

const struct bitnet_i2s_kernel * bitnet_i2s_gemm_kernels(int * n) {
    *n = N_KERNELS;
    return kernels;
}

static bool handles(const struct bitnet_i2s_kernel * k, int64_t K) {
    return K > 0 && K % k->k_align == 0;
}

// BITNET_I2S_KERNEL=<name> (generic, avx2, ...) forces a kernel for tests and debugging; a name
// that is not compiled in, or a kernel that cannot do this K, falls back to the normal choice
// (never to a wrong result). Read on every call so tests can switch it; getenv is cheap next to
// a matmul.
static const struct bitnet_i2s_kernel * choose(int64_t K) {
    const char * want = getenv("BITNET_I2S_KERNEL");
    if (want != NULL && *want != '\0') {
        bool known = false;
        for (int i = 0; i < N_KERNELS; ++i) {
            if (strcmp(kernels[i].name, want) == 0) {
                known = true;
                if (handles(&kernels[i], K)) {
                    return &kernels[i];
                }
            }
        }
        if (!known) {
            static bool warned = false;  // one line per process is enough; a racy double print is harmless
            if (!warned) {
                warned = true;
                fprintf(stderr, "bitnet: BITNET_I2S_KERNEL=%s is not compiled into this build; using the default\n", want);
            }
        }
    }
    for (int i = 0; i < N_KERNELS; ++i) {
        if (handles(&kernels[i], K)) {
            return &kernels[i];
        }
    }
    return &kernels[N_KERNELS - 1];
}

const struct bitnet_i2s_kernel * bitnet_i2s_kernel_select(int64_t K) {
    return choose(K);
}

const char * bitnet_i2s_gemm_name(int64_t K) {
    return choose(K)->name;
}

// by the ISA this translation unit is built for (one ggml-cpu variant per ISA level)
void bitnet_i2s_quantize_activations(const float * x, int8_t * q, int64_t K, float * scale, int32_t * sum) {
#if defined(BITNET_I2S_HAVE_AVX512VNNI)
    bitnet_i2s_quantize_activations_avx512(x, q, K, scale, sum);
#elif defined(BITNET_I2S_HAVE_AVX2)
    bitnet_i2s_quantize_activations_avx2(x, q, K, scale, sum);
#elif defined(BITNET_I2S_HAVE_NEON)
    bitnet_i2s_quantize_activations_neon(x, q, K, scale, sum);
#else
    bitnet_i2s_quantize_activations_generic(x, q, K, scale, sum);
#endif
}
