// The Q6_K x Q8_K dot products of our build's ggml-cpu. The lm_head of our files is Q6_K, and in token generation
// it is a fifth of the time (docs/bench/sweep.md).
// - bitnet_vec_dot_q6_K_q8_K: what ggml-cpu's type table calls for Q6_K (patch 0027). Where this build has a
//   faster kernel than ggml's own, it runs; elsewhere the call goes to ggml_vec_dot_q6_K_q8_K unchanged.
// - bitnet_one_column_rows: ggml's one-column mat-mul hands it each tile of rows (patch 0028). A core keeps more
//   lines in flight on two streams far apart than on one, so rows r and r + n/2 of the tile are read together
//   (Q6_K from memory, 2 threads: 22.3 -> 28 GB/s, at the read loop's rate). Returns false for the types it
//   leaves to ggml's row-by-row loop.
#pragma once

#include "ggml.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

#if (defined(__x86_64__) || defined(_M_X64)) && defined(__AVX512F__) && defined(__AVX512BW__) && defined(__AVX512VNNI__)
#    define BITNET_Q6K_HAVE_AVX512VNNI 1
void bitnet_vec_dot_q6_K_q8_K_avx512vnni(int n, float * s, size_t bs, const void * vx, size_t bx, const void * vy,
                                         size_t by, int nrc);
void bitnet_q6_K_rows_avx512vnni(int n, const void * rows, size_t row_bytes, int64_t nrows, const void * vy,
                                 float * out);
#endif

// ggml's vec_dot signature (ggml_vec_dot_t). The AVX-512 kernel does one row per call (nrc = 1, what ggml-cpu asks
// of Q6_K on x86); elsewhere every argument goes to ggml's function (which may take nrc = 2 on ARM with i8mm)
void bitnet_vec_dot_q6_K_q8_K(int n, float * s, size_t bs, const void * vx, size_t bx, const void * vy, size_t by,
                              int nrc);

// out[i] = row i . y for nrows rows of n elements, row_bytes apart (y in the type's vec_dot_type); false: not done
bool bitnet_one_column_rows(enum ggml_type type, int n, const void * rows, size_t row_bytes, int64_t nrows,
                            const void * y, float * out);

#ifdef __cplusplus
}
#endif
