// ggml-cpu glue for I2_S: per-token activation quantization, threading and output scaling
// around the integer kernels of i2s-gemm.h.
#include "i2s-cpu.h"
#include "i2s-gemm.h"
#include "i2s-quants.h"

#include "ggml-cpu-impl.h"

#include <math.h>
#include <stdlib.h>

// int8 activation rows are padded so that every row starts on a cache line
#define ACT_ALIGN 64
// output tile handled per kernel call (bounds the int32 scratch on the stack: 8 KiB). 128 rows:
// the AVX-512 kernel transposes the 16 activation columns once per call, so taller tiles amortize
// it (64 -> 128 rows: +6% GOPS at 16 columns); 128 rows x K/4 bytes of weights still sit in L2 while
// the call is repeated for every group of 16 columns.
#define TILE_ROWS 128
#define TILE_COLS 16

static int64_t act_stride(int64_t K) {
    return GGML_PAD(K, ACT_ALIGN);
}

void bitnet_i2s_quantize_activations(const float * x, int8_t * q, int64_t K, float * scale, int32_t * sum) {
    float amax = 0.0f;
    for (int64_t i = 0; i < K; ++i) {
        const float a = fabsf(x[i]);
        amax = a > amax ? a : amax;
    }
    const float s = 127.0f / (amax > 1e-5f ? amax : 1e-5f);
    int32_t acc = 0;
    for (int64_t i = 0; i < K; ++i) {
        float v = nearbyintf(x[i] * s);
        v = v > 127.0f ? 127.0f : (v < -128.0f ? -128.0f : v);
        q[i] = (int8_t) v;
        acc += q[i];
    }
    *scale = s;
    *sum = acc;
}

size_t ggml_bitnet_i2s_mul_mat_work_size(const struct ggml_tensor * dst) {
    const struct ggml_tensor * src1 = dst->src[1];
    const int64_t ncols = ggml_nrows(src1);
    return (size_t) (ncols * act_stride(src1->ne[0]) + ncols * (int64_t) (sizeof(float) + sizeof(int32_t)) + ACT_ALIGN);
}

void ggml_bitnet_i2s_mul_mat(const struct ggml_compute_params * params, struct ggml_tensor * dst) {
    const struct ggml_tensor * src0 = dst->src[0];
    const struct ggml_tensor * src1 = dst->src[1];

    GGML_TENSOR_BINARY_OP_LOCALS

    GGML_ASSERT(src0->type == GGML_TYPE_I2_S);
    GGML_ASSERT(src1->type == GGML_TYPE_F32 && "I2_S mul_mat needs F32 activations");
    GGML_ASSERT(ne02 == 1 && ne03 == 1 && "I2_S weights must be 2-D");
    GGML_ASSERT(ggml_is_contiguous(src0) && src0->view_src == NULL && "I2_S weights cannot be views");
    GGML_ASSERT(nb10 == sizeof(float));
    GGML_ASSERT(nb0 == sizeof(float));
    GGML_ASSERT(ne0 == ne01 && ne1 == ne11 && ne2 == ne12 && ne3 == ne13);

    const int ith = params->ith;
    const int nth = params->nth;

    const int64_t K = ne00;
    const int64_t M = ne01;
    const int64_t N = ne11 * ne12 * ne13;
    const int64_t lda = act_stride(K);

    int8_t  * qa = (int8_t *) GGML_PAD((uintptr_t) params->wdata, ACT_ALIGN);
    float   * sa = (float *) (qa + N * lda);
    int32_t * ma = (int32_t *) (sa + N);

    // 1. every thread quantizes whole activation rows (the scale spans the row)
    for (int64_t j = ith; j < N; j += nth) {
        const int64_t i11 = j % ne11;
        const int64_t i12 = (j / ne11) % ne12;
        const int64_t i13 = j / (ne11 * ne12);
        const float * x = (const float *) ((const char *) src1->data + i11 * nb11 + i12 * nb12 + i13 * nb13);
        bitnet_i2s_quantize_activations(x, qa + j * lda, K, &sa[j], &ma[j]);
    }
    ggml_barrier(params->threadpool);

    // 2. weight rows split across threads; every thread sees all activation columns
    const bitnet_i2s_gemm_t gemm = params->use_ref ? bitnet_i2s_gemm_generic : bitnet_i2s_gemm_select(K);
    const float sw = bitnet_i2s_scale(src0->data, K * M);
    const int64_t rows_per_thread = GGML_PAD((M + nth - 1) / nth, 16);
    const int64_t r_begin = MIN(M, ith * rows_per_thread);
    const int64_t r_end = MIN(M, r_begin + rows_per_thread);

    int32_t tile[TILE_ROWS * TILE_COLS];
    for (int64_t r0 = r_begin; r0 < r_end; r0 += TILE_ROWS) {
        const int64_t r1 = MIN(r_end, r0 + TILE_ROWS);
        for (int64_t c0 = 0; c0 < N; c0 += TILE_COLS) {
            const int64_t nc = MIN(N - c0, TILE_COLS);
            gemm(K, (const uint8_t *) src0->data, r0, r1, qa + c0 * lda, ma + c0, lda, nc, tile, TILE_ROWS);
            for (int64_t c = 0; c < nc; ++c) {
                const int64_t j = c0 + c;
                const int64_t i1 = j % ne11;
                const int64_t i2 = (j / ne11) % ne12;
                const int64_t i3 = j / (ne11 * ne12);
                float * y = (float *) ((char *) dst->data + i1 * nb1 + i2 * nb2 + i3 * nb3);
                for (int64_t r = r0; r < r1; ++r) {
                    y[r] = (float) tile[c * TILE_ROWS + (r - r0)] / sa[j] * sw;
                }
            }
        }
    }
}

void ggml_bitnet_i2s_get_rows(const struct ggml_compute_params * params, struct ggml_tensor * dst) {
    const struct ggml_tensor * src0 = dst->src[0];
    const struct ggml_tensor * src1 = dst->src[1];

    GGML_TENSOR_BINARY_OP_LOCALS

    GGML_ASSERT(ne02 == 1 && ne03 == 1 && "I2_S tensors must be 2-D");
    GGML_ASSERT(dst->type == GGML_TYPE_F32);

    const int64_t K = ne00;
    const int64_t nr = ggml_nelements(src1);
    const float sw = bitnet_i2s_scale(src0->data, K * ne01);
    const uint8_t * w = (const uint8_t *) src0->data;

    const int64_t dr = (nr + params->nth - 1) / params->nth;
    const int64_t ir0 = dr * params->ith;
    const int64_t ir1 = MIN(ir0 + dr, nr);

    for (int64_t i = ir0; i < ir1; ++i) {
        const int64_t i12 = i / (ne11 * ne10);
        const int64_t i11 = (i - i12 * ne11 * ne10) / ne10;
        const int64_t i10 = i - i12 * ne11 * ne10 - i11 * ne10;
        const int64_t i01 = *(const int32_t *) ((const char *) src1->data + i10 * nb10 + i11 * nb11 + i12 * nb12);
        GGML_ASSERT(i01 >= 0 && i01 < ne01);
        float * y = (float *) ((char *) dst->data + i10 * nb1 + i11 * nb2 + i12 * nb3);
        for (int64_t k = 0; k < K; ++k) {
            y[k] = (float) bitnet_i2s_ternary(bitnet_i2s_code(w, i01 * K + k)) * sw;
        }
    }
}

void ggml_bitnet_i2s_vec_dot_f32(int n, float * s, size_t bs, const void * vx, size_t bx,
                                 const void * vy, size_t by, int nrc) {
    (void) bs; (void) bx; (void) by;
    GGML_ASSERT(nrc == 1);
    int8_t * q = (int8_t *) malloc((size_t) n);
    GGML_ASSERT(q != NULL);
    float sa;
    int32_t suma;
    bitnet_i2s_quantize_activations((const float *) vy, q, n, &sa, &suma);
    int32_t dot;
    bitnet_i2s_gemm_generic(n, (const uint8_t *) vx, 0, 1, q, &suma, n, 1, &dot, 1);
    *s = (float) dot / sa * bitnet_i2s_scale(vx, n);
    free(q);
}
