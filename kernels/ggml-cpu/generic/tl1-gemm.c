// Portable TL1 kernels: the lookup arithmetic of the SIMD ones, one row at a time (the test oracle for them).
#include "tl1-gemm.h"

void bitnet_tl1_table_generic(const int8_t * a, int64_t K, uint8_t * table) {
    const int64_t P = bitnet_tl1_table_pairs(K);
    for (int64_t p = 0; p < P; ++p) {
        for (int idx = 0; idx < 16; ++idx) {
            const int e = bitnet_tl1_digit(idx, 0) * a[2 * p] + bitnet_tl1_digit(idx, 1) * a[2 * p + 1];
            bitnet_lut_set_entry(table, p, idx, e);
        }
    }
}

void bitnet_tl1_gemv_generic(int64_t K, const uint8_t * w, int64_t tile0, int64_t tile1, const uint8_t * table,
                             int32_t * out) {
    const int64_t P = bitnet_tl1_pairs(K);
    for (int64_t tile = tile0; tile < tile1; ++tile) {
        const uint8_t * wt = w + (size_t) tile * bitnet_tl1_tile_bytes(K);
        for (int r = 0; r < BITNET_TL1_TILE_ROWS; ++r) {
            int32_t acc = 0;
            for (int64_t p0 = 0; p0 < P; p0 += BITNET_TL1_BLOCK_PAIRS) {
                int16_t s = 0;  // as the SIMD kernels: int16 within a block (it cannot wrap), then int32
                for (int64_t p = p0; p < P && p < p0 + BITNET_TL1_BLOCK_PAIRS; ++p) {
                    const int idx = bitnet_tl1_index(wt, r, p);
                    s = (int16_t) (s + bitnet_lut_entry(table, p, idx));
                }
                acc += s;
            }
            out[(tile - tile0) * BITNET_TL1_TILE_ROWS + r] = acc;
        }
    }
}

void bitnet_tl1_gemm_generic(int64_t K, const uint8_t * w, int64_t tile, const int8_t * a, const int32_t * a_sum,
                             int64_t lda, int64_t ncols, int32_t * out, int64_t ldo) {
    (void) a_sum;
    const int64_t P = bitnet_tl1_pairs(K);
    const uint8_t * wt = w + (size_t) tile * bitnet_tl1_tile_bytes(K);
    for (int r = 0; r < BITNET_TL1_TILE_ROWS; ++r) {
        for (int64_t c = 0; c < ncols; ++c) {
            out[c * ldo + r] = 0;
        }
        for (int64_t p = 0; p < P; ++p) {
            const int idx = bitnet_tl1_index(wt, r, p);
            const int w0 = bitnet_tl1_digit(idx, 0), w1 = bitnet_tl1_digit(idx, 1);
            if (w0 == 0 && w1 == 0) {
                continue;
            }
            for (int64_t c = 0; c < ncols; ++c) {
                out[c * ldo + r] += w0 * a[c * lda + 2 * p] + w1 * a[c * lda + 2 * p + 1];
            }
        }
    }
}
