// Q6_K x Q8_K dot product with AVX-512 (BW + VNNI), for the lm_head in token generation (q6k-dot.h).
//
// A Q6_K block holds 256 six-bit codes q in 0..63 (value q - 32): per half of 128, ql[64] has the low nibbles
// (byte l: element l in its low nibble, l + 64 in its high one) and qh[32] the high two bits (byte l: elements
// l, l + 32, l + 64, l + 96 at bits 0, 2, 4, 6). One 64-byte load of ql therefore gives elements 0..63 as low
// nibbles and 64..127 as high nibbles, and a broadcast of qh shifted by 4 | 2 (resp. 0 | 2 right) per 256-bit
// half puts their high bits at bits 4..5. Each of the 16 sub-blocks of 16 has an int8 scale.
//
// maddubs multiplies the unsigned codes with the Q8_K activations (pair sums <= 2 * 63 * 128 < 2^15, exact),
// vpdpwssd weighs the pairs with their sub-block's scale into int32, and the -32 offset comes back through the
// activations' sums per 16 (bsums): sum = sum_j scale_j * (sum_i q_i y_i - 32 * bsum_j), exact in int32.
// Per block the 16 int32 lanes are scaled by d(Q6_K) * d(Q8_K) into 16 float lanes, summed at the end. The
// one-column rows function runs the same blocks in the same order, so its results are the vec_dot's bits.
#include "q6k-dot.h"

#include "bitnet-prefetch.h"

#ifdef BITNET_Q6K_HAVE_AVX512VNNI

#define GGML_COMMON_DECL_C
#include "ggml-common.h"

#include <immintrin.h>

// int16 lane l of the scale vector for 64 elements starting at sub-block `first`: the scale of sub-block
// first + l / 8 (lane l holds the pair of elements 2l, 2l + 1)
static inline __m512i q6k_scale_index(int first) {
    return _mm512_add_epi16(_mm512_set1_epi16((short) first),
                            _mm512_srli_epi16(_mm512_set_epi16(31, 30, 29, 28, 27, 26, 25, 24, 23, 22, 21, 20, 19, 18,
                                                               17, 16, 15, 14, 13, 12, 11, 10, 9, 8, 7, 6, 5, 4, 3, 2,
                                                               1, 0), 3));
}

// acc += d * (block x . block y) in 16 float lanes
static inline __m512 q6k_block(const block_q6_K * x, const block_q8_K * y, __m512 acc) {
    const __m512i low4 = _mm512_set1_epi8(0x0F);
    const __m512i bits45 = _mm512_set1_epi8(0x30);
    // elements 0..31 take qh bits 0..1 (<< 4), 32..63 bits 2..3 (<< 2); 64..95 bits 4..5, 96..127 bits 6..7 (>> 2)
    const __m512i shl_lo = _mm512_inserti64x4(_mm512_set1_epi16(4), _mm256_set1_epi16(2), 1);
    const __m512i shr_hi = _mm512_inserti64x4(_mm512_setzero_si512(), _mm256_set1_epi16(2), 1);
    const __m256i sc16 = _mm256_cvtepi8_epi16(_mm_loadu_si128((const __m128i *) x->scales));
    const __m512i sc = _mm512_castsi256_si512(sc16);  // only lanes 0..15 are read
    // one int32 chain per half: a single chain of four vpdpwssd would wait on their latency
    __m512i isum[2];
    for (int h = 0; h < 2; ++h) {
        const __m512i ql = _mm512_loadu_si512(x->ql + 64 * h);
        const __m512i qh = _mm512_broadcast_i64x4(_mm256_loadu_si256((const __m256i *) (x->qh + 32 * h)));
        // (bits 4..5 of the shifted qh) | nibble, in one ternary-logic op each (imm 0xEA = (A & B) | C)
        const __m512i q0 = _mm512_ternarylogic_epi32(_mm512_sllv_epi16(qh, shl_lo), bits45,
                                                     _mm512_and_si512(ql, low4), 0xEA);
        const __m512i q1 = _mm512_ternarylogic_epi32(_mm512_srlv_epi16(qh, shr_hi), bits45,
                                                     _mm512_and_si512(_mm512_srli_epi16(ql, 4), low4), 0xEA);
        const __m512i y0 = _mm512_loadu_si512(y->qs + 128 * h);
        const __m512i y1 = _mm512_loadu_si512(y->qs + 128 * h + 64);
        isum[h] = _mm512_dpwssd_epi32(_mm512_madd_epi16(_mm512_maddubs_epi16(q0, y0),
                                                        _mm512_permutexvar_epi16(q6k_scale_index(8 * h), sc)),
                                      _mm512_maddubs_epi16(q1, y1), _mm512_permutexvar_epi16(q6k_scale_index(8 * h + 4), sc));
    }
    // sum_j scale_j * bsum_j (8 int32 lanes), taken 32 times from the total
    const __m256i off = _mm256_madd_epi16(_mm256_loadu_si256((const __m256i *) y->bsums), sc16);
    const __m512i total = _mm512_sub_epi32(_mm512_add_epi32(isum[0], isum[1]),
                                           _mm512_inserti64x4(_mm512_setzero_si512(), _mm256_slli_epi32(off, 5), 0));
    const float d = _cvtsh_ss(x->d) * y->d;
    return _mm512_fmadd_ps(_mm512_set1_ps(d), _mm512_cvtepi32_ps(total), acc);
}

void bitnet_vec_dot_q6_K_q8_K_avx512vnni(int n, float * s, size_t bs, const void * vx, size_t bx, const void * vy,
                                         size_t by, int nrc) {
    (void) bs;
    (void) bx;
    (void) by;
    (void) nrc;
    const block_q6_K * x = (const block_q6_K *) vx;
    const block_q8_K * y = (const block_q8_K *) vy;
    __m512 acc = _mm512_setzero_ps();
    for (int i = 0; i < n / QK_K; ++i) {
        acc = q6k_block(x + i, y + i, acc);
    }
    *s = _mm512_reduce_add_ps(acc);
}

void bitnet_q6_K_rows_avx512vnni(int n, const void * rows, size_t row_bytes, int64_t nrows, const void * vy,
                                 float * out) {
    const block_q8_K * y = (const block_q8_K *) vy;
    const int64_t half = nrows / 2;
    for (int64_t r = 0; r < half; ++r) {
        // rows r and r + half: two streams far apart, interleaved block by block (q6k-dot.h)
        const block_q6_K * x0 = (const block_q6_K *) ((const char *) rows + r * row_bytes);
        const block_q6_K * x1 = (const block_q6_K *) ((const char *) rows + (r + half) * row_bytes);
        __m512 acc0 = _mm512_setzero_ps(), acc1 = _mm512_setzero_ps();
        for (int i = 0; i < n / QK_K; ++i) {
            bitnet_prefetch_ahead(x0 + i, sizeof(block_q6_K));
            bitnet_prefetch_ahead(x1 + i, sizeof(block_q6_K));
            acc0 = q6k_block(x0 + i, y + i, acc0);
            acc1 = q6k_block(x1 + i, y + i, acc1);
        }
        out[r] = _mm512_reduce_add_ps(acc0);
        out[r + half] = _mm512_reduce_add_ps(acc1);
    }
    if (nrows % 2 != 0) {
        const void * last = (const char *) rows + (nrows - 1) * row_bytes;
        bitnet_prefetch_ahead(last, row_bytes);
        bitnet_vec_dot_q6_K_q8_K_avx512vnni(n, &out[nrows - 1], 0, last, 0, vy, 0, 1);
    }
}

#endif // BITNET_Q6K_HAVE_AVX512VNNI
