// Bit-exactness test of every compiled TL2 kernel (tl2-gemm.h): table + gemv and gemm against a plain int32 dot
// product of the weights read back with bitnet_tl2_weight, tables byte for byte against the generic builder.
// Build (no ggml needed; the AVX-512 kernels need the generated header, bitnet_gguf.setup.kernel_gen.emit), e.g.:
//   gcc -O2 -march=native -Ikernels -Ikernels/ggml-cpu -I<build>/bitnet-generated tests/kernels/test_tl2_gemm.c
//       kernels/tl2-quants.c kernels/i2s-quants.c kernels/ggml-cpu/generic/tl2-gemm.c
//       kernels/ggml-cpu/tl2-dispatch.c kernels/ggml-cpu/arch/x86/tl2-gemm-x86.c kernels/ggml-cpu/arch/x86/tl2-gemm-avx2.c -lm
// Usage: test_tl2_gemm [--quick] [--seed N]. Prints the kernels it exercised ("tested: ...") and ends with
// "N passed, M failed"; exits 1 on any mismatch or write outside the output.
#include "harness.h"
#include "tl2-gemm.h"
#include "tl2-quants.h"

#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

// the build's kernel table (tl2-dispatch.c), every entry checked
#define kernels     bitnet_tl2_kernels
#define N_KERNELS   bitnet_tl2_n_kernels
#define MAX_KERNELS 8

#define MAX_COLS 128  // BITNET_LUT_GEMM_MAX_COLS: the most columns of one gemm call
#define LDO_GAP  5    // output columns are 64 + LDO_GAP apart: the gap catches writes past row 63
#define SENTINEL 0x5A5A5A5A

static void * xalloc(size_t n) {
    return xalloc_aligned(n, 1);
}

enum w_mode { W_RANDOM, W_INVALID, W_ALL_PLUS, W_ALL_MINUS, N_W_MODES };
enum a_mode { A_RANDOM, A_PLUS127, A_MINUS127, A_PM127, A_MINUS128, N_A_MODES };
static const char * w_names[] = { "random", "random+idx14/15+flipped-signs", "all+1", "all-1" };
static const char * a_names[] = { "random", "all+127", "all-127", "random+-127", "all-128" };

static int8_t make_weight(enum w_mode m) {
    switch (m) {
        case W_ALL_PLUS:  return 1;
        case W_ALL_MINUS: return -1;
        default:          return (int8_t) (rnd(3) - 1);
    }
}

static int8_t make_act(enum a_mode m) {
    switch (m) {
        case A_PLUS127:  return 127;
        case A_MINUS127: return -127;
        case A_PM127:    return rnd(2) ? 127 : -127;
        case A_MINUS128: return -128;
        default:         return (int8_t) (rnd(256) - 128);
    }
}

// one test matrix: packed weights, activation columns, and the reference out[c][row] of every padded row
struct shape {
    int64_t   K, M, tiles, lda;
    uint8_t * w;
    int8_t *  a;        // MAX_COLS rows of lda: values to K, zeros to bitnet_tl2_act_len(K), junk after
    int32_t   a_sum[MAX_COLS];
    int32_t * ref;      // [c * 64 * tiles + row]
    char      what[160];
};

static void make_shape(struct shape * s, int64_t K, int64_t M, enum w_mode wm, enum a_mode am) {
    s->K = K;
    s->M = M;
    s->tiles = bitnet_tl2_tiles(M);
    const int64_t rows = 64 * s->tiles;
    snprintf(s->what, sizeof(s->what), "K=%lld M=%lld w=%s a=%s", (long long) K, (long long) M, w_names[wm], a_names[am]);

    int8_t * t = xalloc((size_t) (M * K));
    for (int64_t i = 0; i < M * K; ++i) {
        t[i] = make_weight(wm);
    }
    const size_t nbytes = bitnet_tl2_nbytes(K, M);
    s->w = xalloc(nbytes);
    bitnet_tl2_pack(t, K, M, 1.0f, s->w);
    if (wm == W_INVALID) {
        // indices 14 and 15 (no writer produces them) must read as zero weights, whatever their sign bit; a
        // flipped sign bit negates a group (or is the sign of a zero group)
        const size_t body = nbytes - BITNET_TL2_TAIL_SIZE;
        for (size_t c = 0; c < body; c += BITNET_TL2_CHUNK_BYTES) {
            for (int i = 0; i < 256; ++i) {
                if (rnd(16) == 0) {
                    const int sh = rnd(2) ? 4 : 0;
                    s->w[c + i] = (uint8_t) ((s->w[c + i] & ~(0xF << sh)) | ((14 + rnd(2)) << sh));
                }
            }
            for (int i = 256; i < BITNET_TL2_CHUNK_BYTES; ++i) {
                s->w[c + i] ^= (uint8_t) (rnd(8) == 0 ? 1 << rnd(8) : 0);
            }
        }
    } else {
        // the packer round-trips (rows past M and columns past K read back as zeros: checked below)
        for (int64_t r = 0; r < M; ++r) {
            for (int64_t k = 0; k < K; ++k) {
                if (bitnet_tl2_weight(s->w, K, r, k) != t[r * K + k]) {
                    fprintf(stderr, "pack/weight round trip differs at row %lld col %lld (%s)\n", (long long) r, (long long) k, s->what);
                    exit(1);
                }
            }
        }
    }
    free(t);

    const int64_t act_len = bitnet_tl2_act_len(K);
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

    // reference: the weights decoded once, then one int32 dot product per (row, column), the columns of one
    // k contiguous so the inner loop is plain adds
    int32_t * at = xalloc(sizeof(int32_t) * (size_t) (K * MAX_COLS));
    for (int64_t k = 0; k < K; ++k) {
        for (int64_t c = 0; c < MAX_COLS; ++c) {
            at[k * MAX_COLS + c] = s->a[c * s->lda + k];
        }
    }
    s->ref = xalloc(sizeof(int32_t) * (size_t) (rows * MAX_COLS));
    int32_t dot[MAX_COLS];
    for (int64_t r = 0; r < rows; ++r) {
        memset(dot, 0, sizeof(dot));
        for (int64_t k = 0; k < K; ++k) {
            const int wt = bitnet_tl2_weight(s->w, K, r, k);
            if (r >= M && wt != 0) {
                fprintf(stderr, "padding row %lld has weight %d at col %lld (%s)\n", (long long) r, wt, (long long) k, s->what);
                exit(1);
            }
            for (int64_t c = 0; wt != 0 && c < MAX_COLS; ++c) {
                dot[c] += wt * at[k * MAX_COLS + c];
            }
        }
        for (int64_t c = 0; c < MAX_COLS; ++c) {
            s->ref[c * rows + r] = dot[c];
        }
    }
    free(at);
}

static void free_shape(struct shape * s) {
    free(s->w);
    free(s->a);
    free(s->ref);
}

// gemm of ncols columns from column c0 on, every tile, against the reference
static long check_gemm(const struct bitnet_lut_kernel * kern, const struct shape * s, int64_t c0, int64_t ncols) {
    const int64_t ldo = 64 + LDO_GAP, rows = 64 * s->tiles;
    int32_t * out = xalloc(sizeof(int32_t) * (size_t) (ldo * ncols));
    long bad = 0;
    for (int64_t tile = 0; tile < s->tiles; ++tile) {
        for (int64_t i = 0; i < ldo * ncols; ++i) {
            out[i] = SENTINEL;
        }
        kern->gemm(s->K, s->w, tile, s->a + c0 * s->lda, s->a_sum + c0, s->lda, ncols, out, ldo);
        for (int64_t c = 0; c < ncols; ++c) {
            for (int64_t i = 0; i < ldo; ++i) {
                const int32_t got = out[c * ldo + i];
                const int32_t want = i < 64 ? s->ref[(c0 + c) * rows + 64 * tile + i] : SENTINEL;
                if (got != want && bad++ < 3) {
                    fprintf(stderr, "MISMATCH %s gemm: %s cols [%lld, %lld) tile %lld: col %lld, %s %lld = %d, want %d\n",
                            kern->name, s->what, (long long) c0, (long long) (c0 + ncols), (long long) tile, (long long) (c0 + c),
                            i < 64 ? "row" : "gap", (long long) (i < 64 ? 64 * tile + i : i), got, want);
                }
            }
        }
    }
    free(out);
    return bad;
}

// table of column c (byte for byte as the generic one builds it), then gemv over tiles [tile0, tile1)
static long check_gemv(const struct bitnet_lut_kernel * kern, const struct shape * s, int64_t c, int64_t tile0, int64_t tile1) {
    const size_t tbytes = bitnet_tl2_table_bytes(s->K);
    const int8_t * a = s->a + c * s->lda;
    uint8_t * table = xalloc(tbytes + 64), * want_table = xalloc(tbytes);
    memset(table, 0xA5, tbytes + 64);
    bitnet_tl2_table_generic(a, s->K, want_table);
    kern->table(a, s->K, table);
    long bad = 0;
    for (size_t i = 0; i < tbytes + 64; ++i) {
        const int want = i < tbytes ? want_table[i] : 0xA5;
        if (table[i] != want && bad++ < 3) {
            fprintf(stderr, "MISMATCH %s table: %s col %lld: byte %zu (group %zu) = 0x%02x, want 0x%02x%s\n", kern->name,
                    s->what, (long long) c, i, i / 32, table[i], want, i < tbytes ? "" : " (past the table)");
        }
    }
    const int64_t n = 64 * (tile1 - tile0), rows = 64 * s->tiles;
    int32_t * out = xalloc(sizeof(int32_t) * (size_t) (n + LDO_GAP));
    for (int64_t i = 0; i < n + LDO_GAP; ++i) {
        out[i] = SENTINEL;
    }
    kern->gemv(s->K, s->w, tile0, tile1, table, out);  // the kernel's own table, as the mat-mul glue pairs them
    for (int64_t i = 0; i < n + LDO_GAP; ++i) {
        const int32_t want = i < n ? s->ref[c * rows + 64 * tile0 + i] : SENTINEL;
        if (out[i] != want && bad++ < 3) {
            fprintf(stderr, "MISMATCH %s gemv: %s col %lld tiles [%lld, %lld): %s %lld = %d, want %d\n", kern->name, s->what,
                    (long long) c, (long long) tile0, (long long) tile1, i < n ? "row" : "past the end",
                    (long long) (64 * tile0 + i), out[i], want);
        }
    }
    free(table);
    free(want_table);
    free(out);
    return bad;
}

static void run_shape(int64_t K, int64_t M, enum w_mode wm, enum a_mode am, bool quick, bool * used, struct stats * st) {
    struct shape s;
    make_shape(&s, K, M, wm, am);
    static const int64_t col_counts[] = { 1, 2, 7, 8, 33, 128 };
    for (int ki = 0; ki < N_KERNELS; ++ki) {
        const struct bitnet_lut_kernel * kern = &kernels[ki];
        const bool generic = strcmp(kern->name, "generic") == 0;
        used[ki] = true;
        for (size_t i = 0; i < sizeof(col_counts) / sizeof(col_counts[0]); ++i) {
            const int64_t nc = col_counts[i];
            if (nc > 8 && ((generic && K > 100) || (quick && K > 2560))) {
                continue;  // the scalar generic gemm (and the sanitizer build) would take seconds here
            }
            const int64_t c0 = rnd(MAX_COLS - nc + 1);  // a column offset too, so lda is used
            count(st, !check_gemm(kern, &s, c0, nc));
        }
        for (int t = 0; t < (quick ? 1 : 2); ++t) {
            const int64_t c = rnd(MAX_COLS);
            count(st, !check_gemv(kern, &s, c, 0, s.tiles));
            if (s.tiles > 1) {
                const int64_t t0 = 1 + rnd(s.tiles - 1);
                count(st, !check_gemv(kern, &s, c, t0, t0 + 1 + rnd(s.tiles - t0)));
            }
        }
    }
    free_shape(&s);
}

int main(int argc, char ** argv) {
    bool quick;
    uint64_t seed;
    if (!parse_args(argc, argv, &quick, &seed)) {
        return 2;
    }
    printf("seed %llu; compiled:", (unsigned long long) seed);
    for (int i = 0; i < N_KERNELS; ++i) {
        printf(" %s", kernels[i].name);
    }
    printf("\n");

    bool used[MAX_KERNELS];
    if (N_KERNELS > MAX_KERNELS) {
        fprintf(stderr, "more kernels than MAX_KERNELS\n");
        return 2;
    }
    memset(used, 0, sizeof(used));
    struct stats st = { 0, 0 };

    // K: one group, small and not a multiple of 3 or 8 groups, the models' K (8640: a partial last block)
    static const int64_t Ks[] = { 3, 96, 100, 2560, 6912, 8640, 11008 };
    static const int64_t Ms[] = { 1, 64, 70, 130 };
    for (size_t ki = 0; ki < sizeof(Ks) / sizeof(Ks[0]); ++ki) {
        for (size_t mi = 0; mi < sizeof(Ms) / sizeof(Ms[0]); ++mi) {
            const int64_t K = Ks[ki], M = Ms[mi];
            if (quick && K > 100 && M != 70) {
                continue;
            }
            // cycle the data modes so that every (K, M) meets a different pair
            const int idx = (int) (ki * 4 + mi);
            run_shape(K, M, (enum w_mode) (idx % N_W_MODES), (enum a_mode) ((idx / N_W_MODES + idx) % N_A_MODES), quick, used, &st);
            if (!quick) {
                run_shape(K, M, W_INVALID, A_RANDOM, quick, used, &st);
            }
        }
    }
    // the int16 worst cases of the lookup kernels: every group +-13 against +-127 (and -128), long rows
    for (int wm = W_ALL_PLUS; wm <= W_ALL_MINUS; ++wm) {
        for (int am = A_PLUS127; am <= A_MINUS128; ++am) {
            if (quick && am != (wm == W_ALL_PLUS ? A_PLUS127 : A_MINUS128)) {
                continue;
            }
            run_shape(quick ? 2560 : 11008, 70, (enum w_mode) wm, (enum a_mode) am, quick, used, &st);
            if (!quick) {
                run_shape(8640, 64, (enum w_mode) wm, (enum a_mode) am, quick, used, &st);
            }
        }
    }

    printf("tested:");
    for (int i = 0; i < N_KERNELS; ++i) {
        if (used[i]) {
            printf(" %s", kernels[i].name);
        }
    }
    printf("\n%ld passed, %ld failed\n", st.passed, st.failed);
    return st.failed == 0 ? 0 : 1;
}
