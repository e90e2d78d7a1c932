// Integer kernels for TL2 weights x int8 activations (docs/formats.md §3, §5): the I2_S contract, by tiles.
// For the rows of tile `tile` (64 rows, whole tiles: rows past M are zero weights) and columns c in [0, ncols):
//   out[c*ldo + i] = sum_k t(64*tile + i, k) * a[c*lda + k]      exactly in int32
// Activation rows must be readable and zero from K up to bitnet_tl2_act_len(K).
#pragma once

#include "lut-gemm.h"
#include "tl2-quants.h"

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

// groups per int16 block of the lookup kernels: |entry| <= 3 * 127 = 381, and 80 * 381 = 30480 < 32768, so no
// int16 partial sum can wrap; a multiple of the chunk's 8 groups
#define BITNET_TL2_BLOCK_GROUPS 80
_Static_assert(BITNET_TL2_BLOCK_GROUPS * 3 * 127 <= 32767, "an int16 block sum could overflow");
_Static_assert(BITNET_TL2_BLOCK_GROUPS % BITNET_TL2_CHUNK_GROUPS == 0, "blocks are whole chunks");

// the table builders work 10 groups (30 activations) at a time
#define BITNET_TL2_TABLE_STEP 10

static inline int64_t bitnet_tl2_table_groups(int64_t K) {
    return (bitnet_tl2_groups(K) + BITNET_TL2_TABLE_STEP - 1) / BITNET_TL2_TABLE_STEP * BITNET_TL2_TABLE_STEP;
}

// bytes of one token's table: per group, the 16 low bytes then the 16 high bytes of the int16 sums e[m] of
// the group's activations weighted by the digits of m = |v| (0 .. 13; e[14] = e[15] = 0)
static inline size_t bitnet_tl2_table_bytes(int64_t K) {
    return (size_t) bitnet_tl2_table_groups(K) * 32;
}

// activation row length the kernels read (zero from K): whole table steps, plus one vector of slack
static inline int64_t bitnet_tl2_act_len(int64_t K) {
    return (3 * bitnet_tl2_table_groups(K) + 64 + 63) / 64 * 64;
}

// the kernels follow lut-gemm.h with tiles of 64 rows
void bitnet_tl2_table_generic(const int8_t * a, int64_t K, uint8_t * table);
void bitnet_tl2_gemv_generic(int64_t K, const uint8_t * w, int64_t tile0, int64_t tile1, const uint8_t * table,
                             int32_t * out);
void bitnet_tl2_gemm_generic(int64_t K, const uint8_t * w, int64_t tile, const int8_t * a, const int32_t * a_sum,
                             int64_t lda, int64_t ncols, int32_t * out, int64_t ldo);

#if defined(__AVX512F__) && defined(__AVX512BW__) && defined(__AVX512VBMI__) && defined(__AVX512VNNI__)
#  define BITNET_TL2_HAVE_AVX512 1
void bitnet_tl2_table_avx512(const int8_t * a, int64_t K, uint8_t * table);
void bitnet_tl2_gemv_avx512(int64_t K, const uint8_t * w, int64_t tile0, int64_t tile1, const uint8_t * table,
                            int32_t * out);
void bitnet_tl2_gemm_avx512(int64_t K, const uint8_t * w, int64_t tile, const int8_t * a, const int32_t * a_sum,
                            int64_t lda, int64_t ncols, int32_t * out, int64_t ldo);
#endif

#if (defined(__x86_64__) || defined(_M_X64)) && defined(__AVX2__)
#  define BITNET_TL2_HAVE_AVX2 1
void bitnet_tl2_table_avx2(const int8_t * a, int64_t K, uint8_t * table);
void bitnet_tl2_gemv_avx2(int64_t K, const uint8_t * w, int64_t tile0, int64_t tile1, const uint8_t * table,
                          int32_t * out);
void bitnet_tl2_gemm_avx2(int64_t K, const uint8_t * w, int64_t tile, const int8_t * a, const int32_t * a_sum,
                          int64_t lda, int64_t ncols, int32_t * out, int64_t ldo);
// 256-bit vpdpbusd: VEX AVX-VNNI or EVEX AVX512-VNNI + VL (as i2s-kernels.h)
#  if defined(__AVXVNNI__) || (defined(__AVX512VNNI__) && defined(__AVX512VL__))
#    define BITNET_TL2_HAVE_AVXVNNI 1
void bitnet_tl2_gemm_avxvnni(int64_t K, const uint8_t * w, int64_t tile, const int8_t * a, const int32_t * a_sum,
                             int64_t lda, int64_t ncols, int32_t * out, int64_t ldo);
#  endif
#endif

extern const struct bitnet_lut_kernel bitnet_tl2_kernels[];  // fastest first, the generic one last
extern const int                      bitnet_tl2_n_kernels;

#ifdef __cplusplus
}
#endif
