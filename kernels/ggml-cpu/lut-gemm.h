// What the lookup-table formats (TL1, TL2) share: the kernel signatures, the kernel table entry, and how a
// TL kernel is chosen. The per-format contracts (tile height, table layout, padding) are in tl1-gemm.h and
// tl2-gemm.h; the mat-mul glue for both is lut-cpu.c.
#pragma once

#include <stdint.h>
#include <string.h>

#ifdef __cplusplus
extern "C" {
#endif

// one token: its lookup table, then the table GEMV over whole tiles [tile0, tile1) into
// out[tile_rows * (tile - tile0) + i]
typedef void (*bitnet_lut_table_t)(const int8_t * a, int64_t K, uint8_t * table);
typedef void (*bitnet_lut_gemv_t)(int64_t K, const uint8_t * w, int64_t tile0, int64_t tile1, const uint8_t * table,
                                  int32_t * out);

// several tokens, one tile, ncols <= BITNET_LUT_GEMM_MAX_COLS columns: out[c*ldo + i] = exact int32 dot of row
// tile_rows*tile + i with column c; a_sum[c] is the sum of column c's activations (for kernels that use t + 1)
#define BITNET_LUT_GEMM_MAX_COLS 128
typedef void (*bitnet_lut_gemm_t)(int64_t K, const uint8_t * w, int64_t tile, const int8_t * a, const int32_t * a_sum,
                                  int64_t lda, int64_t ncols, int32_t * out, int64_t ldo);

// One kernel variant. Its name is the I2_S kernel it goes with: the mat-mul takes the activation quantizer
// from that I2_S entry, and BITNET_I2S_KERNEL picks both (docs/usage.md).
struct bitnet_lut_kernel {
    const char *       name;
    bitnet_lut_table_t table;
    bitnet_lut_gemv_t  gemv;
    bitnet_lut_gemm_t  gemm;
};

// entry m of group (or pair) g of a token's table: every format stores, per group, the 16 low bytes then the
// 16 high bytes of its int16 entries, the layout byte shuffles read
static inline int16_t bitnet_lut_entry(const uint8_t * table, int64_t g, int m) {
    return (int16_t) (table[32 * g + m] | (table[32 * g + 16 + m] << 8));
}

// writes entry m of group g (the inverse of bitnet_lut_entry)
static inline void bitnet_lut_set_entry(uint8_t * table, int64_t g, int m, int e) {
    table[32 * g + m] = (uint8_t) (e & 0xFF);
    table[32 * g + 16 + m] = (uint8_t) ((e >> 8) & 0xFF);
}

#define BITNET_LUT_COUNT(a) ((int) (sizeof(a) / sizeof((a)[0])))

// the entry of `kernels` (n entries, the generic one last) that goes with I2_S kernel `i2s_name`, else the last
static inline const struct bitnet_lut_kernel * bitnet_lut_kernel_for(const struct bitnet_lut_kernel * kernels, int n,
                                                                     const char * i2s_name) {
    for (int i = 0; i < n - 1; ++i) {
        if (strcmp(kernels[i].name, i2s_name) == 0) {
            return &kernels[i];
        }
    }
    return &kernels[n - 1];
}

#ifdef __cplusplus
}
#endif
