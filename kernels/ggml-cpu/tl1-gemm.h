// Integer kernels for TL1 weights x int8 activations (docs/formats.md §3, §5): the I2_S contract, by tiles.
// For the rows of tile `tile` (32 rows, whole tiles: rows past M are zero weights) and columns c in [0, ncols):
//   out[c*ldo + i] = sum_k t(32*tile + i, k) * a[c*lda + k]      exactly in int32
// Activations must lie in [-127, 127] (the I2_S quantizer's range for finite input: the lookup kernels' int16
// bound below needs it). Activation rows must be readable and zero from K up to bitnet_tl1_act_len(K).
#pragma once

#include "lut-gemm.h"
#include "tl1-quants.h"

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

// pairs per int16 block of the lookup kernels: |entry| <= 2 * 127 = 254, and 128 * 254 = 32512 < 32768, so no
// int16 block sum can wrap (the NEON kernel's low-byte / sign-byte split is exact mod 2^16 within a block)
#define BITNET_TL1_BLOCK_PAIRS 128
_Static_assert(BITNET_TL1_BLOCK_PAIRS * 2 * 127 <= 32767, "an int16 block sum could overflow");

// the table builders work 8 pairs (16 activations, one NEON vector) at a time
#define BITNET_TL1_TABLE_STEP 8

static inline int64_t bitnet_tl1_table_pairs(int64_t K) {
    return (bitnet_tl1_pairs(K) + BITNET_TL1_TABLE_STEP - 1) / BITNET_TL1_TABLE_STEP * BITNET_TL1_TABLE_STEP;
}

// bytes of one token's table: per pair, the 16 low bytes then the 16 high bytes of the int16 entries
// e[idx] = (idx/3 - 1)*a0 + (idx%3 - 1)*a1 of the pair's activations (a0, a1); e[idx] = 0 for idx >= 9
static inline size_t bitnet_tl1_table_bytes(int64_t K) {
    return (size_t) bitnet_tl1_table_pairs(K) * 32;
}

// activation row length the kernels read (zero from K): whole table steps (the gemm kernels read the same
// 16-activation steps), rounded to 64 bytes so that rows stay aligned
static inline int64_t bitnet_tl1_act_len(int64_t K) {
    return (2 * bitnet_tl1_table_pairs(K) + 63) / 64 * 64;
}

// the kernels follow lut-gemm.h with tiles of 32 rows; a_sum is unused by the TL1 kernels (they decode signed
// weights)
void bitnet_tl1_table_generic(const int8_t * a, int64_t K, uint8_t * table);
void bitnet_tl1_gemv_generic(int64_t K, const uint8_t * w, int64_t tile0, int64_t tile1, const uint8_t * table,
                             int32_t * out);
void bitnet_tl1_gemm_generic(int64_t K, const uint8_t * w, int64_t tile, const int8_t * a, const int32_t * a_sum,
                             int64_t lda, int64_t ncols, int32_t * out, int64_t ldo);

// same guards as i2s-kernels.h: a TL1 kernel exists exactly when the I2_S kernel of its name does
#if defined(__aarch64__) && defined(__ARM_NEON)
#  define BITNET_TL1_HAVE_NEON 1
void bitnet_tl1_table_neon(const int8_t * a, int64_t K, uint8_t * table);
void bitnet_tl1_gemv_neon(int64_t K, const uint8_t * w, int64_t tile0, int64_t tile1, const uint8_t * table,
                          int32_t * out);
void bitnet_tl1_gemm_neon(int64_t K, const uint8_t * w, int64_t tile, const int8_t * a, const int32_t * a_sum,
                          int64_t lda, int64_t ncols, int32_t * out, int64_t ldo);
#  if defined(__ARM_FEATURE_DOTPROD)
#    define BITNET_TL1_HAVE_DOTPROD 1
void bitnet_tl1_gemm_dotprod(int64_t K, const uint8_t * w, int64_t tile, const int8_t * a, const int32_t * a_sum,
                             int64_t lda, int64_t ncols, int32_t * out, int64_t ldo);
#  endif
#endif

extern const struct bitnet_lut_kernel bitnet_tl1_kernels[];  // fastest first, the generic one last
extern const int                      bitnet_tl1_n_kernels;

#ifdef __cplusplus
}
#endif
