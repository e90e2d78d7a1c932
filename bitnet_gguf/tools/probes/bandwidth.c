// Read-bandwidth probe: T threads each stream through their share of a buffer, summing 64-bit words (the compiler
// vectorises the loop; several accumulators keep the adds off the critical path). Prints the best GB/s of R passes.
// usage: bandwidth MIB THREADS PASSES
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

typedef struct {
    const uint64_t * data;
    size_t           n;
    pthread_barrier_t * start;
    uint64_t         sum;
    double           t0, t1;  // this reader's own start and end: the main thread may be descheduled after the barrier
} part_t;

static double now(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double) ts.tv_sec + 1e-9 * (double) ts.tv_nsec;
}

static void * reader(void * arg) {
    part_t * p = arg;
    pthread_barrier_wait(p->start);
    p->t0 = now();
    uint64_t s0 = 0, s1 = 0, s2 = 0, s3 = 0;
    size_t i = 0;
    for (; i + 4 <= p->n; i += 4) {
        s0 += p->data[i];
        s1 += p->data[i + 1];
        s2 += p->data[i + 2];
        s3 += p->data[i + 3];
    }
    for (; i < p->n; ++i) {
        s0 += p->data[i];
    }
    p->sum = s0 + s1 + s2 + s3;  // kept, so the reads cannot be optimised away
    p->t1 = now();
    return NULL;
}

int main(int argc, char ** argv) {
    if (argc != 4) {
        fprintf(stderr, "usage: %s MIB THREADS PASSES\n", argv[0]);
        return 2;
    }
    const size_t mib = strtoull(argv[1], NULL, 10);
    const int threads = atoi(argv[2]), passes = atoi(argv[3]);
    if (mib == 0 || threads < 1 || threads > 1024 || passes < 1) {
        fprintf(stderr, "error: MIB, THREADS and PASSES must be positive\n");
        return 2;
    }
    const size_t words = mib << 17;  // 1 MiB = 2^17 words of 8 bytes
    uint64_t * data = malloc(words * sizeof(uint64_t));
    part_t * parts = calloc((size_t) threads, sizeof(part_t));
    pthread_t * tids = calloc((size_t) threads, sizeof(pthread_t));
    if (!data || !parts || !tids) {
        fprintf(stderr, "error: cannot allocate %zu MiB\n", mib);
        return 1;
    }
    memset(data, 1, words * sizeof(uint64_t));  // touch every page before timing
    double best = 0.0;
    uint64_t check = 0;
    for (int pass = 0; pass < passes; ++pass) {
        pthread_barrier_t start;
        pthread_barrier_init(&start, NULL, (unsigned) threads + 1);
        for (int t = 0; t < threads; ++t) {
            const size_t lo = words * (size_t) t / (size_t) threads, hi = words * (size_t) (t + 1) / (size_t) threads;
            parts[t] = (part_t) { data + lo, hi - lo, &start, 0, 0.0, 0.0 };
            pthread_create(&tids[t], NULL, reader, &parts[t]);
        }
        pthread_barrier_wait(&start);
        double t0 = 0.0, t1 = 0.0;
        for (int t = 0; t < threads; ++t) {
            pthread_join(tids[t], NULL);
            check += parts[t].sum;
            t0 = t == 0 || parts[t].t0 < t0 ? parts[t].t0 : t0;  // first reader's start to last reader's end
            t1 = parts[t].t1 > t1 ? parts[t].t1 : t1;
        }
        const double gbs = (double) (words * sizeof(uint64_t)) / (t1 - t0) / 1e9;
        best = gbs > best ? gbs : best;
        pthread_barrier_destroy(&start);
    }
    printf("%.2f\n", best);
    fprintf(stderr, "checksum %llu\n", (unsigned long long) check);
    free(tids);
    free(parts);
    free(data);
    return 0;
}
