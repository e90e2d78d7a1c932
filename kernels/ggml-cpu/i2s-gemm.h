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

// the fastest kernel this build has for a K (falls back to the generic one)
bitnet_i2s_gemm_t bitnet_i2s_gemm_select(int64_t K);

// name of the selected implementation, for logs and tests
const char * bitnet_i2s_gemm_name(int64_t K);

// Every kernel compiled into this build, fastest first; the generic one is always last.
// BITNET_I2S_KERNEL=<name> makes bitnet_i2s_gemm_select prefer that kernel when it handles K.
struct bitnet_i2s_kernel {
    const char *      name;
    bitnet_i2s_gemm_t gemm;
    int64_t           k_align;  // the kernel handles K when K % k_align == 0
};
const struct bitnet_i2s_kernel * bitnet_i2s_gemm_kernels(int * n);

#ifdef __cplusplus
}
#endif
