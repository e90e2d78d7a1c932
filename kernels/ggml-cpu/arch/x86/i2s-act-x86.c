// x86 activation quantization (contract: bitnet_i2s_quantize_activations_generic). Bit-exact with it:
// the max ignores NaN the same way (max_ps returns its second operand, the running max, on NaN),
// the scale is computed in scalar code, and cvtps rounds half to even like nearbyintf in the default
// rounding mode. |x * s| <= 127 * (1 + 2^-23) for finite x, so no value needs the float clamp.
#include "i2s-kernels.h"

#if defined(BITNET_I2S_HAVE_AVX2) || defined(BITNET_I2S_HAVE_AVX512VNNI)
#include <immintrin.h>
#endif

#ifdef BITNET_I2S_HAVE_AVX2
void bitnet_i2s_quantize_activations_avx2(const float * x, int8_t * q, int64_t K, float * scale, int32_t * sum) {
    const __m256 sign = _mm256_set1_ps(-0.0f);
    __m256 vmax = _mm256_setzero_ps();
    int64_t i = 0;
    for (; i + 8 <= K; i += 8) {
        vmax = _mm256_max_ps(_mm256_andnot_ps(sign, _mm256_loadu_ps(x + i)), vmax);
    }
    __m128 m = _mm_max_ps(_mm256_castps256_ps128(vmax), _mm256_extractf128_ps(vmax, 1));
    m = _mm_max_ps(m, _mm_movehl_ps(m, m));
    m = _mm_max_ss(m, _mm_movehdup_ps(m));
    const float s = bitnet_i2s_act_scale(bitnet_i2s_act_amax(x + i, K - i, _mm_cvtss_f32(m)));

    const __m256 vs = _mm256_set1_ps(s);
    // packs interleaves 128-bit lanes: this permutation puts the 8 dwords of 32 bytes back in order
    const __m256i order = _mm256_setr_epi32(0, 4, 1, 5, 2, 6, 3, 7);
    __m256i acc = _mm256_setzero_si256();
    for (i = 0; i + 32 <= K; i += 32) {
        __m256i v[4];
        for (int j = 0; j < 4; ++j) {
            v[j] = _mm256_cvtps_epi32(_mm256_mul_ps(_mm256_loadu_ps(x + i + 8 * j), vs));
            acc = _mm256_add_epi32(acc, v[j]);
        }
        const __m256i p = _mm256_packs_epi16(_mm256_packs_epi32(v[0], v[1]), _mm256_packs_epi32(v[2], v[3]));
        _mm256_storeu_si256((__m256i *) (q + i), _mm256_permutevar8x32_epi32(p, order));
    }
    __m128i s4 = _mm_add_epi32(_mm256_castsi256_si128(acc), _mm256_extracti128_si256(acc, 1));
    s4 = _mm_add_epi32(s4, _mm_shuffle_epi32(s4, 0x4E));
    s4 = _mm_add_epi32(s4, _mm_shuffle_epi32(s4, 0xB1));
    *scale = s;
    *sum = _mm_cvtsi128_si32(s4) + bitnet_i2s_act_round(x + i, q + i, K - i, s);
}
#endif

#ifdef BITNET_I2S_HAVE_AVX512VNNI
void bitnet_i2s_quantize_activations_avx512(const float * x, int8_t * q, int64_t K, float * scale, int32_t * sum) {
    __m512 vmax = _mm512_setzero_ps();
    int64_t i = 0;
    for (; i + 16 <= K; i += 16) {
        vmax = _mm512_max_ps(_mm512_abs_ps(_mm512_loadu_ps(x + i)), vmax);
    }
    const float s = bitnet_i2s_act_scale(bitnet_i2s_act_amax(x + i, K - i, _mm512_reduce_max_ps(vmax)));

    const __m512 vs = _mm512_set1_ps(s);
    __m512i acc = _mm512_setzero_si512();
    for (i = 0; i + 16 <= K; i += 16) {
        const __m512i v = _mm512_cvtps_epi32(_mm512_mul_ps(_mm512_loadu_ps(x + i), vs));
        acc = _mm512_add_epi32(acc, v);
        _mm_storeu_si128((__m128i *) (q + i), _mm512_cvtsepi32_epi8(v));
    }
    *scale = s;
    *sum = _mm512_reduce_add_epi32(acc) + bitnet_i2s_act_round(x + i, q + i, K - i, s);
}
#endif
