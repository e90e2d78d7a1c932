// What the I2_S and TL2 mat-mul glue share: how src1 columns and dst rows are addressed, and how an integer
// dot becomes an output (docs/formats.md §3).
#pragma once

#include "ggml.h"

#include <stdint.h>

// row j of a tensor seen as ne1*ne2*ne3 rows (src1's columns and dst's outputs share this numbering)
static inline float * bitnet_row_of(const struct ggml_tensor * t, int64_t j) {
    const int64_t i1 = j % t->ne[1];
    const int64_t i2 = (j / t->ne[1]) % t->ne[2];
    const int64_t i3 = j / (t->ne[1] * t->ne[2]);
    return (float *) ((char *) t->data + i1 * t->nb[1] + i2 * t->nb[2] + i3 * t->nb[3]);
}

// the mat-muls both glues take: a contiguous 2-D weight (never a view: its data is a whole tensor with the scale
// at the end) against F32 activations, into F32 outputs of the matching shape
static inline void bitnet_check_mul_mat(const struct ggml_tensor * dst) {
    const struct ggml_tensor * w = dst->src[0];
    const struct ggml_tensor * x = dst->src[1];
    GGML_ASSERT(x->type == GGML_TYPE_F32 && x->nb[0] == sizeof(float) && "bitnet mul_mat needs F32 activations");
    GGML_ASSERT(w->ne[2] == 1 && w->ne[3] == 1 && "bitnet weights must be 2-D");
    GGML_ASSERT(ggml_is_contiguous(w) && w->view_src == NULL && "bitnet weights cannot be views");
    GGML_ASSERT(dst->nb[0] == sizeof(float));
    GGML_ASSERT(dst->ne[0] == w->ne[1] && dst->ne[1] == x->ne[1] && dst->ne[2] == x->ne[2] && dst->ne[3] == x->ne[3]);
}

// y = dot / s_a * s_w in float, in this order
static inline void bitnet_scale_rows(const int32_t * restrict dot, int64_t n, float sa, float sw, float * restrict y) {
    for (int64_t i = 0; i < n; ++i) {
        y[i] = (float) dot[i] / sa * sw;
    }
}

// Work chunks of one op handed out without a barrier. The counter lives in the node's op_params (a MUL_MAT has
// none; ggml zeroes them when it makes the tensor). Every thread claims until it gets a number past the last
// chunk, so one op takes exactly nchunks + nth claims, and the thread that makes the last one puts the counter
// back to 0 for the next use of the node (a later token): that thread cannot have passed the barrier after the
// op, so nobody sees the counter before it is 0 again. Returns the chunk, or -1 when this thread is done.
#define BITNET_CHUNK_PARAM 0  // the op_params word that holds the counter
static inline int64_t bitnet_chunk_claim(struct ggml_tensor * dst, int64_t nchunks, int nth) {
    int32_t * counter = &dst->op_params[BITNET_CHUNK_PARAM];
#if defined(_MSC_VER) && !defined(__clang__)
    const int64_t c = _InterlockedExchangeAdd((volatile long *) counter, 1);
#else
    const int64_t c = __atomic_fetch_add(counter, 1, __ATOMIC_RELAXED);
#endif
    if (c < nchunks) {
        return c;
    }
    GGML_ASSERT(c < nchunks + nth && "bitnet chunk counter: a node's counter was not 0 when its op began");
    if (c == nchunks + nth - 1) {
#if defined(_MSC_VER) && !defined(__clang__)
        _InterlockedExchange((volatile long *) counter, 0);
#else
        __atomic_store_n(counter, 0, __ATOMIC_RELAXED);
#endif
    }
    return -1;
}
