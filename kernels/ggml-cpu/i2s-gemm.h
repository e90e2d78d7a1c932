// Integer kernels for I2_S weights x int8 activations (docs/formats.md §3).
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

// Alignment: the SIMD entries (k_align > 1) read the activations with aligned vector loads (32 bytes for AVX2,
// 64 for AVX-512), so a must be BITNET_I2S_ACT_ALIGN-aligned and lda a multiple of it; the packed buffer of
// gemm_packed is 64-byte aligned too. w, a_sum and out need no alignment (unaligned loads), nor does NEON.
#define BITNET_I2S_ACT_ALIGN 64
static inline bool bitnet_i2s_act_aligned(const void * a, int64_t lda) {
    return (uintptr_t) a % BITNET_I2S_ACT_ALIGN == 0 && lda % BITNET_I2S_ACT_ALIGN == 0;
}

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

// Per-token activation quantization (docs/formats.md §3): s = 127 / max(max|x|, 1e-5),
// q = round-half-even(x * s) clamped to [-128, 127], sum = sum of q. Every version is bit-identical
// to the generic one for finite inputs.
typedef void (*bitnet_i2s_quantize_activations_t)(const float * x, int8_t * q, int64_t K, float * scale, int32_t * sum);
void bitnet_i2s_quantize_activations_generic(const float * x, int8_t * q, int64_t K, float * scale, int32_t * sum);

// One kernel variant and everything it provides. The mat-mul takes the activation quantization and
// the gemm from the same entry; a variant without its own quantizer carries the best one its ISA has.
struct bitnet_i2s_kernel {
    const char *                      name;          // what BITNET_I2S_KERNEL=<name> selects
    int64_t                           k_align;       // the kernel handles K when K % k_align == 0
    bitnet_i2s_quantize_activations_t quantize_activations;
    bitnet_i2s_gemm_t                 gemm;
    int64_t                           pack_cols;     // 0: no packed form
    bitnet_i2s_pack_t                 pack;
    bitnet_i2s_gemm_packed_t          gemm_packed;
};

// Every kernel compiled into this build, fastest first; the generic one (the reference) is always last.
extern const struct bitnet_i2s_kernel bitnet_i2s_kernels[];
extern const int                      bitnet_i2s_n_kernels;

// the entry called name, or NULL when this build does not have it
const struct bitnet_i2s_kernel * bitnet_i2s_kernel_find(const char * name);

// The kernel for a mat-mul with rows of K elements: the preferred kernel when it handles K, else the
// fastest that does (the generic one handles every K). The preference is the fastest kernel, or the one
// named by BITNET_I2S_KERNEL (read once per process, on the first call; a name this build does not have
// prints one line on stderr and keeps the fastest). Thread-safe; no getenv after the first call.
const struct bitnet_i2s_kernel * bitnet_i2s_kernel_get(int64_t K);

// the preference itself, whatever K (the TL2 kernels follow it: tl2-gemm.h)
const struct bitnet_i2s_kernel * bitnet_i2s_kernel_preferred(void);

// Re-reads BITNET_I2S_KERNEL, for tests that switch kernels inside one process; returns the new
// preference. Not to be called while another thread runs setenv.
const struct bitnet_i2s_kernel * bitnet_i2s_kernel_reload(void);

#ifdef __cplusplus
}
#endif
