// The hook that keeps ggml-cpu's generic op code away from I2_S/TL1/TL2 tensors. Their bytes are not rows of
// blocks (one scale per tensor after the codes, or tiles of rows), so an op that reads them through the type's
// per-row conversion would compute garbage. Every op is checked here first: the ones with bitnet code run, the
// copies to F32 dequantize the whole tensor, the shape-only ops pass, and anything else aborts with its name.
#pragma once

#include <stdbool.h>

#ifdef __cplusplus
extern "C" {
#endif

struct ggml_compute_params;
struct ggml_tensor;

// true: the op was computed here (the caller returns); false: ggml computes it (no bitnet tensor is involved, or
// ggml's code for it is ours: MUL_MAT, GET_ROWS of I2_S, views). Aborts on an op these types cannot take.
bool ggml_bitnet_compute_forward(const struct ggml_compute_params * params, struct ggml_tensor * tensor);

#ifdef __cplusplus
}
#endif
