// TL2 prototype vs the project's I2_S kernel: correctness + interleaved GEMV timing (N = 1).
//   ./bench check                 bit-exactness vs scalar reference
//   ./bench time [rounds] [sec]   interleaved rounds: bandwidth probe, then every (shape, threads, cold/hot, format)
//   ./bench one FMT SHAPE NTH MODE SEC   a single loop (for perf stat); FMT i2s|tl2b|tl2w, SHAPE 0..3, MODE cold|hot
#define _GNU_SOURCE
#include "i2s-gemm.h"
#include "tl2.h"

#include <immintrin.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

static double now(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec + 1e-9 * ts.tv_nsec;
}
static void * xalloc(size_t n) {
    void * p = aligned_alloc(64, (n + 127) / 64 * 64 + 64);
    if (!p) { fprintf(stderr, "oom\n"); exit(2); }
    memset(p, 0, (n + 127) / 64 * 64 + 64);
    return p;
}
static uint64_t rs = 88172645463325252ull;
static uint64_t rng(void) { rs ^= rs << 13; rs ^= rs >> 7; rs ^= rs << 17; return rs; }

// ---------------- weights in the three formats --------------------------------------------------------
static void i2s_pack(const int8_t * t, int64_t M, int64_t K, uint8_t * w) {
    const int64_t n = M * K;
    memset(w, 0, (size_t) (n / 4 + 32));
    for (int64_t g = 0; g < n; ++g) {
        const int64_t b = g / 128, e = g % 128;
        w[32 * b + e % 32] |= (uint8_t) ((t[g] + 1) << (6 - 2 * (e / 32)));
    }
}

enum { F_I2S, F_TL2B, F_TL2W, F_TL2A, NF };
static const char * fname[NF] = { "I2_S", "TL2b", "TL2w", "TL2a" };
#ifdef __AVX512BW__
static int have_fmt(int f) { (void) f; return 1; }
#else
static int have_fmt(int f) { return f == F_I2S || f == F_TL2A; }
#define tl2w_groups(K) ((K + 8) / 9 * 3)
#define tl2b_bytes(M, K) 0
#define tl2w_bytes(M, K) 0
#define tl2b_pack(...) abort()
#define tl2w_pack(...) abort()
#define tl2b_table_range(...) abort()
#define tl2w_table_range(...) abort()
#define tl2b_gemv(...) abort()
#define tl2w_gemv(...) abort()
#define tl2_init() ((void) 0)
#endif

static size_t fmt_bytes(int f, int64_t M, int64_t K) {
    return f == F_I2S ? (size_t) (M * K / 4 + 32) : f == F_TL2B ? tl2b_bytes(M, K) : f == F_TL2W ? tl2w_bytes(M, K) : tl2a_bytes(M, K);
}
static void fmt_pack(int f, const int8_t * t, int64_t M, int64_t K, uint8_t * w) {
    if (f == F_I2S) i2s_pack(t, M, K, w);
    else if (f == F_TL2B) tl2b_pack(t, M, K, w);
    else if (f == F_TL2W) tl2w_pack(t, M, K, w);
    else tl2a_pack(t, M, K, w);
}

static const struct bitnet_i2s_kernel * KI2S;

// ---------------- thread pool: worker threads spin on a generation counter ----------------------------
struct job {
    int f; int64_t M, K; const uint8_t * w; const int8_t * q; int32_t qsum; uint8_t * T; int32_t * out;
};
static struct job J;
static int NTH = 1;
static atomic_int gen, done_cnt, tbl_cnt;
static atomic_int quit;
static int gen_at_start;

static void barrier_tbl(int nth) {  // counting barrier for the table build (tbl_cnt reset before dispatch)
    atomic_fetch_add(&tbl_cnt, 1);
    while (atomic_load(&tbl_cnt) < nth) _mm_pause();
}

static void run_part(int ith, int nth) {
    const int64_t M = J.M, K = J.K;
    if (J.f == F_I2S) {
        const int64_t rpt = ((M + nth - 1) / nth + 15) / 16 * 16;
        const int64_t rb = ith * rpt < M ? ith * rpt : M, re = rb + rpt < M ? rb + rpt : M;
        for (int64_t r0 = rb; r0 < re; r0 += 64) {
            const int64_t r1 = r0 + 64 < re ? r0 + 64 : re;
            KI2S->gemm(K, J.w, r0, r1, J.q, &J.qsum, 0, 1, J.out + r0, 64);
        }
        return;
    }
    // TL2: table built in parallel (chunks of 10 groups), barrier, then row tiles split
    const int64_t G = J.f == F_TL2W ? tl2w_groups(K) : tl2_groups(K);
    const int64_t nch = (G + 9) / 10;
    const int64_t c0 = nch * ith / nth, c1 = nch * (ith + 1) / nth;
    if (J.f == F_TL2B) tl2b_table_range(J.q, 10 * c0, 10 * c1, J.T);
    else if (J.f == F_TL2W) tl2w_table_range(J.q, 10 * c0, 10 * c1, J.T);
    else tl2a_table_range(J.q, 10 * c0, 10 * c1 < G ? 10 * c1 : G, J.T);
    if (nth > 1) barrier_tbl(nth);
    const int64_t bm = J.f == F_TL2A ? 32 : 64;
    const int64_t nt = (M + bm - 1) / bm;
    const int64_t t0 = nt * ith / nth, t1 = nt * (ith + 1) / nth;
    if (J.f == F_TL2B) tl2b_gemv(K, J.w, t0, t1, J.T, J.out + t0 * 64);
    else if (J.f == F_TL2W) tl2w_gemv(K, J.w, t0, t1, J.T, J.out + t0 * 64);
    else tl2a_gemv(K, J.w, t0, t1, J.T, J.out + t0 * 32);
}

static void * worker(void * arg) {
    const int ith = (int) (intptr_t) arg;
    int seen = gen_at_start;  // the generation when the pool started: no job is pending
    for (;;) {
        int g;
        while ((g = atomic_load(&gen)) == seen) {
            if (atomic_load(&quit)) return NULL;
            _mm_pause();
        }
        seen = g;
        run_part(ith, NTH);
        atomic_fetch_add(&done_cnt, 1);
    }
}
static pthread_t workers[8];

static void pool_start(int nth) {
    NTH = nth;
    atomic_store(&quit, 0);
    gen_at_start = atomic_load(&gen);
    for (int i = 1; i < nth; ++i) pthread_create(&workers[i], NULL, worker, (void *) (intptr_t) i);
}
static void pool_stop(void) {
    atomic_store(&quit, 1);
    for (int i = 1; i < NTH; ++i) pthread_join(workers[i], NULL);
    NTH = 1;
}
static void gemv(void) {
    if (NTH == 1) { run_part(0, 1); return; }
    atomic_store(&tbl_cnt, 0);
    atomic_store(&done_cnt, 0);
    atomic_fetch_add(&gen, 1);
    run_part(0, NTH);
    while (atomic_load(&done_cnt) < NTH - 1) _mm_pause();
}

// ---------------- bandwidth probe ------------------------------------------------------------------
static uint8_t * probe_buf;
static size_t probe_len = (size_t) 1 << 30;
static atomic_llong probe_sink;
static void * probe_part(void * arg) {
    const int ith = (int) (intptr_t) arg;
    const size_t n = probe_len / 64 / 2;
    const __m256i * p = (const __m256i *) probe_buf + 2 * (ith ? n : 0);
    __m256i s0 = _mm256_setzero_si256(), s1 = s0, s2 = s0, s3 = s0;
    const size_t cnt = 2 * (NTH == 1 ? 2 * n : n);
    for (size_t i = 0; i < cnt; i += 4) {
        s0 = _mm256_add_epi64(s0, _mm256_load_si256(p + i));
        s1 = _mm256_add_epi64(s1, _mm256_load_si256(p + i + 1));
        s2 = _mm256_add_epi64(s2, _mm256_load_si256(p + i + 2));
        s3 = _mm256_add_epi64(s3, _mm256_load_si256(p + i + 3));
    }
    s0 = _mm256_add_epi64(_mm256_add_epi64(s0, s1), _mm256_add_epi64(s2, s3));
    atomic_fetch_add(&probe_sink, _mm256_extract_epi64(s0, 0) + _mm256_extract_epi64(s0, 3));
    return NULL;
}
static double probe(int nth) {
    if (!probe_buf) {
        probe_buf = xalloc(probe_len);
        for (size_t i = 0; i < probe_len; i += 4096) probe_buf[i] = (uint8_t) i;
    }
    double best = 0;
    for (int rep = 0; rep < 3; ++rep) {
        const double t0 = now();
        NTH = nth;
        pthread_t th;
        if (nth == 2) pthread_create(&th, NULL, probe_part, (void *) 1);
        probe_part((void *) 0);
        if (nth == 2) pthread_join(th, NULL);
        NTH = 1;
        const double bw = probe_len / (now() - t0) / 1e9;
        if (bw > best) best = bw;
    }
    return best;
}

// ---------------- shapes and data ------------------------------------------------------------------
static const int64_t SH[4][2] = { { 4096, 4096 }, { 4096, 12032 }, { 12032, 4096 }, { 4096, 512 } };  // {K, M}
static const char * shname[4] = { "4096x4096 qkvo", "12032x4096 gate/up", "4096x12032 down", "512x4096 (L2)" };

struct shape_data {
    int64_t K, M;
    int8_t * q; int32_t qsum;
    uint8_t * T;
    int32_t * out;
    int ncopy[NF];
    uint8_t ** copies[NF];
};
static size_t COLD_BYTES = (size_t) 768 << 20;

static void make_shape(struct shape_data * d, int s, int with_cold) {
    d->K = SH[s][0]; d->M = SH[s][1];
    const int64_t K = d->K, M = d->M;
    int8_t * t = xalloc((size_t) (M * K));
    for (int64_t i = 0; i < M * K; ++i) t[i] = (int8_t) ((int) (rng() % 3) - 1);
    d->q = xalloc((size_t) K + 256);
    d->qsum = 0;
    for (int64_t k = 0; k < K; ++k) { d->q[k] = (int8_t) ((int) (rng() % 255) - 127); d->qsum += d->q[k]; }
    d->T = xalloc((size_t) (tl2w_groups(K) + 20) * 64);
    d->out = xalloc((size_t) (M + 64) * 4);
    for (int f = 0; f < NF; ++f) {
        d->ncopy[f] = 0;
        if (!have_fmt(f)) continue;
        const size_t nb = fmt_bytes(f, M, K);
        int n = with_cold ? (int) (COLD_BYTES / nb) + 1 : 1;
        d->ncopy[f] = n;
        d->copies[f] = malloc(sizeof(uint8_t *) * n);
        d->copies[f][0] = xalloc(nb);
        fmt_pack(f, t, M, K, d->copies[f][0]);
        for (int i = 1; i < n; ++i) { d->copies[f][i] = xalloc(nb); memcpy(d->copies[f][i], d->copies[f][0], nb); }
    }
    free(t);
}
static void free_shape(struct shape_data * d) {
    for (int f = 0; f < NF; ++f) { for (int i = 0; i < d->ncopy[f]; ++i) free(d->copies[f][i]); free(d->copies[f]); }
    free(d->q); free(d->T); free(d->out);
}

static int cmpd(const void * a, const void * b) { double x = *(const double *) a, y = *(const double *) b; return x < y ? -1 : x > y; }

// median seconds per GEMV over sec seconds; cold rotates copies, hot re-runs copy 0
static double time_fmt(struct shape_data * d, int f, int cold, double sec) {
    J = (struct job) { f, d->M, d->K, NULL, d->q, d->qsum, d->T, d->out };
    static double ts[200000];
    int n = 0, c = 0;
    J.w = d->copies[f][0];
    gemv();  // warm
    const double tend = now() + sec;
    do {
        if (cold) { c = (c + 1) % d->ncopy[f]; J.w = d->copies[f][c]; }
        const double t0 = now();
        gemv();
        ts[n++] = now() - t0;
    } while (now() < tend && n < 200000);
    qsort(ts, n, sizeof(double), cmpd);
    return ts[n / 2];
}

// ---------------- correctness ------------------------------------------------------------------------
static int check_one(int64_t M, int64_t K, int wmode, int amode) {
    int8_t * t = xalloc((size_t) (M * K));
    for (int64_t i = 0; i < M * K; ++i)
        t[i] = wmode == 0 ? (int8_t) ((int) (rng() % 3) - 1) : wmode == 1 ? 1 : wmode == 2 ? -1 : (int8_t) ((i / K) % 2 ? 1 : -1);
    int8_t * q = xalloc((size_t) K + 256);
    int32_t qsum = 0;
    for (int64_t k = 0; k < K; ++k) {
        q[k] = amode == 0 ? (int8_t) ((int) (rng() % 255) - 127) : amode == 1 ? 127 : amode == 2 ? -127 : (rng() & 1 ? 127 : -127);
        qsum += q[k];
    }
    int32_t * ref = xalloc((size_t) M * 4);
    for (int64_t r = 0; r < M; ++r) { int32_t s = 0; for (int64_t k = 0; k < K; ++k) s += t[r * K + k] * q[k]; ref[r] = s; }
    int bad = 0;
    for (int f = 0; f < NF; ++f) {
        if ((f == F_I2S && K % 64) || !have_fmt(f)) continue;
        uint8_t * w = xalloc(fmt_bytes(f, M, K));
        fmt_pack(f, t, M, K, w);
        struct shape_data d = { .K = K, .M = M, .q = q, .qsum = qsum };
        d.T = xalloc((size_t) (tl2w_groups(K) + 20) * 64);
        d.out = xalloc((size_t) (M + 64) * 4);
        J = (struct job) { f, M, K, w, q, qsum, d.T, d.out };
        gemv();
        int nb = 0;
        for (int64_t r = 0; r < M; ++r) if (d.out[r] != ref[r]) { if (nb < 3) fprintf(stderr, "  %s M=%ld K=%ld w%d a%d row %ld: %d != %d\n", fname[f], M, K, wmode, amode, r, d.out[r], ref[r]); ++nb; }
        bad += nb;
        free(w); free(d.T); free(d.out);
    }
    free(t); free(q); free(ref);
    return bad;
}

static int check(void) {
    int bad = 0, n = 0;
    static const int64_t shapes[][2] = { { 64, 4096 }, { 130, 4096 }, { 64, 12032 }, { 100, 255 }, { 64, 3 }, { 7, 1000 }, { 192, 258 }, { 64, 1024 } };
    for (int nth = 1; nth <= 2; ++nth) {
        if (nth == 2) pool_start(2);
        for (size_t s = 0; s < sizeof(shapes) / sizeof(shapes[0]); ++s)
            for (int wm = 0; wm < 4; ++wm)
                for (int am = 0; am < 4; ++am) { bad += check_one(shapes[s][0], shapes[s][1], wm, am); ++n; }
        if (nth == 2) pool_stop();
    }
    printf("check: %d cases (x up to 3 formats, 1 and 2 threads), %d mismatching rows\n", n, bad);
    return bad != 0;
}

int main(int argc, char ** argv) {
    tl2_init();
    KI2S = bitnet_i2s_kernel_find(getenv("I2S_KERNEL") ? getenv("I2S_KERNEL") : "avx512vnni");
    if (!KI2S) KI2S = &bitnet_i2s_kernels[0];
    fprintf(stderr, "I2_S kernel: %s\n", KI2S->name);
    if (argc < 2 || !strcmp(argv[1], "check")) return check();
    if (!strcmp(argv[1], "one")) {
        int f = !strcmp(argv[2], "i2s") ? F_I2S : !strcmp(argv[2], "tl2b") ? F_TL2B : !strcmp(argv[2], "tl2a") ? F_TL2A : F_TL2W;
        int s = atoi(argv[3]), nth = atoi(argv[4]), cold = !strcmp(argv[5], "cold");
        double sec = atof(argv[6]);
        struct shape_data d;
        make_shape(&d, s, cold);
        if (nth > 1) pool_start(nth);
        double tm = time_fmt(&d, f, cold, sec);
        if (nth > 1) pool_stop();
        printf("%s %s nth=%d %s: %.4f ms, %.1f GB/s, %.2f ns/1000w\n", fname[f], shname[s], nth, argv[5], tm * 1e3,
               fmt_bytes(f, d.M, d.K) / tm / 1e9, tm * 1e12 / (double) (d.M * d.K));
        return 0;
    }
    // interleaved rounds
    const int rounds = argc > 2 ? atoi(argv[2]) : 5;
    const double sec = argc > 3 ? atof(argv[3]) : 0.25;
    struct shape_data D[4];
    for (int s = 0; s < 4; ++s) make_shape(&D[s], s, s < 3);
    // res[s][nth-1][cold][f][round]
    static double res[4][2][2][NF][64];
    static double bw[2][64];
    for (int r = 0; r < rounds; ++r) {
        bw[0][r] = probe(1);
        bw[1][r] = probe(2);
        fprintf(stderr, "round %d: probe 1T %.1f GB/s, 2T %.1f GB/s\n", r, bw[0][r], bw[1][r]);
        for (int s = 0; s < 4; ++s)
            for (int nth = 1; nth <= 2; ++nth) {
                if (nth > 1) pool_start(nth);
                for (int cold = (s < 3); cold >= 0; --cold)
                    for (int f0 = 0; f0 < NF; ++f0) {
                        const int f = (f0 + r) % NF;  // rotate the order every round
                        if (!have_fmt(f)) continue;
                        res[s][nth - 1][cold][f][r] = time_fmt(&D[s], f, cold, sec);
                    }
                if (nth > 1) pool_stop();
            }
    }
    double tmp[64];
    for (int i = 0; i < 2; ++i) {
        memcpy(tmp, bw[i], sizeof(double) * rounds);
        qsort(tmp, rounds, sizeof(double), cmpd);
        printf("probe %dT: min %.1f median %.1f max %.1f GB/s\n", i + 1, tmp[0], tmp[rounds / 2], tmp[rounds - 1]);
    }
    printf("%-20s %3s %4s %5s | %9s %7s %9s | ratio I2S/X (median of per-round ratios)\n", "shape", "thr", "mode", "fmt", "ms", "GB/s", "ns/1kw");
    for (int s = 0; s < 4; ++s)
        for (int nth = 1; nth <= 2; ++nth)
            for (int cold = (s < 3); cold >= 0; --cold)
                for (int f = 0; f < NF; ++f) {
                    if (!have_fmt(f)) continue;
                    memcpy(tmp, res[s][nth - 1][cold][f], sizeof(double) * rounds);
                    qsort(tmp, rounds, sizeof(double), cmpd);
                    const double tm = tmp[rounds / 2];
                    double rat[64];
                    for (int r = 0; r < rounds; ++r) rat[r] = res[s][nth - 1][cold][F_I2S][r] / res[s][nth - 1][cold][f][r];
                    qsort(rat, rounds, sizeof(double), cmpd);
                    printf("%-20s %3d %4s %5s | %9.4f %7.1f %9.2f | %.3f [%.3f..%.3f]\n", shname[s], nth, cold ? "cold" : "hot", fname[f],
                           tm * 1e3, fmt_bytes(f, D[s].M, D[s].K) / tm / 1e9, tm * 1e12 / (double) (D[s].M * D[s].K),
                           rat[rounds / 2], rat[0], rat[rounds - 1]);
                }
    return 0;
}
