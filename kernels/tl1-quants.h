// TL1 tensor format (docs/formats.md §5): ternary weights in pairs (w0, w1) along a row, each pair stored as a
// 4-bit index 3*w0 + w1 + 4 in [0, 8], in tiles of 32 rows, followed by I2_S's 32-byte tail (the f32
// per-tensor scale). For tile T and pair p there are 16 bytes: byte i holds the index of row 32T + i in its low
// nibble and of row 32T + 16 + i in its high nibble. Like I2_S, functions here see a whole tensor: rows are
// padded to whole tiles (with zero weights), so a TL1 tensor has no row view. K is padded to even.
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

#define BITNET_TL1_TILE_ROWS  32   // rows per tile: 16 bytes (two nibbles each) per pair
#define BITNET_TL1_PAIR_BYTES 16   // bytes of one (tile, pair)
#define BITNET_TL1_MAX_INDEX  8    // 3*w0 + w1 + 4 for (w0, w1) = (1, 1)
#define BITNET_TL1_TAIL_SIZE  32   // same tail as I2_S: f32 scale + 28 reserved bytes

// Files that hold TL1 tensors name this layout in GGML_TL1_LAYOUT_KEY (ggml.h, patch 0016: tools outside ggml
// write it too); a change to any byte of the layout must change GGML_TL1_LAYOUT.

// pairs along a row of K (K padded to even)
static inline int64_t bitnet_tl1_pairs(int64_t K) {
    return (K + 1) / 2;
}

static inline int64_t bitnet_tl1_tiles(int64_t M) {
    return (M + BITNET_TL1_TILE_ROWS - 1) / BITNET_TL1_TILE_ROWS;
}

// bytes of one tile: every pair of a 32-row range
static inline size_t bitnet_tl1_tile_bytes(int64_t K) {
    return (size_t) bitnet_tl1_pairs(K) * BITNET_TL1_PAIR_BYTES;
}

// bytes of an M x K tensor, tail included: ceil(M/32)*32 * ceil(K/2)*2 / 4 + 32
static inline size_t bitnet_tl1_nbytes(int64_t K, int64_t M) {
    return (size_t) bitnet_tl1_tiles(M) * bitnet_tl1_tile_bytes(K) + BITNET_TL1_TAIL_SIZE;
}

// index of pair p of row r (0 .. 31) in a tile's data
static inline int bitnet_tl1_index(const uint8_t * tile, int r, int64_t p) {
    return (tile[(size_t) p * BITNET_TL1_PAIR_BYTES + r % 16] >> (4 * (r / 16))) & 15;
}

// weight d (0: w0, 1: w1) of the pair stored as idx; an index above 8, which no writer produces, reads as a
// pair of zeros
static inline int bitnet_tl1_digit(int idx, int d) {
    if (idx > BITNET_TL1_MAX_INDEX) {
        return 0;
    }
    return (d == 0 ? idx / 3 : idx % 3) - 1;
}

float bitnet_tl1_scale(const void * data, int64_t K, int64_t M);

// t: M x K ternary weights (row-major) -> dst (bitnet_tl1_nbytes bytes)
void bitnet_tl1_pack(const int8_t * t, int64_t K, int64_t M, float scale, void * dst);

// M x K floats (a whole tensor) -> TL1 with bitnet_ternarize (the rule of I2_S); returns bitnet_tl1_nbytes
size_t bitnet_tl1_quantize(const float * x, void * dst, int64_t K, int64_t M);

// the weight of row r, column k, in {-1, 0, 1} (an index above 8, which no writer produces, reads as 0)
int bitnet_tl1_weight(const uint8_t * w, int64_t K, int64_t r, int64_t k);

void bitnet_tl1_dequantize(const void * src, float * y, int64_t K, int64_t M);

// nbytes covers the (tile, pair) groups + tail: whole 16-byte groups, every index at most 8, a finite
// non-negative scale
bool bitnet_tl1_validate(const void * data, size_t nbytes);

#ifdef __cplusplus
}
#endif
