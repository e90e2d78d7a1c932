// Portable TL2 kernels: the lookup arithmetic of the SIMD ones, one row at a time (the test oracle for them).
#include "tl2-gemm.h"

void bitnet_tl2_table_generic(const int8_t * a, int64_t K, uint8_t * table) {
    const int64_t G = bitnet_tl2_table_groups(K);
    for (int64_t g = 0; g < G; ++g) {
        for (int m = 0; m < 16; ++m) {
            int e = 0;
            for (int d = 0; d < 3; ++d) {
                e += bitnet_tl2_digit(m, 0, d) * a[3 * g + d];
            }
            bitnet_lut_set_entry(table, g, m, e);
        }
    }
}

void bitnet_tl2_gemv_generic(int64_t K, const uint8_t * w, int64_t tile0, int64_t tile1, const uint8_t * table,
                             int32_t * out) {
    const int64_t G = bitnet_tl2_groups(K);
    for (int64_t tile = tile0; tile < tile1; ++tile) {
        const uint8_t * wt = w + (size_t) tile * bitnet_tl2_tile_bytes(K);
        for (int r = 0; r < BITNET_TL2_TILE_ROWS; ++r) {
            int32_t acc = 0;
            for (int64_t g0 = 0; g0 < G; g0 += BITNET_TL2_BLOCK_GROUPS) {
                int16_t s = 0;  // as the SIMD kernels: int16 within a block (it cannot wrap), then int32
                for (int64_t g = g0; g < G && g < g0 + BITNET_TL2_BLOCK_GROUPS; ++g) {
                    int neg;
                    const int mag = bitnet_tl2_field(wt, r, g, &neg);
                    const int16_t e = bitnet_lut_entry(table, g, mag);
                    s = (int16_t) (neg ? s - e : s + e);
                }
                acc += s;
            }
            out[(tile - tile0) * BITNET_TL2_TILE_ROWS + r] = acc;
        }
    }
}

void bitnet_tl2_gemm_generic(int64_t K, const uint8_t * w, int64_t tile, const int8_t * a, const int32_t * a_sum,
                             int64_t lda, int64_t ncols, int32_t * out, int64_t ldo) {
    (void) a_sum;
    const int64_t G = bitnet_tl2_groups(K);
    const uint8_t * wt = w + (size_t) tile * bitnet_tl2_tile_bytes(K);
    for (int r = 0; r < BITNET_TL2_TILE_ROWS; ++r) {
        for (int64_t c = 0; c < ncols; ++c) {
            out[c * ldo + r] = 0;
        }
        for (int64_t g = 0; g < G; ++g) {
            int neg;
            const int mag = bitnet_tl2_field(wt, r, g, &neg);
            for (int d = 0; d < 3; ++d) {
                const int t = bitnet_tl2_digit(mag, neg, d);
                for (int64_t c = 0; t != 0 && c < ncols; ++c) {
                    out[c * ldo + r] += t * a[c * lda + 3 * g + d];
                }
            }
        }
    }
}
