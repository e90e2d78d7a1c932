// What every SIMD I2_S kernel shares: how a weight row maps onto the packed blocks, the K they can
// handle, and the grouping of activation columns that keeps per-column accumulators in registers.
// Included by the arch kernel sources and by the dispatcher (for BITNET_I2S_SIMD_K_ALIGN).
#pragma once

#include "i2s-quants.h"

#include <stdint.h>

// The SIMD kernels walk rows in 64-element halves of a 128-block: they need K % 64 == 0
// (every row then starts at element 0 or 64 of a block; K = 8640 is such a case).
#define BITNET_I2S_SIMD_K_ALIGN 64

// the packed block holding global element g
#define BITNET_I2S_BLOCK_OF(w, g) ((w) + ((g) / BITNET_I2S_QK) * BITNET_I2S_BLOCK_SIZE)
// first block of weight row r, and whether the row starts at element 64 of that block
#define BITNET_I2S_ROW_START(K, w, r) BITNET_I2S_BLOCK_OF(w, (r) * (K))
#define BITNET_I2S_ROW_MID(K, r)      ((((r) * (K)) % BITNET_I2S_QK) != 0)

#if defined(__GNUC__) || defined(__clang__)
#  define BITNET_I2S_INLINE static inline __attribute__((always_inline))
// loops over register-blocked columns/rows must be unrolled completely, or the accumulator arrays
// live on the stack (GCC -O2 does not do it by itself)
#  define BITNET_I2S_UNROLL _Pragma("GCC unroll 16")
#else
#  define BITNET_I2S_INLINE static inline
#  define BITNET_I2S_UNROLL
#endif

// activation columns that share one decode of a block: a kernel sizes its accumulator arrays with it
#define BITNET_I2S_GROUP_COLS 4

// Calls ROWS(C, K, w, r0, r1, a, a_sum, lda, out, ldo) for each group of up to BITNET_I2S_GROUP_COLS
// activation columns, with C a compile-time constant in every call so the per-column accumulators stay
// in registers.
#define BITNET_I2S_FOR_COLUMN_GROUPS(ROWS, K, w, r0, r1, a, a_sum, lda, ncols, out, ldo)                   \
    for (int64_t c0_ = 0; c0_ < (ncols); c0_ += BITNET_I2S_GROUP_COLS) {                                    \
        const int8_t * ac_ = (a) + c0_ * (lda);                                                             \
        int32_t * oc_ = (out) + c0_ * (ldo);                                                                \
        switch ((ncols) - c0_ < BITNET_I2S_GROUP_COLS ? (ncols) - c0_ : BITNET_I2S_GROUP_COLS) {            \
            case 1:  ROWS(1, K, w, r0, r1, ac_, (a_sum) + c0_, lda, oc_, ldo); break;                       \
            case 2:  ROWS(2, K, w, r0, r1, ac_, (a_sum) + c0_, lda, oc_, ldo); break;                       \
            case 3:  ROWS(3, K, w, r0, r1, ac_, (a_sum) + c0_, lda, oc_, ldo); break;                       \
            default: ROWS(4, K, w, r0, r1, ac_, (a_sum) + c0_, lda, oc_, ldo); break;                       \
        }                                                                                                   \
    }
_Static_assert(BITNET_I2S_GROUP_COLS == 4, "BITNET_I2S_FOR_COLUMN_GROUPS has cases for 1..4 columns");
