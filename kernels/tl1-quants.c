// Reference (de)quantization of whole TL1 tensors; compiled into ggml-base.
#include "tl1-quants.h"
#include "i2s-quants.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

float bitnet_tl1_scale(const void * data, int64_t K, int64_t M) {
    float s;
    memcpy(&s, (const uint8_t *) data + bitnet_tl1_nbytes(K, M) - BITNET_TL1_TAIL_SIZE, sizeof(s));
    return s;
}

// index of row r, pair p; rows past M and the column past an odd K are zero weights
static int pair_index(const int8_t * t, int64_t K, int64_t M, int64_t r, int64_t p) {
    if (r >= M) {
        return 4;
    }
    const int w0 = t[r * K + 2 * p];
    const int w1 = 2 * p + 1 < K ? t[r * K + 2 * p + 1] : 0;
    return 3 * w0 + w1 + 4;
}

void bitnet_tl1_pack(const int8_t * t, int64_t K, int64_t M, float scale, void * dst) {
    const int64_t P = bitnet_tl1_pairs(K);
    uint8_t * o = (uint8_t *) dst;
    for (int64_t r0 = 0; r0 < bitnet_tl1_tiles(M) * BITNET_TL1_TILE_ROWS; r0 += BITNET_TL1_TILE_ROWS) {
        for (int64_t p = 0; p < P; ++p) {
            for (int i = 0; i < 16; ++i) {
                const int lo = pair_index(t, K, M, r0 + i, p);
                const int hi = pair_index(t, K, M, r0 + 16 + i, p);
                *o++ = (uint8_t) (lo | (hi << 4));
            }
        }
    }
    memset(o, 0, BITNET_TL1_TAIL_SIZE);
    memcpy(o, &scale, sizeof(scale));
}

size_t bitnet_tl1_quantize(const float * x, void * dst, int64_t K, int64_t M) {
    int8_t * t = (int8_t *) malloc((size_t) (K * M));
    if (t == NULL) {
        fprintf(stderr, "%s: out of memory for %lld x %lld\n", __func__, (long long) M, (long long) K);
        abort();
    }
    const float scale = bitnet_ternarize(x, K * M, t);
    bitnet_tl1_pack(t, K, M, scale, dst);
    free(t);
    return bitnet_tl1_nbytes(K, M);
}

int bitnet_tl1_weight(const uint8_t * w, int64_t K, int64_t r, int64_t k) {
    const uint8_t * tile = w + (size_t) (r / BITNET_TL1_TILE_ROWS) * bitnet_tl1_tile_bytes(K);
    const int idx = bitnet_tl1_index(tile, (int) (r % BITNET_TL1_TILE_ROWS), k / 2);
    return bitnet_tl1_digit(idx, (int) (k % 2));
}

void bitnet_tl1_dequantize(const void * src, float * y, int64_t K, int64_t M) {
    const float s = bitnet_tl1_scale(src, K, M);
    for (int64_t r = 0; r < M; ++r) {
        for (int64_t k = 0; k < K; ++k) {
            y[r * K + k] = (float) bitnet_tl1_weight((const uint8_t *) src, K, r, k) * s;
        }
    }
}

bool bitnet_tl1_validate(const void * data, size_t nbytes) {
    if (nbytes < BITNET_TL1_TAIL_SIZE || (nbytes - BITNET_TL1_TAIL_SIZE) % BITNET_TL1_PAIR_BYTES != 0) {
        fprintf(stderr, "%s: TL1 data of %zu bytes is not whole %d-byte groups and a %d-byte tail\n", __func__,
                nbytes, BITNET_TL1_PAIR_BYTES, BITNET_TL1_TAIL_SIZE);
        return false;
    }
    const uint8_t * p = (const uint8_t *) data;
    const size_t body = nbytes - BITNET_TL1_TAIL_SIZE;
    for (size_t i = 0; i < body; ++i) {
        if ((p[i] & 15) > BITNET_TL1_MAX_INDEX || (p[i] >> 4) > BITNET_TL1_MAX_INDEX) {
            fprintf(stderr, "%s: TL1 index byte %zu is 0x%02x, expected two indices of at most %d\n", __func__, i, p[i],
                    BITNET_TL1_MAX_INDEX);
            return false;
        }
    }
    float s;
    memcpy(&s, p + body, sizeof(s));
    if (!isfinite(s) || s < 0.0f) {
        fprintf(stderr, "%s: TL1 scale is %g, expected a finite non-negative number\n", __func__, (double) s);
        return false;
    }
    return true;
}
