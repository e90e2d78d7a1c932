// TL2 tensor format (docs/formats.md §5): ternary weights in groups of 3 along a row, each group stored as a
// 4-bit |v| (v = 9*w0 + 3*w1 + w2 in [-13, 13]) plus a sign bit, in tiles of 64 rows and chunks of 8 groups,
// followed by I2_S's 32-byte tail (the f32 per-tensor scale). Like I2_S, functions here see a whole tensor:
// the size is not a multiple of a row's (rows are padded to whole tiles), so a TL2 tensor has no row view.
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

#define BITNET_TL2_TILE_ROWS    64   // rows per tile: one 64-byte vector of indices per group
#define BITNET_TL2_CHUNK_GROUPS 8    // groups per chunk
#define BITNET_TL2_CHUNK_BYTES  320  // 4 x 64 index bytes (two groups per byte), then 8 x 8 sign bytes
#define BITNET_TL2_TAIL_SIZE    32   // same tail as I2_S: f32 scale + 28 reserved bytes

// Files that hold TL2 tensors name this layout in GGML_TL2_LAYOUT_KEY (ggml.h, patch 0016: tools outside ggml
// write it too); a change to any byte of the layout must change GGML_TL2_LAYOUT.

// sign bit i of a group (bit i of its 64-bit little-endian word) belongs to this row of the tile: the order in
// which x86's unpack{lo,hi}_epi8 lay out the int16 lanes of the looked-up low and high bytes
static inline int bitnet_tl2_sign_row(int i) {
    return 16 * ((i % 32) / 8) + 8 * (i / 32) + i % 8;
}

// the inverse: which sign bit row r of a tile has
static inline int bitnet_tl2_sign_bit(int r) {
    return 32 * ((r % 16) / 8) + 8 * (r / 16) + r % 8;
}

// groups of 3 along a row of K, padded to whole chunks
static inline int64_t bitnet_tl2_groups(int64_t K) {
    const int64_t g = (K + 2) / 3;
    return (g + BITNET_TL2_CHUNK_GROUPS - 1) / BITNET_TL2_CHUNK_GROUPS * BITNET_TL2_CHUNK_GROUPS;
}

static inline int64_t bitnet_tl2_tiles(int64_t M) {
    return (M + BITNET_TL2_TILE_ROWS - 1) / BITNET_TL2_TILE_ROWS;
}

// bytes of one tile: every chunk of a row range
static inline size_t bitnet_tl2_tile_bytes(int64_t K) {
    return (size_t) (bitnet_tl2_groups(K) / BITNET_TL2_CHUNK_GROUPS) * BITNET_TL2_CHUNK_BYTES;
}

// bytes of an M x K tensor, tail included
static inline size_t bitnet_tl2_nbytes(int64_t K, int64_t M) {
    return (size_t) bitnet_tl2_tiles(M) * bitnet_tl2_tile_bytes(K) + BITNET_TL2_TAIL_SIZE;
}

// |v| of group g (0 .. groups-1) of row r (0 .. 63) in a tile's data, and through *neg its sign bit
static inline int bitnet_tl2_field(const uint8_t * tile, int r, int64_t g, int * neg) {
    const uint8_t * c = tile + (size_t) (g / BITNET_TL2_CHUNK_GROUPS) * BITNET_TL2_CHUNK_BYTES;
    const int gi = (int) (g % BITNET_TL2_CHUNK_GROUPS);
    const int bit = bitnet_tl2_sign_bit(r);
    *neg = (c[256 + 8 * gi + bit / 8] >> (bit % 8)) & 1;
    return (c[64 * (gi / 2) + r] >> (4 * (gi % 2))) & 15;
}

// weight d (0, 1, 2) of the group whose stored fields are (mag, neg); an index above 13, which no writer
// produces, reads as a group of zeros
static inline int bitnet_tl2_digit(int mag, int neg, int d) {
    if (mag > 13) {
        return 0;
    }
    const int u = (neg ? -mag : mag) + 13;  // base-3 digits of w + 1, w0 first
    return (d == 0 ? u / 9 : (d == 1 ? u / 3 % 3 : u % 3)) - 1;
}

float bitnet_tl2_scale(const void * data, int64_t K, int64_t M);

// t: M x K ternary weights (row-major) -> dst (bitnet_tl2_nbytes bytes)
void bitnet_tl2_pack(const int8_t * t, int64_t K, int64_t M, float scale, void * dst);

// M x K floats (a whole tensor) -> TL2 with bitnet_ternarize (the rule of I2_S); returns bitnet_tl2_nbytes
size_t bitnet_tl2_quantize(const float * x, void * dst, int64_t K, int64_t M);

// the weight of row r, column k, in {-1, 0, 1} (an index above 13, which no writer produces, reads as 0)
int bitnet_tl2_weight(const uint8_t * w, int64_t K, int64_t r, int64_t k);

void bitnet_tl2_dequantize(const void * src, float * y, int64_t K, int64_t M);

// nbytes covers chunks + tail: whole chunks, every index at most 13, a finite non-negative scale
bool bitnet_tl2_validate(const void * data, size_t nbytes);

#ifdef __cplusplus
}
#endif
