// Hooks that the patched ggml-cpu calls for GGML_TYPE_I2_S tensors.
#pragma once

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

struct ggml_compute_params;
struct ggml_tensor;

// GGML_OP_MUL_MAT with an I2_S src0 (a 2-D weight) and an F32 src1
void   ggml_bitnet_i2s_mul_mat(const struct ggml_compute_params * params, struct ggml_tensor * dst);
// n_threads: the threads that run the op (ggml_graph_plan's n_tasks)
size_t ggml_bitnet_i2s_mul_mat_work_size(const struct ggml_tensor * dst, int n_threads);

// GGML_OP_GET_ROWS with an I2_S src0
void ggml_bitnet_i2s_get_rows(const struct ggml_compute_params * params, struct ggml_tensor * dst);

// vec_dot trait: one I2_S buffer of n elements (codes + tail) against n floats, quantized per §3
void ggml_bitnet_i2s_vec_dot_f32(int n, float * s, size_t bs, const void * vx, size_t bx,
                                 const void * vy, size_t by, int nrc);

#ifdef __cplusplus
}
#endif
