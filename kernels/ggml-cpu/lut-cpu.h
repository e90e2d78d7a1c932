// Hooks that the patched ggml-cpu calls for GGML_TYPE_TL1 and GGML_TYPE_TL2 tensors.
#pragma once

#include <stddef.h>

#ifdef __cplusplus
extern "C" {
#endif

struct ggml_compute_params;
struct ggml_tensor;

// GGML_OP_MUL_MAT with a TL1 or TL2 src0 (a 2-D weight) and an F32 src1
void   ggml_bitnet_lut_mul_mat(const struct ggml_compute_params * params, struct ggml_tensor * dst);
size_t ggml_bitnet_lut_mul_mat_work_size(const struct ggml_tensor * dst, int n_threads);

#ifdef __cplusplus
}
#endif
