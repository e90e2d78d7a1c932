// Which arch-specific I2_S kernels this translation unit's ISA flags allow. The arch files and the
// dispatcher's table (i2s-dispatch.c) test the same macros, so a kernel is referenced exactly when it
// is compiled.
// No runtime CPU detection is needed: ggml-cpu variants are built per ISA level and only loaded
// on CPUs that have it.
#pragma once

#include "i2s-gemm.h"

#ifdef __cplusplus
extern "C" {
#endif

#if defined(__x86_64__) || defined(_M_X64)
#  if defined(__AVX2__)
#    define BITNET_I2S_HAVE_AVX2 1
void bitnet_i2s_gemm_avx2(int64_t K, const uint8_t * w, int64_t r0, int64_t r1,
                          const int8_t * a, const int32_t * a_sum, int64_t lda, int64_t ncols,
                          int32_t * out, int64_t ldo);
void bitnet_i2s_quantize_activations_avx2(const float * x, int8_t * q, int64_t K, float * scale, int32_t * sum);
#  endif
// 256-bit vpdpbusd: VEX AVX-VNNI (Alder Lake and later client CPUs, no AVX-512) or EVEX AVX512-VNNI + VL
#  if defined(__AVX2__) && (defined(__AVXVNNI__) || (defined(__AVX512VNNI__) && defined(__AVX512VL__)))
#    define BITNET_I2S_HAVE_AVXVNNI 1
void bitnet_i2s_gemm_avxvnni(int64_t K, const uint8_t * w, int64_t r0, int64_t r1,
                             const int8_t * a, const int32_t * a_sum, int64_t lda, int64_t ncols,
                             int32_t * out, int64_t ldo);
#  endif
#  if defined(__AVX512F__) && defined(__AVX512BW__) && defined(__AVX512VNNI__)
#    define BITNET_I2S_HAVE_AVX512VNNI 1
void bitnet_i2s_gemm_avx512vnni(int64_t K, const uint8_t * w, int64_t r0, int64_t r1,
                                const int8_t * a, const int32_t * a_sum, int64_t lda, int64_t ncols,
                                int32_t * out, int64_t ldo);
#    define BITNET_I2S_AVX512_PACK_COLS 16
void bitnet_i2s_pack_avx512vnni(int64_t K, const int8_t * a, int64_t lda, int64_t ncols, void * dst);
void bitnet_i2s_gemm_packed_avx512vnni(int64_t K, const uint8_t * w, int64_t r0, int64_t r1,
                                       const void * packed, const int32_t * a_sum, int64_t ncols,
                                       int32_t * out, int64_t ldo);
void bitnet_i2s_quantize_activations_avx512(const float * x, int8_t * q, int64_t K, float * scale, int32_t * sum);
#  endif
#endif

#if defined(__aarch64__) && defined(__ARM_NEON)
#  define BITNET_I2S_HAVE_NEON 1
void bitnet_i2s_gemm_neon(int64_t K, const uint8_t * w, int64_t r0, int64_t r1,
                          const int8_t * a, const int32_t * a_sum, int64_t lda, int64_t ncols,
                          int32_t * out, int64_t ldo);
void bitnet_i2s_quantize_activations_neon(const float * x, int8_t * q, int64_t K, float * scale, int32_t * sum);
#  if defined(__ARM_FEATURE_DOTPROD)
#    define BITNET_I2S_HAVE_DOTPROD 1
void bitnet_i2s_gemm_dotprod(int64_t K, const uint8_t * w, int64_t r0, int64_t r1,
                             const int8_t * a, const int32_t * a_sum, int64_t lda, int64_t ncols,
                             int32_t * out, int64_t ldo);
#  endif
#endif

// the steps of bitnet_i2s_quantize_activations_generic, for the tails of the SIMD versions: the running
// max of |x| (NaN ignored), the scale of a max, and the rounding of n values (returns their sum)
float   bitnet_i2s_act_amax(const float * x, int64_t n, float amax);
float   bitnet_i2s_act_scale(float amax);
int32_t bitnet_i2s_act_round(const float * x, int8_t * q, int64_t n, float s);

#ifdef __cplusplus
}
#endif
