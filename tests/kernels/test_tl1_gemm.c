// Bit-exactness test of every compiled TL1 kernel (lookup table, GEMV, GEMM) against a plain scalar int32 dot
// of the weights bitnet_tl1_weight reads, plus the format functions (pack / read back, quantize, dequantize,
// validate) and the kernel table (bitnet_lut_kernel_for).
// Build (no ggml needed), e.g.:
//   gcc -O2 -Ikernels -Ikernels/ggml-cpu tests/kernels/test_tl1_gemm.c kernels/tl1-quants.c kernels/i2s-quants.c
//       kernels/ggml-cpu/generic/tl1-gemm.c kernels/ggml-cpu/tl1-dispatch.c [kernels/ggml-cpu/arch/arm/tl1-gemm-arm.c] -lm
// Usage: test_tl1_gemm [--quick] [--seed N]. Prints the kernels it exercised ("tested: ...") and ends with
// "N passed, M failed"; exits 1 on any mismatch or out-of-range write.
#define _POSIX_C_SOURCE 200809L  // dup, dup2, fileno

#include "harness.h"
#include "tl1-gemm.h"
#include "tl1-quants.h"
#include "i2s-quants.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define MAX_COLS 128          // BITNET_LUT_GEMM_MAX_COLS: the largest column count of a gemm call
#define SENTINEL 0x5A5A5A5A   // output cells a kernel must not touch keep this value
#define GUARD    64           // bytes after a table that the table builders must not write

static void * xalloc(size_t n) {
    return xalloc_aligned(n, 1);
}

enum w_mode { W_RANDOM, W_WITH_INVALID, W_ALL_PLUS, W_ALL_MINUS, W_RANDOM_PM1, N_W_MODES };
enum act_mode { ACT_RANDOM, ACT_PLUS, ACT_MINUS, ACT_EXTREMES, N_ACT_MODES };
static const char * w_names[] = { "random", "random+index9..15", "all+1", "all-1", "random+-1" };
static const char * act_names[] = { "random", "all+127", "all-127", "random+-127" };

static int8_t make_weight(enum w_mode m) {
    switch (m) {
        case W_ALL_PLUS:   return 1;
        case W_ALL_MINUS:  return -1;
        case W_RANDOM_PM1: return rnd(2) ? 1 : -1;
        default:           return (int8_t) (rnd(3) - 1);
    }
}

// activations are in [-127, 127] by the contract (tl1-gemm.h)
static int8_t make_act(enum act_mode m) {
    switch (m) {
        case ACT_PLUS:     return 127;
        case ACT_MINUS:    return -127;
        case ACT_EXTREMES: return rnd(2) ? 127 : -127;
        default:           return (int8_t) (rnd(255) - 127);
    }
}

// one shape: packed weights, activation columns, the scalar reference of every (column, padded row)
struct shape {
    int64_t K, M, rows, ntiles, lda;
    uint8_t * w;
    int8_t * a;
    int32_t a_sum[MAX_COLS];
    int32_t * ref;  // ref[c * rows + r]
    char what[128];
};

static void make_shape(struct shape * s, int64_t K, int64_t M, enum w_mode wm, enum act_mode am, struct stats * st) {
    s->K = K;
    s->M = M;
    s->ntiles = bitnet_tl1_tiles(M);
    s->rows = s->ntiles * BITNET_TL1_TILE_ROWS;
    snprintf(s->what, sizeof(s->what), "K=%lld M=%lld w=%s a=%s", (long long) K, (long long) M, w_names[wm], act_names[am]);

    int8_t * t = xalloc((size_t) (M * K));
    for (int64_t i = 0; i < M * K; ++i) {
        t[i] = make_weight(wm);
    }
    const size_t nbytes = bitnet_tl1_nbytes(K, M);
    s->w = xalloc(nbytes);
    bitnet_tl1_pack(t, K, M, 0.25f, s->w);
    bool ok = bitnet_tl1_validate(s->w, nbytes) && bitnet_tl1_scale(s->w, K, M) == 0.25f;
    for (int64_t i = 0; i < M * K; ++i) {  // what the packer wrote reads back
        ok = ok && bitnet_tl1_weight(s->w, K, i / K, i % K) == t[i];
    }
    if (!ok) {
        fprintf(stderr, "MISMATCH pack/read back: %s\n", s->what);
    }
    count(st, ok);
    if (wm == W_WITH_INVALID) {  // indices no writer produces, padding rows and the pad column included
        for (size_t i = 0; i < nbytes - BITNET_TL1_TAIL_SIZE; ++i) {
            if (rnd(6) == 0) {
                s->w[i] = (uint8_t) ((s->w[i] & 0xF0) | (9 + rnd(7)));
            }
            if (rnd(6) == 0) {
                s->w[i] = (uint8_t) ((s->w[i] & 0x0F) | ((9 + rnd(7)) << 4));
            }
        }
    }
    free(t);

    // activation rows: zero from K to bitnet_tl1_act_len(K) (the contract), junk after it when lda is longer
    const int64_t act_len = bitnet_tl1_act_len(K);
    s->lda = act_len + (rnd(2) ? 64 : 0);
    s->a = xalloc((size_t) (s->lda * MAX_COLS));
    for (int64_t c = 0; c < MAX_COLS; ++c) {
        s->a_sum[c] = 0;
        for (int64_t k = 0; k < s->lda; ++k) {
            const int8_t v = k < K ? make_act(am) : (k < act_len ? 0 : (int8_t) (rnd(256) - 128));
            s->a[c * s->lda + k] = v;
            s->a_sum[c] += k < K ? v : 0;
        }
    }

    // the reference: plain int32 dots of the weights as bitnet_tl1_weight reads them (index > 8 reads as 0)
    int8_t * dense = xalloc((size_t) (s->rows * K));
    for (int64_t r = 0; r < s->rows; ++r) {
        for (int64_t k = 0; k < K; ++k) {
            dense[r * K + k] = (int8_t) bitnet_tl1_weight(s->w, K, r, k);
        }
    }
    s->ref = xalloc(sizeof(int32_t) * (size_t) (s->rows * MAX_COLS));
    for (int64_t c = 0; c < MAX_COLS; ++c) {
        const int8_t * ac = s->a + c * s->lda;
        for (int64_t r = 0; r < s->rows; ++r) {
            const int8_t * wr = dense + r * K;
            int32_t d = 0;
            int64_t k = 0;
            for (; k + 16 <= K; k += 16) {  // a fixed inner count lets -O2 vectorize it (qemu runs stay short)
                int32_t d16 = 0;
                for (int j = 0; j < 16; ++j) {
                    d16 += wr[k + j] * ac[k + j];
                }
                d += d16;
            }
            for (; k < K; ++k) {
                d += wr[k] * ac[k];
            }
            s->ref[c * s->rows + r] = d;
        }
    }
    free(dense);
}

static void free_shape(struct shape * s) {
    free(s->w);
    free(s->a);
    free(s->ref);
}

// out[c * ldo + i] for c < ncols, i < nrows must be ref[(c0 + c) * rows + r0 + i]; every other cell of the
// ldo x ncols_buf buffer must still hold the sentinel
static bool compare(const char * kname, const char * call, const struct shape * s, const int32_t * out, int64_t ldo,
                    int64_t nrows, int64_t r0, int64_t c0, int64_t ncols, int64_t ncols_buf) {
    long bad = 0;
    for (int64_t c = 0; c < ncols_buf; ++c) {
        for (int64_t i = 0; i < ldo; ++i) {
            const bool inside = c < ncols && i < nrows;
            const int32_t want = inside ? s->ref[(c0 + c) * s->rows + r0 + i] : SENTINEL;
            const int32_t got = out[c * ldo + i];
            if (got != want) {
                if (bad < 3) {
                    fprintf(stderr, "MISMATCH %s %s: %s: out[col %lld, row %lld] = %d, want %d\n", kname, call, s->what,
                            (long long) (c0 + c), (long long) (r0 + i), got, want);
                }
                ++bad;
            }
        }
    }
    return bad == 0;
}

static void check_kernel(const struct bitnet_lut_kernel * kern, const struct shape * s, bool quick, struct stats * st) {
    const int64_t K = s->K;
    const size_t tbytes = bitnet_tl1_table_bytes(K);
    uint8_t * table = xalloc(tbytes + GUARD), * table_ref = xalloc(tbytes);
    int32_t * out = xalloc(sizeof(int32_t) * (size_t) ((s->rows + 3) * MAX_COLS));
    char call[96];

    // one token: the table (byte-identical to the generic one, nothing written past it), then the gemv over all
    // tiles and over a random sub-range
    const int n_tokens = quick ? 2 : 4;
    for (int j = 0; j < n_tokens; ++j) {
        const int64_t c = j == 0 ? 0 : rnd(MAX_COLS);
        const int8_t * ac = s->a + c * s->lda;
        memset(table, 0xA5, tbytes + GUARD);
        kern->table(ac, K, table);
        bitnet_tl1_table_generic(ac, K, table_ref);
        bool ok = memcmp(table, table_ref, tbytes) == 0;
        for (size_t i = tbytes; i < tbytes + GUARD; ++i) {
            ok = ok && table[i] == 0xA5;
        }
        if (!ok) {
            fprintf(stderr, "MISMATCH %s table: %s: column %lld\n", kern->name, s->what, (long long) c);
        }
        count(st, ok);

        int64_t t0 = 0, t1 = s->ntiles;
        if (j % 2 == 1) {
            t0 = rnd(s->ntiles);
            t1 = t0 + 1 + rnd(s->ntiles - t0);
        }
        const int64_t n = (t1 - t0) * BITNET_TL1_TILE_ROWS;
        for (int64_t i = 0; i < n + 3; ++i) {
            out[i] = SENTINEL;
        }
        kern->gemv(K, s->w, t0, t1, table, out);
        snprintf(call, sizeof(call), "gemv tiles [%lld, %lld) column %lld", (long long) t0, (long long) t1, (long long) c);
        count(st, compare(kern->name, call, s, out, n + 3, n, t0 * BITNET_TL1_TILE_ROWS, c, 1, 1));
    }

    // several tokens: every column count, at a random column offset, on each tile (quick: first and last tile)
    static const int64_t col_counts[] = { 1, 2, 7, 8, 33, 128 };
    const int64_t ldo = BITNET_TL1_TILE_ROWS + 3;  // a gap between columns catches writes past the tile
    for (int64_t tile = 0; tile < s->ntiles; ++tile) {
        if (quick && tile != 0 && tile != s->ntiles - 1) {
            continue;
        }
        for (size_t ci = 0; ci < sizeof(col_counts) / sizeof(col_counts[0]); ++ci) {
            const int64_t nc = col_counts[ci];
            const int64_t c0 = rnd(MAX_COLS - nc + 1);
            for (int64_t i = 0; i < ldo * MAX_COLS; ++i) {
                out[i] = SENTINEL;
            }
            kern->gemm(K, s->w, tile, s->a + c0 * s->lda, s->a_sum + c0, s->lda, nc, out, ldo);
            snprintf(call, sizeof(call), "gemm tile %lld ncols %lld", (long long) tile, (long long) nc);
            count(st, compare(kern->name, call, s, out, ldo, BITNET_TL1_TILE_ROWS, tile * BITNET_TL1_TILE_ROWS, c0, nc,
                              MAX_COLS));
        }
    }
    free(table);
    free(table_ref);
    free(out);
}

// bitnet_tl1_validate with stderr captured: returns its result, *lines = the number of lines it printed
static bool validate_capturing(const void * data, size_t nbytes, int * lines) {
    fflush(stderr);
    FILE * tmp = tmpfile();
    const int saved = dup(2);
    if (tmp == NULL || saved < 0 || dup2(fileno(tmp), 2) < 0) {
        fprintf(stderr, "cannot capture stderr\n");
        exit(2);
    }
    const bool ok = bitnet_tl1_validate(data, nbytes);
    fflush(stderr);
    dup2(saved, 2);
    close(saved);
    rewind(tmp);
    *lines = 0;
    for (int ch; (ch = fgetc(tmp)) != EOF;) {
        *lines += ch == '\n';
    }
    fclose(tmp);
    return ok;
}

// quantize = ternarize + pack; dequantize; validate refuses what no writer produces, in one line
static void check_format(struct stats * st) {
    const int64_t K = 195, M = 70;
    float * x = xalloc(sizeof(float) * (size_t) (K * M)), * y = xalloc(sizeof(float) * (size_t) (K * M));
    int8_t * t = xalloc((size_t) (K * M));
    for (int64_t i = 0; i < K * M; ++i) {
        x[i] = (float) ((double) rnd(2000001) / 1000000.0 - 1.0);
    }
    const size_t nbytes = bitnet_tl1_nbytes(K, M);
    uint8_t * q = xalloc(nbytes), * p = xalloc(nbytes);
    const float s = bitnet_ternarize(x, K * M, t);
    bitnet_tl1_pack(t, K, M, s, p);
    bool ok = bitnet_tl1_quantize(x, q, K, M) == nbytes && memcmp(p, q, nbytes) == 0;
    bitnet_tl1_dequantize(q, y, K, M);
    for (int64_t i = 0; i < K * M; ++i) {
        ok = ok && y[i] == (float) t[i] * s;
    }
    ok = ok && nbytes == (size_t) (96 * 196 / 4 + 32);  // docs/formats.md §5: ceil(M/32)*32 * ceil(K/2)*2 / 4 + 32
    int lines;
    ok = ok && validate_capturing(q, nbytes, &lines) && lines == 0;
    ok = ok && !validate_capturing(q, nbytes - 1, &lines) && lines == 1;  // not whole groups
    q[1234] = (uint8_t) ((q[1234] & 0x0F) | 0x90);  // index 9
    ok = ok && !validate_capturing(q, nbytes, &lines) && lines == 1;
    memcpy(q, p, nbytes);
    const float bad_scales[] = { NAN, INFINITY, -1.0f };
    for (int i = 0; i < 3; ++i) {
        memcpy(q + nbytes - BITNET_TL1_TAIL_SIZE, &bad_scales[i], sizeof(float));
        ok = ok && !validate_capturing(q, nbytes, &lines) && lines == 1;
    }
    if (!ok) {
        fprintf(stderr, "MISMATCH format: quantize / dequantize / validate\n");
    }
    count(st, ok);
    free(x);
    free(y);
    free(t);
    free(q);
    free(p);
}

static void check_dispatch(struct stats * st) {
    const int nk = bitnet_tl1_n_kernels;
    const struct bitnet_lut_kernel * generic = &bitnet_tl1_kernels[nk - 1];
    bool ok = strcmp(generic->name, "generic") == 0 && generic->gemv == bitnet_tl1_gemv_generic;
    for (int i = 0; i < nk; ++i) {
        const struct bitnet_lut_kernel * k = &bitnet_tl1_kernels[i];
        ok = ok && k->table != NULL && k->gemv != NULL && k->gemm != NULL && bitnet_lut_kernel_for(bitnet_tl1_kernels, nk, k->name) == k;
    }
    ok = ok && bitnet_lut_kernel_for(bitnet_tl1_kernels, nk, "no-such-kernel") == generic && bitnet_lut_kernel_for(bitnet_tl1_kernels, nk, "avx2") == generic;
    if (!ok) {
        fprintf(stderr, "MISMATCH dispatch: the kernel table or bitnet_tl1_kernel_for\n");
    }
    count(st, ok);
}

int main(int argc, char ** argv) {
    bool quick;
    uint64_t seed;
    if (!parse_args(argc, argv, &quick, &seed)) {
        return 2;
    }

    const int nk = bitnet_tl1_n_kernels;
    printf("seed %llu; compiled:", (unsigned long long) seed);
    for (int i = 0; i < nk; ++i) {
        printf(" %s", bitnet_tl1_kernels[i].name);
    }
    printf("\n");

    struct stats st = { 0, 0 };
    check_dispatch(&st);
    check_format(&st);

    bool used[8] = { false };
    // plus 13 and 8645: odd K whose last block has 3 pairs past a multiple of 4 (every tail of the NEON gemv)
    static const int64_t Ks[] = { 2, 3, 13, 64, 194, 2560, 6912, 8640, 8645 };
    static const int64_t Ms[] = { 32, 70, 96, 130 };
    int n_shapes = 0;
    for (size_t ki = 0; ki < sizeof(Ks) / sizeof(Ks[0]); ++ki) {
        for (size_t mi = 0; mi < sizeof(Ms) / sizeof(Ms[0]); ++mi) {
            // cycle the data modes so every (K, M) meets a different pair of them
            const int idx = (int) (ki * 4 + mi);
            struct shape s;
            make_shape(&s, Ks[ki], Ms[mi], (enum w_mode) (idx % N_W_MODES), (enum act_mode) ((idx / N_W_MODES) % N_ACT_MODES),
                       &st);
            for (int i = 0; i < nk; ++i) {
                check_kernel(&bitnet_tl1_kernels[i], &s, quick, &st);
                used[i] = true;
            }
            free_shape(&s);
            ++n_shapes;
        }
    }
    // int16 worst cases of the lookup kernels: every weight +1 or -1 against every activation at +127 or -127,
    // so every full block sums to +-32512
    for (int wm = W_ALL_PLUS; wm <= W_ALL_MINUS; ++wm) {
        for (int am = ACT_PLUS; am <= ACT_MINUS; ++am) {
            struct shape s;
            make_shape(&s, am == ACT_PLUS ? 8640 : 6912, quick ? 32 : 70, (enum w_mode) wm, (enum act_mode) am, &st);
            for (int i = 0; i < nk; ++i) {
                check_kernel(&bitnet_tl1_kernels[i], &s, quick, &st);
            }
            free_shape(&s);
            ++n_shapes;
        }
    }

    printf("%d shapes (M in {32, 70, 96, 130}, K in {2, 3, 13, 64, 194, 2560, 6912, 8640, 8645}, gemm ncols in {1, 2, 7, 8, 33, 128})%s\n",
           n_shapes, quick ? ", quick: gemm on the first and last tile" : "");
    printf("tested:");
    for (int i = 0; i < nk; ++i) {
        if (used[i]) {
            printf(" %s", bitnet_tl1_kernels[i].name);
        }
    }
    printf("\n%ld passed, %ld failed\n", st.passed, st.failed);
    return st.failed == 0 ? 0 : 1;
}
