// What the standalone kernel tests share: a seeded generator (reproducible from the printed seed), checked
// allocation, pass/fail counts and the command line (--quick, --seed N).
#pragma once

#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static uint64_t rng_state;

static inline uint64_t rng(void) {  // splitmix64
    uint64_t z = (rng_state += 0x9E3779B97F4A7C15ull);
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
    return z ^ (z >> 31);
}

static inline int64_t rnd(int64_t n) {
    return (int64_t) (rng() % (uint64_t) n);
}

// exact sizes (no rounding up) unless align > 1, so that a sanitizer build sees any read past a buffer
static inline void * xalloc_aligned(size_t n, size_t align) {
    void * p = align > 1 ? aligned_alloc(align, (n + align - 1) / align * align) : malloc(n ? n : 1);
    if (p == NULL) {
        fprintf(stderr, "out of memory\n");
        exit(2);
    }
    return p;
}

struct stats {
    long passed, failed;
};

static inline void count(struct stats * st, bool ok) {
    if (ok) {
        st->passed++;
    } else {
        st->failed++;
    }
}

// parses [--quick] [--seed N] and seeds the generator; false (after a usage line) on anything else
static inline bool parse_args(int argc, char ** argv, bool * quick, uint64_t * seed) {
    *quick = false;
    *seed = 12345;
    for (int i = 1; i < argc; ++i) {
        if (strcmp(argv[i], "--quick") == 0) {
            *quick = true;
        } else if (strcmp(argv[i], "--seed") == 0 && i + 1 < argc) {
            *seed = strtoull(argv[++i], NULL, 10);
        } else {
            fprintf(stderr, "usage: %s [--quick] [--seed N]\n", argv[0]);
            return false;
        }
    }
    rng_state = *seed;
    return true;
}
