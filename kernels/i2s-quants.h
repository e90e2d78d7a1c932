// I2_S tensor format (docs/formats.md §2): ternary codes, 4 per byte, in blocks of
// 128 elements / 32 bytes, followed by a 32-byte tail whose first 4 bytes are the f32
// per-tensor scale. These functions see a *whole tensor*: the scale lives after the last
// row, so no function here can work on a single row in isolation.
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

#define BITNET_I2S_QK         128  // elements per packed block
#define BITNET_I2S_BLOCK_SIZE 32   // bytes per packed block
#define BITNET_I2S_TAIL_SIZE  32   // f32 scale + 28 reserved bytes

// code of global element g: 0 -> -1, 1 -> 0, 2 -> +1, 3 -> invalid (read as 0)
static inline int bitnet_i2s_code(const uint8_t * q, int64_t g) {
    const int64_t e = g % BITNET_I2S_QK;
    return (q[(g / BITNET_I2S_QK) * BITNET_I2S_BLOCK_SIZE + (e % 32)] >> (6 - 2 * (e / 32))) & 3;
}

static inline int bitnet_i2s_ternary(int code) {
    return code == 0 ? -1 : (code == 2 ? 1 : 0);
}

// the per-tensor scale of an I2_S tensor of n elements
float bitnet_i2s_scale(const void * data, int64_t n);

// The ternary rule of every bitnet type: t[i] in {-1, 0, 1} for n floats (a whole tensor); returns the scale.
// Already-ternary input (every |x| is 0 or the tensor's max) keeps its magnitude exactly;
// anything else is ternarized with absmean (s = max(mean|x|, 1e-5), t = clamp(round_half_even(x * (1/s)), -1, 1)).
float bitnet_ternarize(const float * x, int64_t n, int8_t * t);

// Quantize n floats (a whole tensor) to I2_S with bitnet_ternarize; returns n/4 + 32.
// n must be a multiple of BITNET_I2S_QK (the format cannot hold a partial last block).
size_t bitnet_i2s_quantize(const float * x, void * dst, int64_t n);

// same, with the signature of ggml's from_float
void bitnet_i2s_quantize_ref(const float * x, void * dst, int64_t n);

// Dequantize a whole tensor of n elements (its scale is read after the codes).
void bitnet_i2s_dequantize(const void * src, float * y, int64_t n);

// nbytes covers codes + tail; checks that the scale is finite and non-negative
bool bitnet_i2s_validate(const void * data, size_t nbytes);

#ifdef __cplusplus
}
#endif
