// Times the TL2 one-token path (table + lookup GEMV) of this build's AVX-512 kernels on one weight shape, reading
// weights from DRAM as generation does (rotating over copies larger than the caches). setup_env.py's autotune
// (bitnet_gguf/setup/tl_autotune.py) compiles it once per candidate of the generated header's tuned parameters.
// Usage: tl2-tune K M [megabytes of copies] [calls]; prints "ns_per_call <median of 5 runs>".
#define _POSIX_C_SOURCE 199309L
#include "tl2-gemm.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

static double now_ns(void) {
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return t.tv_sec * 1e9 + t.tv_nsec;
}

static int cmp(const void * a, const void * b) {
    const double x = *(const double *) a, y = *(const double *) b;
    return x < y ? -1 : x > y;
}

int main(int argc, char ** argv) {
#ifndef BITNET_TL2_HAVE_AVX512
    (void) argc;
    (void) argv;
    fprintf(stderr, "tl2-tune: this build has no AVX-512 TL2 kernel to tune\n");
    return 2;
#else
    if (argc < 3) {
        fprintf(stderr, "usage: %s K M [megabytes] [calls]\n", argv[0]);
        return 2;
    }
    const int64_t K = atoll(argv[1]), M = atoll(argv[2]);
    const double mb = argc > 3 ? atof(argv[3]) : 512.0;
    const int calls = argc > 4 ? atoi(argv[4]) : 200;
    const size_t nbytes = bitnet_tl2_nbytes(K, M);
    const int copies = (int) (mb * 1e6 / (double) nbytes) + 1;

    int8_t * t = malloc((size_t) (K * M));
    uint8_t * w = aligned_alloc(64, (nbytes + 63) / 64 * 64 * (size_t) copies);
    int8_t * a = aligned_alloc(64, (size_t) bitnet_tl2_act_len(K));
    uint8_t * table = aligned_alloc(64, bitnet_tl2_table_bytes(K));
    int32_t * out = aligned_alloc(64, (size_t) bitnet_tl2_tiles(M) * 64 * sizeof(int32_t));
    if (!t || !w || !a || !table || !out) {
        fprintf(stderr, "tl2-tune: out of memory\n");
        return 2;
    }
    srand(1);
    for (int64_t i = 0; i < K * M; ++i) {
        t[i] = (int8_t) (rand() % 3 - 1);
    }
    const size_t stride = (nbytes + 63) / 64 * 64;
    bitnet_tl2_pack(t, K, M, 1.0f, w);
    for (int c = 1; c < copies; ++c) {
        memcpy(w + c * stride, w, nbytes);
    }
    memset(a, 0, (size_t) bitnet_tl2_act_len(K));
    for (int64_t k = 0; k < K; ++k) {
        a[k] = (int8_t) (rand() % 255 - 127);
    }

    double runs[5];
    for (int r = 0; r < 5; ++r) {
        const double t0 = now_ns();
        for (int i = 0; i < calls; ++i) {
            bitnet_tl2_table_avx512(a, K, table);
            bitnet_tl2_gemv_avx512(K, w + (size_t) ((r * calls + i) % copies) * stride, 0, bitnet_tl2_tiles(M), table, out);
        }
        runs[r] = (now_ns() - t0) / calls;
    }
    qsort(runs, 5, sizeof(runs[0]), cmp);
    printf("ns_per_call %.0f\n", runs[2]);
    return 0;
#endif
}
