// pp (N = 128) estimate: I2_S packed vpdpbusd GEMM per token vs the extra cost of decoding TL2b to int8 codes.
#define _GNU_SOURCE
#include "i2s-gemm.h"
#include "tl2.h"
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
void tl2b_decode_block(const uint8_t * p, int64_t nb, uint8_t * dst);
static double now(void) { struct timespec ts; clock_gettime(CLOCK_MONOTONIC, &ts); return ts.tv_sec + 1e-9 * ts.tv_nsec; }
static uint64_t rs = 12345;
static uint64_t rng(void) { rs ^= rs << 13; rs ^= rs >> 7; rs ^= rs << 17; return rs; }
int main(int argc, char ** argv) {
    const int64_t K = argc > 1 ? atoll(argv[1]) : 4096, M = argc > 2 ? atoll(argv[2]) : 4096, N = 128;
    const double sec = 1.0;
    tl2_init();
    const struct bitnet_i2s_kernel * kern = bitnet_i2s_kernel_find("avx512vnni");
    uint8_t * w = aligned_alloc(64, M * K / 4 + 64);
    for (int64_t i = 0; i < M * K / 4; ++i) { uint64_t x = rng(); w[i] = ((x % 3) << 6) | (((x >> 8) % 3) << 4) | (((x >> 16) % 3) << 2) | ((x >> 24) % 3); }
    int8_t * a = aligned_alloc(64, N * K); int32_t as[128] = { 0 };
    for (int64_t i = 0; i < N * K; ++i) { a[i] = (int8_t) (rng() % 255 - 127); as[i / K] += a[i]; }
    int8_t * pk = aligned_alloc(64, N * K);
    for (int c = 0; c < N; c += 16) kern->pack(K, a + c * K, K, 16, pk + c * K);
    int32_t * tile = aligned_alloc(64, 64 * 128 * 4);
    int n = 0; double t0 = now();
    do { for (int64_t r0 = 0; r0 < M; r0 += 64) kern->gemm_packed(K, w, r0, r0 + 64, pk, as, N, tile, 64); ++n; } while (now() - t0 < sec);
    const double t_i2s = (now() - t0) / n;
    // TL2b weights of the same shape (content irrelevant for the cost), decoded block by block into an L1 buffer
    int8_t * t = malloc(M * K); for (int64_t i = 0; i < M * K; ++i) t[i] = (int8_t) (rng() % 3) - 1;
    uint8_t * tw = aligned_alloc(64, tl2b_bytes(M, K) + 64);
    tl2b_pack(t, M, K, tw);
    uint8_t * buf = aligned_alloc(64, 64 * 256 * 3);
    const int64_t G = tl2_groups(K);
    n = 0; t0 = now();
    do {
        const uint8_t * p = tw;
        for (int64_t r0 = 0; r0 < M; r0 += 64)
            for (int64_t g0 = 0; g0 < G; g0 += TL2_BK) { const int64_t nb = G - g0 < TL2_BK ? G - g0 : TL2_BK; tl2b_decode_block(p, nb, buf); p += nb * 40; }
        ++n;
    } while (now() - t0 < sec);
    const double t_dec = (now() - t0) / n;
    printf("K=%ld M=%ld N=%d, 1 thread, weights hot: I2_S packed GEMM %.3f ms = %.1f GOPS = %.4f ms/token; "
           "TL2b->int8 decode %.3f ms per pass (%.4f ns/weight) = %.4f ms/token at N=128 (+%.1f%% if added to I2_S's GEMM)\n",
           K, M, (int) N, t_i2s * 1e3, 2.0 * M * K * N / t_i2s / 1e9, t_i2s * 1e3 / N, t_dec * 1e3, t_dec * 1e9 / (M * K), t_dec * 1e3 / N, 100 * t_dec / t_i2s);
    return 0;
}
