// ggml-cpu glue for the lookup-table formats TL1 and TL2: per-token activation quantization (I2_S's, so results
// are I2_S's bit for bit), threading and output scaling around the kernels of lut-gemm.h.
#include "lut-cpu.h"
#include "bitnet-rows.h"
#include "i2s-gemm.h"
#include "tl1-gemm.h"
#include "tl2-gemm.h"

#include "ggml-cpu-impl.h"

#include <string.h>

#define ACT_ALIGN  64
// rows per gemv call: one chunk of a token's mat-mul handed to a free thread (10 chunks at M = 2560); a whole
// number of tiles of either format
#define GEMV_ROWS 256
_Static_assert(GEMV_ROWS % BITNET_TL1_TILE_ROWS == 0 && GEMV_ROWS % BITNET_TL2_TILE_ROWS == 0, "whole tiles per chunk");

// what the glue needs to know of a format
struct lut_format {
    int64_t tile_rows;
    int64_t (*act_len)(int64_t K);      // activation row length the kernels read (zero from K)
    size_t  (*table_bytes)(int64_t K);  // one token's table
    int64_t (*tiles)(int64_t M);
    float   (*scale)(const void * data, int64_t K, int64_t M);
    const struct bitnet_lut_kernel * kernels;
    const int * n_kernels;
};

static int64_t tl1_act_len(int64_t K) { return bitnet_tl1_act_len(K); }
static size_t  tl1_table_bytes(int64_t K) { return bitnet_tl1_table_bytes(K); }
static int64_t tl1_tiles(int64_t M) { return bitnet_tl1_tiles(M); }
static int64_t tl2_act_len(int64_t K) { return bitnet_tl2_act_len(K); }
static size_t  tl2_table_bytes(int64_t K) { return bitnet_tl2_table_bytes(K); }
static int64_t tl2_tiles(int64_t M) { return bitnet_tl2_tiles(M); }

static const struct lut_format TL1 = { BITNET_TL1_TILE_ROWS, tl1_act_len, tl1_table_bytes, tl1_tiles, bitnet_tl1_scale,
                                       bitnet_tl1_kernels, &bitnet_tl1_n_kernels };
static const struct lut_format TL2 = { BITNET_TL2_TILE_ROWS, tl2_act_len, tl2_table_bytes, tl2_tiles, bitnet_tl2_scale,
                                       bitnet_tl2_kernels, &bitnet_tl2_n_kernels };

static const struct lut_format * format_of(const struct ggml_tensor * src0) {
    GGML_ASSERT(src0->type == GGML_TYPE_TL1 || src0->type == GGML_TYPE_TL2);
    return src0->type == GGML_TYPE_TL1 ? &TL1 : &TL2;
}

// One token: every thread quantizes it and builds its own table (a few microseconds), so the mat-mul needs no
// barrier; each thread's region holds the activations, then the table.
static size_t gemv_region(const struct lut_format * f, int64_t K) {
    return (size_t) f->act_len(K) + GGML_PAD(f->table_bytes(K), ACT_ALIGN);
}

size_t ggml_bitnet_lut_mul_mat_work_size(const struct ggml_tensor * dst, int n_threads) {
    const struct lut_format * f = format_of(dst->src[0]);
    const int64_t K = dst->src[1]->ne[0];
    const int64_t N = ggml_nrows(dst->src[1]);
    if (N == 1) {
        return (size_t) n_threads * gemv_region(f, K) + ACT_ALIGN;
    }
    // shared int8 rows, scales and sums
    return (size_t) (N * f->act_len(K) + N * (int64_t) (sizeof(float) + sizeof(int32_t))) + ACT_ALIGN;
}

static void quantize_column(const struct lut_format * f, bitnet_i2s_quantize_activations_t quantize,
                            const struct ggml_tensor * src1, int64_t j, int8_t * q, float * scale, int32_t * sum) {
    const int64_t K = src1->ne[0];
    quantize(bitnet_row_of(src1, j), q, K, scale, sum);
    memset(q + K, 0, (size_t) (f->act_len(K) - K));  // the kernels read whole groups and steps
}

void ggml_bitnet_lut_mul_mat(const struct ggml_compute_params * params, struct ggml_tensor * dst) {
    const struct ggml_tensor * src0 = dst->src[0];
    const struct ggml_tensor * src1 = dst->src[1];

    GGML_TENSOR_BINARY_OP_LOCALS

    const struct lut_format * f = format_of(src0);
    bitnet_check_mul_mat(dst);

    const int ith = params->ith;
    const int nth = params->nth;

    const int64_t K = ne00;
    const int64_t M = ne01;
    const int64_t N = ne11 * ne12 * ne13;
    const int64_t lda = f->act_len(K);
    const int64_t R = f->tile_rows;

    // use_ref: the generic kernels (last in every table)
    const struct bitnet_i2s_kernel * i2s =
        params->use_ref ? &bitnet_i2s_kernels[bitnet_i2s_n_kernels - 1] : bitnet_i2s_kernel_preferred();
    const struct bitnet_lut_kernel * kern = bitnet_lut_kernel_for(f->kernels, *f->n_kernels, i2s->name);

    const float sw = f->scale(src0->data, K, M);
    const uint8_t * w = (const uint8_t *) src0->data;
    const int64_t ntiles = f->tiles(M);
    int8_t * base = (int8_t *) GGML_PAD((uintptr_t) params->wdata, ACT_ALIGN);

    if (N == 1) {
        int8_t * qa = base + (size_t) ith * gemv_region(f, K);
        uint8_t * table = (uint8_t *) qa + lda;
        float sa;
        int32_t suma;
        quantize_column(f, i2s->quantize_activations, src1, 0, qa, &sa, &suma);
        kern->table(qa, K, table);
        float * y = bitnet_row_of(dst, 0);
        int32_t out[GEMV_ROWS];
        // tiles go out in chunks to whichever thread is free (the weights stream from memory, unevenly)
        const int64_t chunk = GEMV_ROWS / R;
        for (int64_t c; (c = bitnet_chunk_claim(dst, (ntiles + chunk - 1) / chunk, nth)) >= 0; ) {
            const int64_t t0 = c * chunk, t1 = MIN(ntiles, t0 + chunk);
            kern->gemv(K, w, t0, t1, table, out);
            bitnet_scale_rows(out, MIN(M, t1 * R) - t0 * R, sa, sw, y + t0 * R);
        }
        return;
    }

    int8_t  * qa = base;
    float   * sa = (float *) (qa + N * lda);
    int32_t * ma = (int32_t *) (sa + N);
    for (int64_t j = ith; j < N; j += nth) {
        quantize_column(f, i2s->quantize_activations, src1, j, qa + j * lda, &sa[j], &ma[j]);
    }
    ggml_barrier(params->threadpool);

    const int64_t per_thread = (ntiles + nth - 1) / nth;
    const int64_t t_begin = MIN(ntiles, ith * per_thread);
    const int64_t t_end = MIN(ntiles, t_begin + per_thread);
    int32_t out[BITNET_LUT_GEMM_MAX_COLS * BITNET_TL2_TILE_ROWS];  // the taller tile of the two formats
    for (int64_t tile = t_begin; tile < t_end; ++tile) {
        const int64_t nr = MIN(M, (tile + 1) * R) - tile * R;
        for (int64_t c0 = 0; c0 < N; c0 += BITNET_LUT_GEMM_MAX_COLS) {
            const int64_t nc = MIN(N, c0 + BITNET_LUT_GEMM_MAX_COLS) - c0;
            kern->gemm(K, w, tile, qa + c0 * lda, ma + c0, lda, nc, out, R);
            for (int64_t c = 0; c < nc; ++c) {
                bitnet_scale_rows(out + c * R, nr, sa[c0 + c], sw, bitnet_row_of(dst, c0 + c) + tile * R);
            }
        }
    }
}
