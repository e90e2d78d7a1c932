// Bit-exactness test of every compiled I2_S kernel (plain and packed forms, and the activation
// quantizer of its table entry) against the generic references, and of the kernel choice
// (BITNET_I2S_KERNEL read once per process, bitnet_i2s_kernel_reload, fallback by K).
// Build (no ggml needed), e.g.:
//   gcc -O2 -march=native -Ikernels -Ikernels/ggml-cpu tests/kernels/test_i2s_gemm.c
//       kernels/ggml-cpu/generic/*.c kernels/ggml-cpu/i2s-dispatch.c kernels/ggml-cpu/arch/x86/*.c -lm
// Usage: test_i2s_gemm [--quick] [--seed N]. Prints the kernels it exercised ("tested: ...") and ends
// with "N passed, M failed"; exits 1 on any mismatch or out-of-range write.
#define _POSIX_C_SOURCE 200809L  // setenv, dup, dup2

#include "harness.h"
#include "i2s-gemm.h"
#include "i2s-quants.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define MAX_COLS  40  // more than two packed groups of 16, the last one ragged
#define RAW_COLS  16  // column counts up to this are all tried with the plain form
#define SENTINEL  0x5A5A5A5A  // output cells a kernel must not touch keep this value

static void * xalloc(size_t n) {
    return xalloc_aligned(n, 64);
}

enum act_mode { ACT_RANDOM, ACT_MIN, ACT_MAX, ACT_EXTREMES, N_ACT_MODES };
enum w_mode { W_RANDOM, W_WITH_INVALID, W_ALL_PLUS, W_ALL_MINUS, N_W_MODES };
static const char * act_names[] = { "random", "all-128", "all+127", "random+-extremes" };
static const char * w_names[] = { "random", "random+code3", "all+1", "all-1" };

static uint8_t make_code(enum w_mode m) {
    switch (m) {
        case W_WITH_INVALID: return (uint8_t) rnd(4);
        case W_ALL_PLUS:     return 2;
        case W_ALL_MINUS:    return 0;
        default:             return (uint8_t) rnd(3);
    }
}

static int8_t make_act(enum act_mode m) {
    switch (m) {
        case ACT_MIN:      return -128;
        case ACT_MAX:      return 127;
        case ACT_EXTREMES: return rnd(2) ? 127 : -128;
        default:           return (int8_t) (rnd(256) - 128);
    }
}

// one kernel call over rows [r0, r1) and ncols columns, compared against the full reference; packed
// calls first pack the columns in groups of the kernel's pack_cols
static void check_call(const struct bitnet_i2s_kernel * kern, bool packed, int64_t K, const uint8_t * w, int64_t r0,
                       int64_t r1, const int8_t * a, const int32_t * a_sum, int64_t lda, int64_t ncols,
                       const int32_t * ref, int64_t M, int32_t * out, struct stats * st, const char * what) {
    const int64_t ldo = (r1 - r0) + 3;  // a gap between columns catches writes past r1
    for (int64_t i = 0; i < ldo * MAX_COLS; ++i) {
        out[i] = SENTINEL;
    }
    if (packed) {
        const int64_t P = kern->pack_cols;
        int8_t * buf = xalloc((size_t) ((ncols + P - 1) / P * P * K));
        for (int64_t c0 = 0; c0 < ncols; c0 += P) {
            kern->pack(K, a + c0 * lda, lda, ncols - c0 < P ? ncols - c0 : P, buf + c0 * K);
        }
        kern->gemm_packed(K, w, r0, r1, buf, a_sum, ncols, out, ldo);
        free(buf);
    } else {
        kern->gemm(K, w, r0, r1, a, a_sum, lda, ncols, out, ldo);
    }
    long bad = 0;
    for (int64_t c = 0; c < MAX_COLS; ++c) {
        for (int64_t i = 0; i < ldo; ++i) {
            const int32_t got = out[c * ldo + i];
            const bool inside = c < ncols && i < r1 - r0;
            const int32_t want = inside ? ref[c * M + r0 + i] : SENTINEL;
            if (got != want) {
                if (bad < 3) {
                    fprintf(stderr, "MISMATCH %s%s: %s K=%lld rows [%lld,%lld) ncols=%lld: out[col %lld, row %lld] = %d, want %d\n",
                            kern->name, packed ? " packed" : "", what, (long long) K, (long long) r0, (long long) r1, (long long) ncols,
                            (long long) c, (long long) (r0 + i), got, want);
                }
                ++bad;
            }
        }
    }
    if (bad) {
        st->failed++;
    } else {
        st->passed++;
    }
}

static void run_shape(int64_t K, int64_t M, enum w_mode wm, enum act_mode am, bool quick,
                      const struct bitnet_i2s_kernel * kerns, int nk, bool * used, struct stats * st) {
    // the packed tensor: whole 128-blocks plus the 32-byte tail, as in a real I2_S tensor
    const int64_t n = M * K;
    const size_t wbytes = (size_t) ((n + 127) / 128 * 32 + 32);
    uint8_t * w = xalloc(wbytes);
    memset(w, 0, wbytes);
    for (int64_t g = 0; g < (n + 127) / 128 * 128; ++g) {
        const uint8_t code = g < n ? make_code(wm) : (uint8_t) rnd(4);  // junk after the last element
        w[(g / 128) * 32 + (g % 32)] |= (uint8_t) (code << (6 - 2 * ((g % 128) / 32)));
    }
    // activations: lda padded past K (sometimes by an extra 64) with junk that must not be read
    const int64_t lda = (K + 63) / 64 * 64 + (rnd(2) ? 64 : 0);
    int8_t * a = xalloc((size_t) (lda * MAX_COLS));
    int32_t a_sum[MAX_COLS];
    for (int64_t c = 0; c < MAX_COLS; ++c) {
        a_sum[c] = 0;
        for (int64_t k = 0; k < lda; ++k) {
            a[c * lda + k] = k < K ? make_act(am) : (int8_t) (rnd(256) - 128);
            a_sum[c] += k < K ? a[c * lda + k] : 0;
        }
    }
    int32_t * ref = xalloc(sizeof(int32_t) * (size_t) (M * MAX_COLS));
    bitnet_i2s_gemm_generic(K, w, 0, M, a, a_sum, lda, MAX_COLS, ref, M);
    int32_t * out = xalloc(sizeof(int32_t) * (size_t) ((M + 3) * MAX_COLS));

    char what[96];
    snprintf(what, sizeof(what), "M=%lld w=%s a=%s", (long long) M, w_names[wm], act_names[am]);
    for (int i = 0; i < nk; ++i) {
        if (K % kerns[i].k_align != 0 || strcmp(kerns[i].name, "generic") == 0) {
            continue;
        }
        used[i] = true;
        for (int form = 0; form < (kerns[i].pack_cols > 0 ? 2 : 1); ++form) {
            const bool packed = form == 1;
            // column counts on the whole range (plain: every count up to RAW_COLS; packed: whole and
            // ragged groups), then random sub-ranges (r0 > 0, possibly odd) of random columns
            static const int64_t packed_cols[] = { 1, 15, 16, 17, 32, 33, MAX_COLS };
            const int n_counts = packed ? (int) (sizeof(packed_cols) / sizeof(packed_cols[0])) : RAW_COLS;
            for (int t = 0; t < n_counts; t += quick ? 3 : 1) {
                const int64_t nc = packed ? packed_cols[t] : t + 1;
                check_call(&kerns[i], packed, K, w, 0, M, a, a_sum, lda, nc, ref, M, out, st, what);
            }
            for (int t = 0; t < (quick ? 3 : 8); ++t) {
                const int64_t r0 = rnd(M);
                const int64_t r1 = r0 + 1 + rnd(M - r0);
                const int64_t nc = 1 + rnd(packed ? MAX_COLS : RAW_COLS);
                const int64_t c0 = rnd(MAX_COLS - nc + 1);  // columns other than the first
                check_call(&kerns[i], packed, K, w, r0, r1, a + c0 * lda, a_sum + c0, lda, nc, ref + c0 * M, M, out, st, what);
            }
        }
    }
    free(w);
    free(a);
    free(ref);
    free(out);
}


// every entry's activation quantizer against the generic one: same bytes, same scale bits, same sum
static void check_quantizers(int64_t K, int mode, struct stats * st) {
    float * x = xalloc(sizeof(float) * (size_t) K);
    int8_t * q = xalloc((size_t) K), * q_ref = xalloc((size_t) K);
    for (int64_t i = 0; i < K; ++i) {
        switch (mode) {
            case 0:  x[i] = (float) ((double) rnd(2000001) / 1000000.0 - 1.0) * 7.0f; break;  // random
            case 1:  x[i] = (float) (rnd(253) - 126) + (rnd(2) ? 0.5f : -0.5f); break;     // ties after scaling
            case 2:  x[i] = (float) (rnd(3) - 1) * 1e-7f; break;                             // below the 1e-5 floor
            default: x[i] = rnd(2) ? -0.0f : 0.0f; break;                                     // all zero
        }
    }
    if (mode == 1) {
        x[rnd(K)] = 127.0f;  // scale exactly 1: every other value is a .5 tie
    }
    float s_ref;
    int32_t sum_ref;
    bitnet_i2s_quantize_activations_generic(x, q_ref, K, &s_ref, &sum_ref);
    for (int i = 0; i < bitnet_i2s_n_kernels; ++i) {
        const struct bitnet_i2s_kernel * kern = &bitnet_i2s_kernels[i];
        float s;
        int32_t sum;
        memset(q, 0x5A, (size_t) K);
        kern->quantize_activations(x, q, K, &s, &sum);
        if (memcmp(q, q_ref, (size_t) K) != 0 || memcmp(&s, &s_ref, sizeof(s)) != 0 || sum != sum_ref) {
            fprintf(stderr, "MISMATCH %s quantizer: K=%lld mode %d: scale %g vs %g, sum %d vs %d\n", kern->name,
                    (long long) K, mode, (double) s, (double) s_ref, sum, sum_ref);
            st->failed++;
        } else {
            st->passed++;
        }
    }
    free(x);
    free(q);
    free(q_ref);
}

static void expect(bool ok, struct stats * st, const char * what) {
    if (ok) {
        st->passed++;
    } else {
        st->failed++;
        fprintf(stderr, "dispatch: %s\n", what);
    }
}

// bitnet_i2s_kernel_reload with stderr captured into buf (what it prints about BITNET_I2S_KERNEL)
static const struct bitnet_i2s_kernel * reload_capturing_stderr(char * buf, size_t size) {
    fflush(stderr);
    FILE * tmp = tmpfile();
    const int saved = dup(2);
    if (tmp == NULL || saved < 0 || dup2(fileno(tmp), 2) < 0) {
        fprintf(stderr, "cannot capture stderr\n");
        exit(2);
    }
    const struct bitnet_i2s_kernel * k = bitnet_i2s_kernel_reload();
    fflush(stderr);
    dup2(saved, 2);
    close(saved);
    rewind(tmp);
    const size_t n = fread(buf, 1, size - 1, tmp);
    buf[n] = '\0';
    fclose(tmp);
    return k;
}

// Runs first in main: the first bitnet_i2s_kernel_get of the process reads BITNET_I2S_KERNEL.
static void check_dispatch(const struct bitnet_i2s_kernel * kerns, int nk, struct stats * st) {
    const struct bitnet_i2s_kernel * fastest = &kerns[0], * generic = &kerns[nk - 1];
    expect(strcmp(generic->name, "generic") == 0 && generic->k_align == 1, st, "the generic kernel is not last");
    expect(generic->quantize_activations == bitnet_i2s_quantize_activations_generic, st,
           "the generic entry does not quantize with the generic quantizer");
    for (int i = 0; i < nk; ++i) {
        expect(bitnet_i2s_kernel_find(kerns[i].name) == &kerns[i] && kerns[i].quantize_activations != NULL &&
               kerns[i].gemm != NULL && (kerns[i].pack_cols == 0 || (kerns[i].pack && kerns[i].gemm_packed)),
               st, "incomplete table entry");
    }
    expect(bitnet_i2s_kernel_find("no-such-kernel") == NULL, st, "find() of an unknown name");

    // read once: the first call honours the variable, later changes are not seen without a reload
    setenv("BITNET_I2S_KERNEL", "generic", 1);
    expect(bitnet_i2s_kernel_get(2560) == generic, st, "first call ignored BITNET_I2S_KERNEL=generic");
    setenv("BITNET_I2S_KERNEL", fastest->name, 1);
    expect(bitnet_i2s_kernel_get(2560) == generic, st, "BITNET_I2S_KERNEL was read again after the first call");
    unsetenv("BITNET_I2S_KERNEL");
    expect(bitnet_i2s_kernel_get(2560) == generic, st, "BITNET_I2S_KERNEL was read again after the first call");

    // every kernel can be forced; a K it cannot do falls back to the fastest kernel that can
    char err[512];
    for (int i = 0; i < nk; ++i) {
        setenv("BITNET_I2S_KERNEL", kerns[i].name, 1);
        const struct bitnet_i2s_kernel * k = reload_capturing_stderr(err, sizeof(err));
        char what[sizeof(err) + 128];
        snprintf(what, sizeof(what), "BITNET_I2S_KERNEL=%s gave %s for K=2560, %s for K=100 (stderr: %s)", kerns[i].name,
                 bitnet_i2s_kernel_get(2560)->name, bitnet_i2s_kernel_get(100)->name, err);
        expect(k == &kerns[i] && bitnet_i2s_kernel_get(2560) == &kerns[i] && bitnet_i2s_kernel_get(8640) == &kerns[i] &&
               bitnet_i2s_kernel_get(100) == generic && err[0] == '\0', st, what);
    }

    // an unknown name: one line on stderr that names it, and the default choice
    setenv("BITNET_I2S_KERNEL", "no-such-kernel", 1);
    const struct bitnet_i2s_kernel * k = reload_capturing_stderr(err, sizeof(err));
    const char * nl = strchr(err, '\n');
    expect(k == fastest && bitnet_i2s_kernel_get(2560) == fastest && strstr(err, "BITNET_I2S_KERNEL=no-such-kernel") &&
           nl != NULL && nl[1] == '\0', st, "unknown BITNET_I2S_KERNEL: not one line naming it, or not the default");
    printf("unknown name: %s", err);

    // unset (and empty) means the default
    setenv("BITNET_I2S_KERNEL", "", 1);
    expect(reload_capturing_stderr(err, sizeof(err)) == fastest && err[0] == '\0', st, "BITNET_I2S_KERNEL= (empty)");
    unsetenv("BITNET_I2S_KERNEL");
    expect(reload_capturing_stderr(err, sizeof(err)) == fastest && err[0] == '\0', st, "BITNET_I2S_KERNEL unset");
    expect(bitnet_i2s_kernel_get(100) == generic, st, "K=100 did not fall back to the generic kernel");
    printf("default kernel: K=2560 -> %s, K=8640 -> %s, K=100 -> %s\n",
           bitnet_i2s_kernel_get(2560)->name, bitnet_i2s_kernel_get(8640)->name, bitnet_i2s_kernel_get(100)->name);
}

int main(int argc, char ** argv) {
    bool quick;
    uint64_t seed;
    if (!parse_args(argc, argv, &quick, &seed)) {
        return 2;
    }

    const int nk = bitnet_i2s_n_kernels;
    const struct bitnet_i2s_kernel * kerns = bitnet_i2s_kernels;
    printf("seed %llu; compiled:", (unsigned long long) seed);
    for (int i = 0; i < nk; ++i) {
        printf(" %s", kerns[i].name);
    }
    printf("\n");

    bool used[16] = { false };
    struct stats st = { 0, 0 };
    check_dispatch(kerns, nk, &st);

    static const int64_t Ks[] = { 128, 256, 1536, 2560, 6912, 8640 };
    static const int64_t Ms[] = { 1, 3, 17, 63, 64, 65, 200 };
    for (size_t ki = 0; ki < sizeof(Ks) / sizeof(Ks[0]); ++ki) {
        for (size_t mi = 0; mi < sizeof(Ms) / sizeof(Ms[0]); ++mi) {
            const int64_t K = Ks[ki], M = Ms[mi];
            if (quick && K * M > 2560 * 64) {
                continue;  // the generic oracle is slow under emulation; big shapes get one case below
            }
            // cycle the data modes so every (K, M) meets a different one, plus one random case
            const int idx = (int) (ki * 7 + mi);
            run_shape(K, M, (enum w_mode) (idx % N_W_MODES), (enum act_mode) ((idx / N_W_MODES) % N_ACT_MODES),
                      quick, kerns, nk, used, &st);
            if (!quick) {
                run_shape(K, M, (enum w_mode) rnd(N_W_MODES), (enum act_mode) rnd(N_ACT_MODES), quick, kerns, nk, used, &st);
            }
        }
    }
    // saturation worst cases: every code +1 or -1 against every activation at -128 or +127, long K
    for (int wm = W_ALL_PLUS; wm <= W_ALL_MINUS; ++wm) {
        for (int am = ACT_MIN; am <= ACT_MAX; ++am) {
            run_shape(8640, quick ? 4 : 66, (enum w_mode) wm, (enum act_mode) am, quick, kerns, nk, used, &st);
            run_shape(6912, quick ? 3 : 17, (enum w_mode) wm, (enum act_mode) am, quick, kerns, nk, used, &st);
        }
    }
    if (quick) {  // one large shape per K family, so quick mode still covers long rows with M > 64
        run_shape(8640, 70, W_WITH_INVALID, ACT_RANDOM, quick, kerns, nk, used, &st);
        run_shape(2560, 130, W_RANDOM, ACT_EXTREMES, quick, kerns, nk, used, &st);
    }

    static const int64_t quant_Ks[] = { 1, 5, 15, 16, 17, 31, 32, 33, 64, 100, 2560, 8640 };
    for (size_t ki = 0; ki < sizeof(quant_Ks) / sizeof(quant_Ks[0]); ++ki) {
        for (int mode = 0; mode < 4; ++mode) {
            check_quantizers(quant_Ks[ki], mode, &st);
        }
    }

    printf("tested:");
    for (int i = 0; i < nk; ++i) {
        if (used[i]) {
            printf(" %s", kerns[i].name);
        }
    }
    printf("\n%ld passed, %ld failed\n", st.passed, st.failed);
    return st.failed == 0 ? 0 : 1;
}
