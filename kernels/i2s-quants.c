// Reference (de)quantization of whole I2_S tensors; compiled into ggml-base.
#include "i2s-quants.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

float bitnet_i2s_scale(const void * data, int64_t n) {
    float s;
    memcpy(&s, (const uint8_t *) data + n / 4, sizeof(s));
    return s;
}

static int ternary_of(float x, float inv_scale, bool exact_ternary) {
    if (exact_ternary) {
        return x > 0.0f ? 1 : (x < 0.0f ? -1 : 0);
    }
    float t = nearbyintf(x * inv_scale);
    t = t > 1.0f ? 1.0f : (t < -1.0f ? -1.0f : t);
    return (int) t;
}

float bitnet_ternarize(const float * x, int64_t n, int8_t * t) {
    float amax = 0.0f;
    double asum = 0.0;
    for (int64_t i = 0; i < n; ++i) {
        const float a = fabsf(x[i]);
        amax = a > amax ? a : amax;
        asum += (double) a;
    }

    // a tensor that is already s*{-1,0,1} (e.g. an f32 GGUF of a ternarized model) keeps s;
    // rounding it again with absmean would shrink the scale by the fraction of zeros
    bool exact_ternary = true;
    const float lo = amax * (1.0f - 1e-5f);
    for (int64_t i = 0; i < n && exact_ternary; ++i) {
        const float a = fabsf(x[i]);
        exact_ternary = a == 0.0f || a >= lo;
    }

    float scale;
    float inv_scale;
    if (exact_ternary) {
        scale = amax;
        inv_scale = 0.0f;
    } else {
        const float mean = (float) (asum / (double) n);
        scale = mean > 1e-5f ? mean : 1e-5f;
        inv_scale = 1.0f / scale;
    }
    for (int64_t i = 0; i < n; ++i) {
        t[i] = (int8_t) ternary_of(x[i], inv_scale, exact_ternary);
    }
    return scale;
}

size_t bitnet_i2s_quantize(const float * x, void * dst, int64_t n) {
    if (n % BITNET_I2S_QK != 0) {
        fprintf(stderr, "%s: I2_S needs a multiple of %d elements, got %lld\n",
                __func__, BITNET_I2S_QK, (long long) n);
        abort();
    }
    int8_t * t = (int8_t *) malloc((size_t) n);
    if (t == NULL) {
        fprintf(stderr, "%s: out of memory for %lld elements\n", __func__, (long long) n);
        abort();
    }
    const float scale = bitnet_ternarize(x, n, t);

    uint8_t * q = (uint8_t *) dst;
    memset(q, 0, (size_t) (n / 4) + BITNET_I2S_TAIL_SIZE);
    for (int64_t g = 0; g < n; ++g) {
        const int64_t e = g % BITNET_I2S_QK;
        q[(g / BITNET_I2S_QK) * BITNET_I2S_BLOCK_SIZE + (e % 32)] |= (uint8_t) ((t[g] + 1) << (6 - 2 * (e / 32)));
    }
    free(t);
    memcpy(q + n / 4, &scale, sizeof(scale));
    return (size_t) (n / 4) + BITNET_I2S_TAIL_SIZE;
}

void bitnet_i2s_quantize_ref(const float * x, void * dst, int64_t n) {
    bitnet_i2s_quantize(x, dst, n);
}

void bitnet_i2s_dequantize(const void * src, float * y, int64_t n) {
    const uint8_t * q = (const uint8_t *) src;
    const float s = bitnet_i2s_scale(src, n);
    for (int64_t g = 0; g < n; ++g) {
        y[g] = (float) bitnet_i2s_ternary(bitnet_i2s_code(q, g)) * s;
    }
}

bool bitnet_i2s_validate(const void * data, size_t nbytes) {
    if (nbytes < BITNET_I2S_TAIL_SIZE) {
        fprintf(stderr, "%s: I2_S data of %zu bytes has no room for its scale\n", __func__, nbytes);
        return false;
    }
    float s;
    memcpy(&s, (const uint8_t *) data + nbytes - BITNET_I2S_TAIL_SIZE, sizeof(s));
    if (!isfinite(s) || s < 0.0f) {
        fprintf(stderr, "%s: I2_S scale is %g, expected a finite non-negative number\n", __func__, (double) s);
        return false;
    }
    return true;
}
