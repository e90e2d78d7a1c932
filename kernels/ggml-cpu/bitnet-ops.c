// ggml_bitnet_compute_forward: which ops may touch I2_S/TL1/TL2 tensors (see bitnet-ops.h).
#include "bitnet-ops.h"
#include "i2s-quants.h"
#include "tl1-quants.h"
#include "tl2-quants.h"

#include "ggml-cpu-impl.h"

static bool is_bitnet(const struct ggml_tensor * t) {
    return t != NULL && (t->type == GGML_TYPE_I2_S || t->type == GGML_TYPE_TL1 || t->type == GGML_TYPE_TL2);
}

// ops that compute nothing: they only describe a tensor (the consumer checks what it is given)
static bool shape_only(enum ggml_op op) {
    return op == GGML_OP_NONE || op == GGML_OP_RESHAPE || op == GGML_OP_VIEW || op == GGML_OP_PERMUTE ||
           op == GGML_OP_TRANSPOSE;
}

// DUP/CPY/CONT of a whole bitnet tensor into a contiguous F32 tensor of the same shape: dequantize it all at
// once, since the scale (I2_S) or the tile (TL1/TL2) spans rows
static bool dequantize_copy(const struct ggml_compute_params * params, struct ggml_tensor * dst) {
    const struct ggml_tensor * src = dst->src[0];
    if (dst->type != GGML_TYPE_F32 || !ggml_is_contiguous(dst) || !ggml_are_same_shape(src, dst) ||
        !ggml_is_contiguous(src) || src->view_src != NULL) {
        return false;
    }
    if (params->ith != 0) {
        return true;  // one thread converts the whole tensor; the others have nothing to do
    }
    float * y = (float *) dst->data;
    switch (src->type) {
        case GGML_TYPE_I2_S: bitnet_i2s_dequantize(src->data, y, ggml_nelements(src)); break;
        case GGML_TYPE_TL1:  bitnet_tl1_dequantize(src->data, y, src->ne[0], src->ne[1]); break;
        case GGML_TYPE_TL2:  bitnet_tl2_dequantize(src->data, y, src->ne[0], src->ne[1]); break;
        default: return false;
    }
    return true;
}

bool ggml_bitnet_compute_forward(const struct ggml_compute_params * params, struct ggml_tensor * tensor) {
    const struct ggml_tensor * culprit = is_bitnet(tensor) ? tensor : NULL;
    for (int i = 0; i < GGML_MAX_SRC && culprit == NULL; ++i) {
        culprit = is_bitnet(tensor->src[i]) ? tensor->src[i] : NULL;
    }
    if (culprit == NULL || shape_only(tensor->op)) {
        return false;
    }
    const struct ggml_tensor * w = tensor->src[0];
    const bool only_src0 = culprit == w && !is_bitnet(tensor) && !is_bitnet(tensor->src[1]);
    switch (tensor->op) {
        case GGML_OP_MUL_MAT:
            if (only_src0) {
                return false;  // ggml_bitnet_i2s_mul_mat / ggml_bitnet_lut_mul_mat
            }
            break;
        case GGML_OP_GET_ROWS:
            if (only_src0 && w->type == GGML_TYPE_I2_S) {
                return false;  // ggml_bitnet_i2s_get_rows
            }
            break;
        case GGML_OP_DUP:
        case GGML_OP_CPY:
        case GGML_OP_CONT:
            if (only_src0 && dequantize_copy(params, tensor)) {
                return true;
            }
            break;
        default:
            break;
    }
    GGML_ABORT("op %s on %s tensor '%s' is not supported: bitnet-gguf computes MUL_MAT (and GET_ROWS for I2_S) "
               "with these types, and copies them whole to a contiguous F32 tensor of the same shape",
               ggml_op_name(tensor->op), ggml_type_name(culprit->type), culprit->name);
}
