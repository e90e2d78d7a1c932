// Single-thread micro-benchmark of the I2_S kernels, called the way i2s-cpu.c calls them
// (tiles of --tile-rows weight rows, all columns per call). Build like test_i2s_gemm.c, with -O2.
//   ncols = 1  : GB/s of packed weights streamed, "hot" (one matrix, cache resident as far as it
//                fits) and "cold" (rotating over --cold-mb of copies, i.e. from DRAM like a model)
//   ncols = 128: GOPS, counting a multiply-add as 2 ops, through the packed form where the kernel has one
//                (activations packed once, outside the timing, as the ggml glue does once per mat-mul)
// A plain read of --cold-mb with 64-bit loads gives this core's DRAM read bandwidth for comparison.
// Usage: bench_i2s_gemm [--seconds S] [--tile-rows N] [--cold-mb N] [--kernel NAME]...
#define _POSIX_C_SOURCE 200809L  // clock_gettime

#include "i2s-gemm.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

// thread CPU time: time-slices lost to other processes (e.g. a build on the same cores) do not count
static double now(void) {
    struct timespec ts;
    clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
    return (double) ts.tv_sec + 1e-9 * (double) ts.tv_nsec;
}

static void * xalloc(size_t n) {
    void * p = aligned_alloc(64, (n + 63) / 64 * 64);
    if (p == NULL) {
        fprintf(stderr, "out of memory\n");
        exit(2);
    }
    return p;
}

static uint64_t rng_state = 42;
static uint64_t rng(void) {
    rng_state ^= rng_state << 13;
    rng_state ^= rng_state >> 7;
    rng_state ^= rng_state << 17;
    return rng_state;
}

static volatile int32_t sink;  // keeps results observable

#define MANY_COLS 128

// a kernel in one of its two forms
struct form {
    const struct bitnet_i2s_kernel * kern;
    const void *                     packed;  // NULL: the plain form
};

// one pass over all M rows, as the ggml glue does it
static void pass(const struct form * f, int64_t K, int64_t M, const uint8_t * w, const int8_t * a, const int32_t * a_sum,
                 int64_t lda, int64_t ncols, int32_t * tile, int64_t tile_rows) {
    for (int64_t r0 = 0; r0 < M; r0 += tile_rows) {
        const int64_t r1 = r0 + tile_rows < M ? r0 + tile_rows : M;
        if (f->packed != NULL) {
            f->kern->gemm_packed(K, w, r0, r1, f->packed, a_sum, ncols, tile, tile_rows);
        } else {
            f->kern->gemm(K, w, r0, r1, a, a_sum, lda, ncols, tile, tile_rows);
        }
        sink = tile[0];
    }
}

// seconds per pass: the fastest of batches of >= 20 ms, repeated until min_s has elapsed (other load on
// the machine then mostly costs time, not accuracy); mats rotates over n_mats weight copies
static double time_passes(const struct form * f, int64_t K, int64_t M, uint8_t ** mats, int n_mats, const int8_t * a,
                          const int32_t * a_sum, int64_t lda, int64_t ncols, int32_t * tile, int64_t tile_rows, double min_s) {
    pass(f, K, M, mats[0], a, a_sum, lda, ncols, tile, tile_rows);  // warm-up
    long n = 0;
    double best = 1e30;
    const double t0 = now();
    do {
        long nb = 0;
        const double tb = now();
        double t;
        do {
            pass(f, K, M, mats[(++n) % n_mats], a, a_sum, lda, ncols, tile, tile_rows);
            ++nb;
            t = now() - tb;
        } while (t < 0.02);
        best = t / (double) nb < best ? t / (double) nb : best;
    } while (now() - t0 < min_s);
    return best;
}

static double dram_read_gbs(size_t bytes, double min_s) {
    uint64_t * p = xalloc(bytes);
    const size_t n = bytes / sizeof(uint64_t);
    for (size_t i = 0; i < n; ++i) {
        p[i] = i;
    }
    uint64_t s[8] = { 0 };
    long reps = 0;
    const double t0 = now();
    double t;
    do {
        for (size_t i = 0; i < n; i += 8) {
            for (int j = 0; j < 8; ++j) {
                s[j] += p[i + j];
            }
        }
        ++reps;
        t = now() - t0;
    } while (t < min_s);
    sink = (int32_t) (s[0] + s[1] + s[2] + s[3] + s[4] + s[5] + s[6] + s[7]);
    free(p);
    return (double) bytes * (double) reps / t / 1e9;
}

int main(int argc, char ** argv) {
    double min_s = 0.5;
    int64_t tile_rows = 64;
    int64_t cold_mb = 256;
    const char * only[8];
    int n_only = 0;
    for (int i = 1; i < argc; ++i) {
        if (strcmp(argv[i], "--seconds") == 0 && i + 1 < argc) {
            min_s = atof(argv[++i]);
        } else if (strcmp(argv[i], "--tile-rows") == 0 && i + 1 < argc) {
            tile_rows = atoll(argv[++i]);
        } else if (strcmp(argv[i], "--cold-mb") == 0 && i + 1 < argc) {
            cold_mb = atoll(argv[++i]);
        } else if (strcmp(argv[i], "--kernel") == 0 && i + 1 < argc && n_only < 8) {
            only[n_only++] = argv[++i];
        } else {
            fprintf(stderr, "usage: %s [--seconds S] [--tile-rows N] [--cold-mb N] [--kernel NAME]...\n", argv[0]);
            return 2;
        }
    }

    printf("DRAM read, 1 thread, plain 64-bit loads over %lld MB: %.1f GB/s\n", (long long) cold_mb,
           dram_read_gbs((size_t) cold_mb << 20, min_s));
    printf("tile rows %lld, >= %.2f s per measurement\n", (long long) tile_rows, min_s);
    printf("%-11s %5s %5s | %14s %14s | %12s\n", "kernel", "K", "M", "n=1 hot GB/s", "n=1 cold GB/s", "n=128 GOPS");

    const int nk = bitnet_i2s_n_kernels;
    const struct bitnet_i2s_kernel * kerns = bitnet_i2s_kernels;
    static const int64_t shapes[][2] = { { 2560, 2560 }, { 2560, 6912 }, { 6912, 2560 } };
    for (size_t s = 0; s < sizeof(shapes) / sizeof(shapes[0]); ++s) {
        const int64_t K = shapes[s][0], M = shapes[s][1];
        const size_t wbytes = (size_t) (M * K / 4);
        // enough distinct copies that one sweep does not fit in any cache
        const int n_cold = (int) (((size_t) cold_mb << 20) / wbytes) + 1;
        uint8_t ** mats = malloc(sizeof(uint8_t *) * (size_t) n_cold);
        for (int m = 0; m < n_cold; ++m) {
            mats[m] = xalloc(wbytes + 32);
            for (size_t i = 0; i < wbytes + 32; ++i) {  // valid codes only (0..2 in every field)
                const uint64_t x = rng();
                mats[m][i] = (uint8_t) (((x % 3) << 6) | (((x >> 8) % 3) << 4) | (((x >> 16) % 3) << 2) | ((x >> 24) % 3));
            }
        }
        const int64_t lda = (K + 63) / 64 * 64;
        int8_t * a = xalloc((size_t) (MANY_COLS * lda));
        int32_t a_sum[MANY_COLS] = { 0 };
        for (int64_t i = 0; i < MANY_COLS * lda; ++i) {
            a[i] = (int8_t) (rng() % 256 - 128);
            a_sum[i / lda] += (i % lda) < K ? a[i] : 0;
        }
        int32_t * tile = xalloc(sizeof(int32_t) * (size_t) (tile_rows * MANY_COLS));
        int8_t * packed = xalloc((size_t) (MANY_COLS * K));
        for (int i = 0; i < nk; ++i) {
            bool wanted = n_only == 0;
            for (int j = 0; j < n_only; ++j) {
                wanted |= strcmp(only[j], kerns[i].name) == 0;
            }
            if (!wanted || K % kerns[i].k_align != 0) {
                continue;
            }
            const bool slow = strcmp(kerns[i].name, "generic") == 0;
            const struct form plain = { &kerns[i], NULL };
            struct form many = plain;
            if (kerns[i].pack_cols > 0) {
                for (int64_t c0 = 0; c0 < MANY_COLS; c0 += kerns[i].pack_cols) {
                    kerns[i].pack(K, a + c0 * lda, lda, kerns[i].pack_cols, packed + c0 * K);
                }
                many.packed = packed;
            }
            const double t_hot = time_passes(&plain, K, M, mats, 1, a, a_sum, lda, 1, tile, tile_rows, min_s);
            const double t_cold = time_passes(&plain, K, M, mats, n_cold, a, a_sum, lda, 1, tile, tile_rows, min_s);
            const double t_many = slow ? 0.0 : time_passes(&many, K, M, mats, 1, a, a_sum, lda, MANY_COLS, tile, tile_rows, min_s);
            printf("%-11s %5lld %5lld | %14.2f %14.2f | %12.1f\n", kerns[i].name, (long long) K, (long long) M,
                   (double) wbytes / t_hot / 1e9, (double) wbytes / t_cold / 1e9,
                   slow ? 0.0 : 2.0 * (double) (M * K * MANY_COLS) / t_many / 1e9);
            fflush(stdout);
        }
        for (int m = 0; m < n_cold; ++m) {
            free(mats[m]);
        }
        free(mats);
        free(a);
        free(tile);
        free(packed);
    }
    return 0;
}
