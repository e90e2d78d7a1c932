// Integer kernels for I2_S weights x int8 activations (FORMATS.md §3).
// Every implementation computes, exactly in int32,
//   out[c*ldo + (r - r0)] = sum_k t(r, k) * a[c*lda + k]      for r in [r0, r1), c in [0, ncols)
// where t(r, k) in {-1, 0, 1} is element r*K + k of the packed tensor w.
// a_sum[c] = sum_k a[c*lda + k] lets kernels use the unsigned codes (t + 1) directly.
#pragma once

#include <stdbool.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

typedef void (*bitnet_i2s_gemm_t)(int64_t K, const uint8_t * w, int64_t r0, int64_t r1,
                                  const int8_t * a, const int32_t * a_sum, int64_t lda, int64_t ncols,
                                  int32_t * out, int64_t ldo);

// portable reference: any K (rows may start inside a packed block)
void bitnet_i2s_gemm_generic(int64_t K, const uint8_t * w, int64_t r0, int64_t r1,
                             const int8_t * a, const int32_t * a_sum, int64_t lda, int64_t ncols,
                             int32_t * out, int64_t ldo);

// Optional packed form, for kernels that reuse one weight decode across many columns: the activations
// of a mat-mul are first repacked, once, into groups of pack_cols columns in the kernel's own layout
// (K * pack_cols bytes per group, groups back to back, the buffer 64-byte aligned).
//   pack:        columns [0, ncols) of a (ncols <= pack_cols; absent columns read as 0) -> one group at dst
//   gemm_packed: the gemm contract above for ncols columns held in ceil(ncols / pack_cols) groups
typedef void (*bitnet_i2s_pack_t)(int64_t K, const int8_t * a, int64_t lda, int64_t ncols, void * dst);
typedef void (*bitnet_i2s_gemm_packed_t)(int64_t K, const uint8_t * w, int64_t r0, int64_t r1,
                                         const void * packed, const int32_t * a_sum, int64_t ncols,
                                         int32_t * out, int64_t ldo);

// Every kernel compiled into this build, fastest first; the generic one is always last.
// BITNET_I2S_KERNEL=<name> makes the selection prefer that kernel when it handles K.
struct bitnet_i2s_kernel {
    const char *             name;
    bitnet_i2s_gemm_t        gemm;
    int64_t                  k_align;      // the kernel handles K when K % k_align == 0
    int64_t                  pack_cols;    // 0: no packed form
    bitnet_i2s_pack_t        pack;
    bitnet_i2s_gemm_packed_t gemm_packed;
};
const struct bitnet_i2s_kernel * bitnet_i2s_gemm_kernels(int * n);

// the fastest kernel this build has for a K (falls back to the generic one)
const struct bitnet_i2s_kernel * bitnet_i2s_kernel_select(int64_t K);

// name of the selected implementation, for logs and tests
const char * bitnet_i2s_gemm_name(int64_t K);

// Per-token activation quantization (FORMATS.md §3): s = 127 / max(max|x|, 1e-5),
// q = round-half-even(x * s) clamped to [-128, 127], sum = sum of q. The SIMD versions are
// bit-identical to the generic one for finite inputs; bitnet_i2s_quantize_activations is the
// fastest this build has.
void bitnet_i2s_quantize_activations(const float * x, int8_t * q, int64_t K, float * scale, int32_t * sum);
void bitnet_i2s_quantize_activations_generic(const float * x, int8_t * q, int64_t K, float * scale, int32_t * sum);

#ifdef __cplusplus
}
#endif
