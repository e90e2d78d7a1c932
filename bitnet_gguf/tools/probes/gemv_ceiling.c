// Compute ceiling of the N = 1 mat-muls of token generation: GB/s of weight bytes that a GEMV turns, per thread,
// with the weights in cache ("hot": a slice that fits L2, read over and over) or streamed from memory ("cold":
// rotating over a buffer several times the last-level cache). Each type is called the way the graph calls it:
//   i2_s:  the build's preferred I2_S kernel (quantize the activations once, gemm over 64-row tiles, as i2s-cpu.c);
//   any other ggml type (q6_k, the lm_head's; f16, q8_0, tq2_0...): ggml-cpu's vec_dot against the activations
//          converted to its vec_dot_type, one row at a time with the prefetch of patch 0026 (ggml's mul_mat for one
//          column).
// Threads run their own row slices side by side; the total is printed as JSON on one line.
// usage: gemv_ceiling TYPE K HOT_KIB COLD_MIB THREADS SECONDS   (COLD_MIB 0: hot only)
#define _GNU_SOURCE

#include "bitnet-prefetch.h"
#include "ggml-cpu.h"
#include "ggml.h"
#include "i2s-gemm.h"

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

static double now(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double) ts.tv_sec + 1e-9 * (double) ts.tv_nsec;
}

static void * xalloc(size_t n) {
    void * p = aligned_alloc(64, (n + 63) / 64 * 64);
    if (p == NULL) {
        fprintf(stderr, "error: cannot allocate %zu bytes\n", n);
        exit(1);
    }
    memset(p, 0, (n + 63) / 64 * 64);
    return p;
}

static float frand(uint64_t * s) {
    *s ^= *s << 13;
    *s ^= *s >> 7;
    *s ^= *s << 17;
    return (float) (*s >> 40) / (float) (1 << 24) * 2.0f - 1.0f;
}

#define I2S GGML_TYPE_COUNT  // our kernel, not ggml's I2_S vec_dot trait

struct job {
    int             kind;  // a ggml type, or I2S
    int64_t         K, row_bytes, rows;  // rows of this thread's matrix
    const uint8_t * w;
    const float *   x;                   // K activations
    double          seconds, bytes;      // out: bytes of weights turned
    pthread_barrier_t * start;
};

static volatile float sink;

static void * run(void * arg) {
    struct job * j = arg;
    float * out = xalloc(sizeof(float) * 64);
    const int64_t K = j->K;
    double bytes = 0.0;
    pthread_barrier_wait(j->start);
    const double t0 = now();
    if (j->kind == I2S) {
        const struct bitnet_i2s_kernel * kern = bitnet_i2s_kernel_get(K);
        int8_t * qa = xalloc((size_t) K);
        int32_t tile[64];
        do {
            float sa;
            int32_t suma;
            kern->quantize_activations(j->x, qa, K, &sa, &suma);
            for (int64_t r0 = 0; r0 < j->rows; r0 += 64) {
                const int64_t r1 = r0 + 64 < j->rows ? r0 + 64 : j->rows;
                kern->gemm(K, j->w, r0, r1, qa, &suma, K, 1, tile, 64);
                for (int64_t i = 0; i < r1 - r0; ++i) {
                    out[i] = (float) tile[i] / sa;
                }
            }
            bytes += (double) j->rows * (double) j->row_bytes;
        } while (now() - t0 < j->seconds);
        free(qa);
    } else {
        const struct ggml_type_traits_cpu * tw = ggml_get_type_traits_cpu((enum ggml_type) j->kind);
        const struct ggml_type_traits_cpu * ta = ggml_get_type_traits_cpu(tw->vec_dot_type);
        void * qa = xalloc(ggml_row_size(tw->vec_dot_type, K));
        do {
            if (tw->vec_dot_type == GGML_TYPE_F32) {
                memcpy(qa, j->x, sizeof(float) * (size_t) K);
            } else {
                ta->from_float(j->x, qa, K);
            }
            for (int64_t r = 0; r < j->rows; ++r) {
                bitnet_prefetch_ahead(j->w + r * j->row_bytes, (size_t) j->row_bytes);
                tw->vec_dot((int) K, &out[r % 64], 0, j->w + r * j->row_bytes, 0, qa, 0, 1);
            }
            bytes += (double) j->rows * (double) j->row_bytes;
        } while (now() - t0 < j->seconds);
        free(qa);
    }
    j->seconds = now() - t0;
    j->bytes = bytes;
    sink = out[0];
    free(out);
    return NULL;
}

// GB/s of `threads` threads, each over its own matrix of `rows` rows (the same bytes for every thread)
static double measure(int kind, int64_t K, int64_t row_bytes, const uint8_t * w, int64_t rows, int64_t stride,
                      const float * x, int threads, double seconds) {
    pthread_barrier_t start;
    pthread_barrier_init(&start, NULL, (unsigned) threads);
    struct job * jobs = calloc((size_t) threads, sizeof(struct job));
    pthread_t * tids = calloc((size_t) threads, sizeof(pthread_t));
    for (int t = 0; t < threads; ++t) {
        jobs[t] = (struct job) { kind, K, row_bytes, rows, w + (size_t) t * (size_t) stride, x, seconds, 0.0, &start };
        pthread_create(&tids[t], NULL, run, &jobs[t]);
    }
    double gbs = 0.0;
    for (int t = 0; t < threads; ++t) {
        pthread_join(tids[t], NULL);
        gbs += jobs[t].bytes / jobs[t].seconds / 1e9;
    }
    pthread_barrier_destroy(&start);
    free(jobs);
    free(tids);
    return gbs;
}

int main(int argc, char ** argv) {
    if (argc != 7) {
        fprintf(stderr, "usage: %s TYPE K HOT_KIB COLD_MIB THREADS SECONDS\n", argv[0]);
        return 2;
    }
    int kind = -1;
    for (int t = 0; t < GGML_TYPE_COUNT; ++t) {
        const struct ggml_type_traits_cpu * tc = ggml_get_type_traits_cpu((enum ggml_type) t);
        if (ggml_type_name((enum ggml_type) t) != NULL && strcasecmp(argv[1], ggml_type_name((enum ggml_type) t)) == 0) {
            kind = t == GGML_TYPE_I2_S ? I2S : tc->vec_dot != NULL && ggml_blck_size((enum ggml_type) t) > 0 ? t : -1;
        }
    }
    const int64_t K = atoll(argv[2]);
    const int64_t hot_kib = atoll(argv[3]), cold_mib = atoll(argv[4]);
    const int threads = atoi(argv[5]);
    const double seconds = atof(argv[6]);
    if (kind < 0 || K <= 0 || K % 256 != 0 || hot_kib <= 0 || cold_mib < 0 || threads < 1 || seconds <= 0) {
        fprintf(stderr, "error: expected i2_s or a ggml type with a vec_dot, K a positive multiple of 256, HOT_KIB > 0, COLD_MIB >= 0, "
                        "THREADS >= 1, SECONDS > 0\n");
        return 2;
    }
    ggml_cpu_init();
    const int64_t row_bytes = kind == I2S ? K / 4 : (int64_t) ggml_row_size((enum ggml_type) kind, K);
    const int64_t hot_rows = (hot_kib * 1024 / row_bytes + 63) / 64 * 64;
    uint64_t seed = 42;

    // one hot matrix of valid weights: random ternary codes for I2_S, quantized random floats for the others
    const size_t hot_bytes = (size_t) (hot_rows * row_bytes);
    uint8_t * hot = xalloc(hot_bytes);
    if (kind == I2S) {
        for (size_t i = 0; i < hot_bytes; ++i) {
            uint8_t b = 0;
            for (int f = 0; f < 4; ++f) {
                b = (uint8_t) (b << 2 | (uint8_t) ((frand(&seed) + 1.0f) * 1.5f) % 3);
            }
            hot[i] = b;
        }
    } else {
        float * f = xalloc(sizeof(float) * (size_t) (hot_rows * K));
        for (int64_t i = 0; i < hot_rows * K; ++i) {
            f[i] = frand(&seed);
        }
        ggml_quantize_chunk((enum ggml_type) kind, f, hot, 0, hot_rows, K, NULL);
        free(f);
    }
    float * x = xalloc(sizeof(float) * (size_t) K);
    for (int64_t k = 0; k < K; ++k) {
        x[k] = frand(&seed);
    }

    // hot: every thread reads its own copy, so two threads do not share one core's cache lines
    uint8_t * hot_all = xalloc(hot_bytes * (size_t) threads);
    for (int t = 0; t < threads; ++t) {
        memcpy(hot_all + (size_t) t * hot_bytes, hot, hot_bytes);
    }
    const double hot_gbs = measure(kind, K, row_bytes, hot_all, hot_rows, (int64_t) hot_bytes, x, threads, seconds);

    double cold_gbs = 0.0;
    if (cold_mib > 0) {
        // cold: each thread streams its slice of one big matrix (copies of the hot one) from memory
        const int64_t slice_rows = (cold_mib * 1024 * 1024 / threads / row_bytes) / hot_rows * hot_rows;
        const size_t slice = (size_t) (slice_rows * row_bytes);
        uint8_t * cold = xalloc(slice * (size_t) threads);
        for (size_t off = 0; off < slice * (size_t) threads; off += hot_bytes) {
            memcpy(cold + off, hot, hot_bytes);
        }
        cold_gbs = measure(kind, K, row_bytes, cold, slice_rows, (int64_t) slice, x, threads, seconds);
        free(cold);
    }
    printf("{\"kind\": \"%s\", \"K\": %lld, \"threads\": %d, \"hot_kib\": %lld, \"hot_gbs\": %.3f, \"cold_mib\": %lld, "
           "\"cold_gbs\": %.3f}\n", argv[1], (long long) K, threads, (long long) (hot_bytes / 1024), hot_gbs,
           (long long) cold_mib, cold_gbs);
    free(hot_all);
    free(hot);
    free(x);
    return 0;
}
