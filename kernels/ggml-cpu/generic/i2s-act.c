// Portable reference of the per-token activation quantization; the SIMD versions must match it bit for bit
// and use the two steps below for their tails.
#include "i2s-kernels.h"

#include <math.h>

float bitnet_i2s_act_amax(const float * x, int64_t n, float amax) {
    for (int64_t i = 0; i < n; ++i) {
        const float a = fabsf(x[i]);
        amax = a > amax ? a : amax;  // a NaN never wins
    }
    return amax;
}

float bitnet_i2s_act_scale(float amax) {
    return 127.0f / (amax > 1e-5f ? amax : 1e-5f);
}

int32_t bitnet_i2s_act_round(const float * x, int8_t * q, int64_t n, float s) {
    int32_t acc = 0;
    for (int64_t i = 0; i < n; ++i) {
        float v = nearbyintf(x[i] * s);
        v = v > 127.0f ? 127.0f : (v < -128.0f ? -128.0f : v);
        q[i] = (int8_t) v;
        acc += q[i];
    }
    return acc;
}

void bitnet_i2s_quantize_activations_generic(const float * x, int8_t * q, int64_t K, float * scale, int32_t * sum) {
    *scale = bitnet_i2s_act_scale(bitnet_i2s_act_amax(x, K, 0.0f));
    *sum = bitnet_i2s_act_round(x, q, K, *scale);
}
