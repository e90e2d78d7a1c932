// NEON activation quantization (contract: bitnet_i2s_quantize_activations_generic), bit-exact with it:
// vmaxnm ignores a NaN like the scalar max, vcvtn rounds half to even like nearbyintf, and the
// saturating narrows equal the clamp (|x * s| <= 127 * (1 + 2^-23) for finite x).
#include "i2s-kernels.h"

#ifdef BITNET_I2S_HAVE_NEON
#include <arm_neon.h>

void bitnet_i2s_quantize_activations_neon(const float * x, int8_t * q, int64_t K, float * scale, int32_t * sum) {
    float32x4_t vmax = vdupq_n_f32(0.0f);
    int64_t i = 0;
    for (; i + 4 <= K; i += 4) {
        vmax = vmaxnmq_f32(vmax, vabsq_f32(vld1q_f32(x + i)));
    }
    const float s = bitnet_i2s_act_scale(bitnet_i2s_act_amax(x + i, K - i, vmaxnmvq_f32(vmax)));

    int32x4_t acc = vdupq_n_s32(0);
    for (i = 0; i + 16 <= K; i += 16) {
        int32x4_t v[4];
        for (int j = 0; j < 4; ++j) {
            v[j] = vcvtnq_s32_f32(vmulq_n_f32(vld1q_f32(x + i + 4 * j), s));
            acc = vaddq_s32(acc, v[j]);
        }
        const int16x8_t lo = vcombine_s16(vqmovn_s32(v[0]), vqmovn_s32(v[1]));
        const int16x8_t hi = vcombine_s16(vqmovn_s32(v[2]), vqmovn_s32(v[3]));
        vst1q_s8(q + i, vcombine_s8(vqmovn_s16(lo), vqmovn_s16(hi)));
    }
    *scale = s;
    *sum = vaddvq_s32(acc) + bitnet_i2s_act_round(x + i, q + i, K - i, s);
}
#endif
