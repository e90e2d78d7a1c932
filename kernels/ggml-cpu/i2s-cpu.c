// ggml-cpu glue for I2_S: per-token activation quantization, threading and output scaling
// around the integer kernels of i2s-gemm.h.
#include "i2s-cpu.h"
#include "bitnet-rows.h"
#include "i2s-gemm.h"
#include "i2s-quants.h"

#include "ggml-cpu-impl.h"

#include <stdlib.h>

// int8 activation rows are padded so that every row starts on a cache line (the kernels' aligned loads)
#define ACT_ALIGN BITNET_I2S_ACT_ALIGN
// output tile per kernel call, in int32 on the stack (32 KiB): 128 columns is what the packed AVX-512
// kernel serves with one decode of the weights (V512_GROUPS x 16); 64 rows x K/4 bytes of weights stay
// in L2 while the other kernels walk the columns a few at a time
#define TILE_ROWS 64
#define TILE_COLS 128

static int64_t act_stride(int64_t K) {
    return GGML_PAD(K, ACT_ALIGN);
}

// Up to this many columns (token generation, small batches) every thread quantizes all of them into a region
// of its own (microseconds) instead of sharing the work: the mat-mul then needs no barrier of its own, and no
// thread waits for another's columns.
#define PRIVATE_COLS 4
// rows per chunk handed out to the threads of a few-column mat-mul (40 KiB of weights at K = 2560)
#define CHUNK_ROWS 64

static size_t private_region(int64_t K, int64_t N) {
    return (size_t) (N * act_stride(K));
}

size_t ggml_bitnet_i2s_mul_mat_work_size(const struct ggml_tensor * dst, int n_threads) {
    const struct ggml_tensor * src1 = dst->src[1];
    const int64_t K = src1->ne[0];
    const int64_t ncols = ggml_nrows(src1);
    if (ncols <= PRIVATE_COLS) {
        return (size_t) n_threads * private_region(K, ncols) + ACT_ALIGN;
    }
    // int8 rows, their packed copy (at most all columns), scales and sums
    return (size_t) (ncols * act_stride(K) + GGML_PAD(ncols * K, ACT_ALIGN) + ncols * (int64_t) (sizeof(float) + sizeof(int32_t)) + ACT_ALIGN);
}

static void quantize_column(const struct bitnet_i2s_kernel * kern, const struct ggml_tensor * src1, int64_t j,
                            int8_t * q, float * scale, int32_t * sum) {
    kern->quantize_activations(bitnet_row_of(src1, j), q, src1->ne[0], scale, sum);
}

// what every thread needs to run its rows of one mat-mul
struct i2s_operands {
    const struct bitnet_i2s_kernel * kern;
    int64_t                          K;
    const uint8_t *                  w;
    float                            sw;        // the weight scale
    int64_t                          N, n_packed;
    const int8_t *                   qa;        // int8 columns, lda apart
    const int8_t *                   pa;        // packed groups of the first n_packed columns
    int64_t                          lda;
    const float *                    sa;        // activation scales
    const int32_t *                  ma;        // activation sums
    struct ggml_tensor *             dst;
};

// rows [r_begin, r_end) of dst, every column
static void gemm_rows(const struct i2s_operands * op, int64_t r_begin, int64_t r_end) {
    int32_t tile[TILE_ROWS * TILE_COLS];
    for (int64_t r0 = r_begin; r0 < r_end; r0 += TILE_ROWS) {
        const int64_t r1 = MIN(r_end, r0 + TILE_ROWS);
        for (int64_t c0 = 0; c0 < op->N; ) {
            // packed columns and the rest never share a call
            const int64_t nc = (c0 < op->n_packed ? MIN(op->n_packed, c0 + TILE_COLS) : MIN(op->N, c0 + TILE_COLS)) - c0;
            if (c0 < op->n_packed) {
                op->kern->gemm_packed(op->K, op->w, r0, r1, op->pa + c0 * op->K, op->ma + c0, nc, tile, TILE_ROWS);
            } else {
                op->kern->gemm(op->K, op->w, r0, r1, op->qa + c0 * op->lda, op->ma + c0, op->lda, nc, tile, TILE_ROWS);
            }
            for (int64_t c = 0; c < nc; ++c) {
                const int64_t j = c0 + c;
                bitnet_scale_rows(tile + c * TILE_ROWS, r1 - r0, op->sa[j], op->sw, bitnet_row_of(op->dst, j) + r0);
            }
            c0 += nc;
        }
    }
}

void ggml_bitnet_i2s_mul_mat(const struct ggml_compute_params * params, struct ggml_tensor * dst) {
    const struct ggml_tensor * src0 = dst->src[0];
    const struct ggml_tensor * src1 = dst->src[1];

    GGML_TENSOR_BINARY_OP_LOCALS

    GGML_ASSERT(src0->type == GGML_TYPE_I2_S);
    bitnet_check_mul_mat(dst);

    const int ith = params->ith;
    const int nth = params->nth;

    const int64_t K = ne00;
    const int64_t M = ne01;
    const int64_t N = ne11 * ne12 * ne13;
    const int64_t lda = act_stride(K);

    // activation quantization and gemm come from the same entry (use_ref: the generic one, always last)
    const struct bitnet_i2s_kernel * kern =
        params->use_ref ? &bitnet_i2s_kernels[bitnet_i2s_n_kernels - 1] : bitnet_i2s_kernel_get(K);
    const int64_t P = kern->pack_cols;
    const int64_t n_packed = P > 0 && N > PRIVATE_COLS ? N / P * P : 0;  // columns in whole packed groups

    int8_t * base = (int8_t *) GGML_PAD((uintptr_t) params->wdata, ACT_ALIGN);
    int8_t * qa, * pa = NULL;
    float * sa;
    int32_t * ma;
    float sa_own[PRIVATE_COLS];
    int32_t ma_own[PRIVATE_COLS];
    if (N <= PRIVATE_COLS) {
        // 1. every thread quantizes every column for itself: no barrier before the gemm
        qa = base + (size_t) ith * private_region(K, N);
        sa = sa_own;
        ma = ma_own;
        GGML_ASSERT(bitnet_i2s_act_aligned(qa, lda));  // i2s-gemm.h's precondition
        for (int64_t j = 0; j < N; ++j) {
            quantize_column(kern, src1, j, qa + j * lda, &sa[j], &ma[j]);
        }
    } else {
        qa = base;
        pa = qa + N * lda;  // 64-byte aligned: lda is
        GGML_ASSERT(bitnet_i2s_act_aligned(qa, lda) && bitnet_i2s_act_aligned(pa, 0));  // i2s-gemm.h's precondition
        sa = (float *) (pa + GGML_PAD(N * K, ACT_ALIGN));
        ma = (int32_t *) (sa + N);

        // 1. every thread quantizes whole activation rows (the scale spans the row); a thread that
        //    quantized a whole group of columns packs it while they are still in its cache
        for (int64_t g = ith; g * P < n_packed; g += nth) {
            for (int64_t j = g * P; j < (g + 1) * P; ++j) {
                quantize_column(kern, src1, j, qa + j * lda, &sa[j], &ma[j]);
            }
            kern->pack(K, qa + g * P * lda, lda, P, pa + g * P * K);
        }
        for (int64_t j = n_packed + ith; j < N; j += nth) {
            quantize_column(kern, src1, j, qa + j * lda, &sa[j], &ma[j]);
        }
        ggml_barrier(params->threadpool);
    }

    // 2. weight rows split across threads; every thread sees all activation columns. A few columns stream the
    //    weights from memory, whose speed differs between threads and moment to moment: rows go out in chunks
    //    to whichever thread is free. Many columns are compute-bound and even: one range per thread.
    const struct i2s_operands op = { kern, K, (const uint8_t *) src0->data, bitnet_i2s_scale(src0->data, K * M),
                                     N, n_packed, qa, pa, lda, sa, ma, dst };
    if (N <= PRIVATE_COLS) {
        const int64_t nchunks = (M + CHUNK_ROWS - 1) / CHUNK_ROWS;
        for (int64_t c; (c = bitnet_chunk_claim(dst, nchunks, nth)) >= 0; ) {
            gemm_rows(&op, c * CHUNK_ROWS, MIN(M, (c + 1) * CHUNK_ROWS));
        }
    } else {
        const int64_t rows_per_thread = GGML_PAD((M + nth - 1) / nth, 16);
        const int64_t r_begin = MIN(M, ith * rows_per_thread);
        gemm_rows(&op, r_begin, MIN(M, r_begin + rows_per_thread));
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
    // the quantizer a mat-mul with this K would use (all are bit-exact); the generic gemm, as q is not 64-byte aligned
    bitnet_i2s_kernel_get(n)->quantize_activations((const float *) vy, q, n, &sa, &suma);
    int32_t dot;
    bitnet_i2s_gemm_generic(n, (const uint8_t *) vx, 0, 1, q, &suma, n, 1, &dot, 1);
    *s = (float) dot / sa * bitnet_i2s_scale(vx, n);
    free(q);
}
