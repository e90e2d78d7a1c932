// Reference (de)quantization of whole TL2 tensors; compiled into ggml-base.
#include "tl2-quants.h"
#include "i2s-quants.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

float bitnet_tl2_scale(const void * data, int64_t K, int64_t M) {
    float s;
    memcpy(&s, (const uint8_t *) data + bitnet_tl2_nbytes(K, M) - BITNET_TL2_TAIL_SIZE, sizeof(s));
    return s;
}

// signed group value of row r, group g; rows past M and columns past K are zero weights
static int group_value(const int8_t * t, int64_t K, int64_t M, int64_t r, int64_t g) {
    int v = 0;
    for (int64_t k = 3 * g; k < 3 * g + 3; ++k) {
        v = 3 * v + (r < M && k < K ? t[r * K + k] : 0);
    }
    return v;
}

void bitnet_tl2_pack(const int8_t * t, int64_t K, int64_t M, float scale, void * dst) {
    const int64_t G = bitnet_tl2_groups(K);
    uint8_t * p = (uint8_t *) dst;
    for (int64_t r0 = 0; r0 < bitnet_tl2_tiles(M) * BITNET_TL2_TILE_ROWS; r0 += BITNET_TL2_TILE_ROWS) {
        for (int64_t g0 = 0; g0 < G; g0 += BITNET_TL2_CHUNK_GROUPS) {
            int v[BITNET_TL2_CHUNK_GROUPS][BITNET_TL2_TILE_ROWS];  // each group value once, for indices and signs
            for (int g = 0; g < BITNET_TL2_CHUNK_GROUPS; ++g) {
                for (int r = 0; r < BITNET_TL2_TILE_ROWS; ++r) {
                    v[g][r] = group_value(t, K, M, r0 + r, g0 + g);
                }
            }
            for (int j = 0; j < BITNET_TL2_CHUNK_GROUPS / 2; ++j) {
                for (int r = 0; r < BITNET_TL2_TILE_ROWS; ++r) {
                    *p++ = (uint8_t) (abs(v[2 * j][r]) | (abs(v[2 * j + 1][r]) << 4));
                }
            }
            for (int g = 0; g < BITNET_TL2_CHUNK_GROUPS; ++g) {
                uint64_t bits = 0;
                for (int i = 0; i < 64; ++i) {
                    bits |= (uint64_t) (v[g][bitnet_tl2_sign_row(i)] < 0) << i;
                }
                for (int b = 0; b < 8; ++b) {  // little-endian on every host
                    *p++ = (uint8_t) (bits >> (8 * b));
                }
            }
        }
    }
    memset(p, 0, BITNET_TL2_TAIL_SIZE);
    memcpy(p, &scale, sizeof(scale));
}

size_t bitnet_tl2_quantize(const float * x, void * dst, int64_t K, int64_t M) {
    int8_t * t = (int8_t *) malloc((size_t) (K * M));
    if (t == NULL) {
        fprintf(stderr, "%s: out of memory for %lld x %lld\n", __func__, (long long) M, (long long) K);
        abort();
    }
    const float scale = bitnet_ternarize(x, K * M, t);
    bitnet_tl2_pack(t, K, M, scale, dst);
    free(t);
    return bitnet_tl2_nbytes(K, M);
}

int bitnet_tl2_weight(const uint8_t * w, int64_t K, int64_t r, int64_t k) {
    const uint8_t * tile = w + (size_t) (r / BITNET_TL2_TILE_ROWS) * bitnet_tl2_tile_bytes(K);
    int neg;
    const int mag = bitnet_tl2_field(tile, (int) (r % BITNET_TL2_TILE_ROWS), k / 3, &neg);
    return bitnet_tl2_digit(mag, neg, (int) (k % 3));
}

void bitnet_tl2_dequantize(const void * src, float * y, int64_t K, int64_t M) {
    const float s = bitnet_tl2_scale(src, K, M);
    for (int64_t r = 0; r < M; ++r) {
        for (int64_t k = 0; k < K; ++k) {
            y[r * K + k] = (float) bitnet_tl2_weight((const uint8_t *) src, K, r, k) * s;
        }
    }
}

bool bitnet_tl2_validate(const void * data, size_t nbytes) {
    if (nbytes < BITNET_TL2_TAIL_SIZE || (nbytes - BITNET_TL2_TAIL_SIZE) % BITNET_TL2_CHUNK_BYTES != 0) {
        fprintf(stderr, "%s: TL2 data of %zu bytes is not whole %d-byte chunks and a %d-byte tail\n", __func__,
                nbytes, BITNET_TL2_CHUNK_BYTES, BITNET_TL2_TAIL_SIZE);
        return false;
    }
    const uint8_t * p = (const uint8_t *) data;
    const size_t body = nbytes - BITNET_TL2_TAIL_SIZE;
    for (size_t c = 0; c < body; c += BITNET_TL2_CHUNK_BYTES) {
        for (size_t i = c; i < c + 256; ++i) {
            if ((p[i] & 15) > 13 || (p[i] >> 4) > 13) {
                fprintf(stderr, "%s: TL2 index byte %zu is 0x%02x, expected two indices of at most 13\n", __func__, i, p[i]);
                return false;
            }
        }
    }
    float s;
    memcpy(&s, p + body, sizeof(s));
    if (!isfinite(s) || s < 0.0f) {
        fprintf(stderr, "%s: TL2 scale is %g, expected a finite non-negative number\n", __func__, (double) s);
        return false;
    }
    return true;
}
