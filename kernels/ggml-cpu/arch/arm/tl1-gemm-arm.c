// AArch64 TL1 kernels (contract: tl1-gemm.h): NEON lookup table and GEMV, and two GEMMs that decode the
// indices to int8 weights, one with widening multiplies (plain NEON), one with sdot (dotprod).
//
// GEMV (one token): per pair, a 16-byte vector of indices (rows 0..15 in the low nibbles, rows 16..31 in the
// high ones) looks up the pair's two 16-byte planes with tbl. Because |a| <= 127, an entry's high byte is only a
// sign (0 or -1): low bytes are added widening into uint16 lanes and high bytes as int8, and per block of
// BITNET_TL1_BLOCK_PAIRS pairs the int16 sum is lo + (sgn << 8), exact mod 2^16 and within int16 (|sum| <=
// 32512), then widened to int32. This is the prototype's "sgn2" loop (docs/bench/tl1-llvm-mca): two sets of
// accumulators, so that an in-order core (Cortex-A53) has independent work between a tbl and its accumulate;
// here staged by two pairs and unrolled to four, which llvm-mca puts at 260-292 cycles per 1024 weights on
// the A53 (sgn2: 400) and no slower elsewhere.
//
// GEMM (several tokens): a batch of pairs of the tile is decoded once to int8 weights (two tbl per nibble
// vector: w0 and w1; indices 9..15 give 0), then multiplied with every column: smlal into int16 (flushed to
// int32 every 128 k), or sdot by lane into int32 on weights interleaved 4 k per row.
#include "tl1-gemm.h"

#ifdef BITNET_TL1_HAVE_NEON

#include <arm_neon.h>
#include <string.h>

#define INL    static inline __attribute__((always_inline))
#define UNROLL _Pragma("GCC unroll 16")  // register-blocked loops must unroll, or the accumulators go to the stack

// w0 and w1 of each index (idx / 3 - 1, idx % 3 - 1), zero for the unused indices 9..15
static const int8_t DIGIT0[16] = { -1, -1, -1, 0, 0, 0, 1, 1, 1, 0, 0, 0, 0, 0, 0, 0 };
static const int8_t DIGIT1[16] = { -1, 0, 1, -1, 0, 1, -1, 0, 1, 0, 0, 0, 0, 0, 0, 0 };

// ---- table: 8 pairs (16 activations) per step --------------------------------------------------------------

// e[0..7] and e[8..15] of pair j of the step as int16 (exact: |e| <= 256), split by uzp into the plane of low
// bytes (even bytes) and of high bytes (odd bytes)
#define TABLE_PAIR(o, j, X, L0, L1)                                                                      \
    do {                                                                                                 \
        const int16x8_t el_ = vmlaq_laneq_s16(vmulq_laneq_s16(d0l, X, L0), d1l, X, L1);                  \
        const int16x8_t eh_ = vmlaq_laneq_s16(vmulq_laneq_s16(d0h, X, L0), d1h, X, L1);                  \
        const int8x16_t bl_ = vreinterpretq_s8_s16(el_), bh_ = vreinterpretq_s8_s16(eh_);                \
        vst1q_s8((int8_t *) (o) + 32 * (j), vuzp1q_s8(bl_, bh_));                                        \
        vst1q_s8((int8_t *) (o) + 32 * (j) + 16, vuzp2q_s8(bl_, bh_));                                   \
    } while (0)

void bitnet_tl1_table_neon(const int8_t * a, int64_t K, uint8_t * table) {
    const int8x16_t dg0 = vld1q_s8(DIGIT0), dg1 = vld1q_s8(DIGIT1);
    const int16x8_t d0l = vmovl_s8(vget_low_s8(dg0)), d0h = vmovl_high_s8(dg0);
    const int16x8_t d1l = vmovl_s8(vget_low_s8(dg1)), d1h = vmovl_high_s8(dg1);
    const int64_t P = bitnet_tl1_table_pairs(K);
    for (int64_t p = 0; p < P; p += BITNET_TL1_TABLE_STEP) {
        const int8x16_t x = vld1q_s8(a + 2 * p);
        const int16x8_t xl = vmovl_s8(vget_low_s8(x)), xh = vmovl_high_s8(x);
        uint8_t * o = table + 32 * p;
        TABLE_PAIR(o, 0, xl, 0, 1);
        TABLE_PAIR(o, 1, xl, 2, 3);
        TABLE_PAIR(o, 2, xl, 4, 5);
        TABLE_PAIR(o, 3, xl, 6, 7);
        TABLE_PAIR(o, 4, xh, 0, 1);
        TABLE_PAIR(o, 5, xh, 2, 3);
        TABLE_PAIR(o, 6, xh, 4, 5);
        TABLE_PAIR(o, 7, xh, 6, 7);
    }
}
_Static_assert(BITNET_TL1_TABLE_STEP == 8, "bitnet_tl1_table_neon does 8 pairs per step");

// ---- gemv ----------------------------------------------------------------------------------------------------

// one pair of 32 rows (indices at WP, its table at TP): U0..U3 take the low bytes of rows 0-7, 8-15, 16-23,
// 24-31; G0, G1 the sign bytes of rows 0-15, 16-31
#define SGN_STEP(U0, U1, U2, U3, G0, G1, WP, TP)                                                          \
    do {                                                                                                  \
        const uint8x16_t ix_ = vld1q_u8(WP);                                                              \
        const uint8x16_t tl_ = vld1q_u8(TP);                                                              \
        const int8x16_t th_ = vld1q_s8((const int8_t *) (TP) + 16);                                       \
        const uint8x16_t i0_ = vandq_u8(ix_, m4), i1_ = vshrq_n_u8(ix_, 4);                               \
        const uint8x16_t l0_ = vqtbl1q_u8(tl_, i0_), l1_ = vqtbl1q_u8(tl_, i1_);                          \
        U0 = vaddw_u8(U0, vget_low_u8(l0_));                                                              \
        U1 = vaddw_high_u8(U1, l0_);                                                                      \
        U2 = vaddw_u8(U2, vget_low_u8(l1_));                                                              \
        U3 = vaddw_high_u8(U3, l1_);                                                                      \
        G0 = vaddq_s8(G0, vqtbl1q_s8(th_, i0_));                                                          \
        G1 = vaddq_s8(G1, vqtbl1q_s8(th_, i1_));                                                          \
    } while (0)

// two pairs (indices at WP, tables at TP), the first into the u/g accumulators, the second into x/h; staged
// (loads, nibbles, lookups, sums) so that an in-order core (Cortex-A53) does not wait on the op before
#define SGN_STEP2(WP, TP)                                                                                 \
    do {                                                                                                  \
        const uint8x16_t ia_ = vld1q_u8(WP), ib_ = vld1q_u8((WP) + 16);                                   \
        const uint8x16_t tla_ = vld1q_u8(TP), tlb_ = vld1q_u8((TP) + 32);                                 \
        const int8x16_t tha_ = vld1q_s8((const int8_t *) (TP) + 16);                                      \
        const int8x16_t thb_ = vld1q_s8((const int8_t *) (TP) + 48);                                      \
        const uint8x16_t a0_ = vandq_u8(ia_, m4), b0_ = vandq_u8(ib_, m4);                                \
        const uint8x16_t a1_ = vshrq_n_u8(ia_, 4), b1_ = vshrq_n_u8(ib_, 4);                              \
        const uint8x16_t la0_ = vqtbl1q_u8(tla_, a0_), la1_ = vqtbl1q_u8(tla_, a1_);                      \
        const int8x16_t sa0_ = vqtbl1q_s8(tha_, a0_), sa1_ = vqtbl1q_s8(tha_, a1_);                       \
        const uint8x16_t lb0_ = vqtbl1q_u8(tlb_, b0_), lb1_ = vqtbl1q_u8(tlb_, b1_);                      \
        const int8x16_t sb0_ = vqtbl1q_s8(thb_, b0_), sb1_ = vqtbl1q_s8(thb_, b1_);                       \
        u0 = vaddw_u8(u0, vget_low_u8(la0_));                                                             \
        u1 = vaddw_high_u8(u1, la0_);                                                                     \
        u2 = vaddw_u8(u2, vget_low_u8(la1_));                                                             \
        u3 = vaddw_high_u8(u3, la1_);                                                                     \
        g0 = vaddq_s8(g0, sa0_);                                                                          \
        g1 = vaddq_s8(g1, sa1_);                                                                          \
        x0 = vaddw_u8(x0, vget_low_u8(lb0_));                                                             \
        x1 = vaddw_high_u8(x1, lb0_);                                                                     \
        x2 = vaddw_u8(x2, vget_low_u8(lb1_));                                                             \
        x3 = vaddw_high_u8(x3, lb1_);                                                                     \
        h0 = vaddq_s8(h0, sb0_);                                                                          \
        h1 = vaddq_s8(h1, sb1_);                                                                          \
    } while (0)

// int16 block sum of 8 rows (low-byte sum + 256 * sign count, mod 2^16) added to two int32 accumulators
#define SGN_WIDEN(ACC0, ACC1, U, SG)                                                                      \
    do {                                                                                                  \
        const int16x8_t v_ = vaddq_s16(vreinterpretq_s16_u16(U), SG);                                     \
        ACC0 = vaddw_s16(ACC0, vget_low_s16(v_));                                                         \
        ACC1 = vaddw_high_s16(ACC1, v_);                                                                  \
    } while (0)

static void gemv_tile(int64_t P, const uint8_t * wt, const uint8_t * table, int32_t * out) {
    const uint8x16_t m4 = vdupq_n_u8(0x0F);
    int32x4_t acc[8];
    for (int i = 0; i < 8; ++i) {
        acc[i] = vdupq_n_s32(0);
    }
    for (int64_t p0 = 0; p0 < P; p0 += BITNET_TL1_BLOCK_PAIRS) {
        const int64_t pe = P - p0 < BITNET_TL1_BLOCK_PAIRS ? P : p0 + BITNET_TL1_BLOCK_PAIRS;
        // within a block: each low-byte lane <= 255 * 128 < 65536, each sign lane >= -128 (and mod 2^16 would
        // do anyway: only the final int16 sum must not wrap)
        uint16x8_t u0 = vdupq_n_u16(0), u1 = u0, u2 = u0, u3 = u0, x0 = u0, x1 = u0, x2 = u0, x3 = u0;
        int8x16_t g0 = vdupq_n_s8(0), g1 = g0, h0 = g0, h1 = g0;
        // pointers and a count rather than an index: fewer scalar ops in the loop (clang); 4 pairs per step
        // halve the loop overhead
        const uint8_t * wp = wt + 16 * p0;
        const uint8_t * tp = table + 32 * p0;
        for (int64_t n = (pe - p0) / 4; n > 0; --n, wp += 64, tp += 128) {  // 32 rows x 4 pairs = 256 weights
            SGN_STEP2(wp, tp);
            SGN_STEP2(wp + 32, tp + 64);
        }
        if ((pe - p0) % 4 >= 2) {
            SGN_STEP2(wp, tp);
            wp += 32;
            tp += 64;
        }
        if ((pe - p0) % 2 != 0) {
            SGN_STEP(u0, u1, u2, u3, g0, g1, wp, tp);
        }
        u0 = vaddq_u16(u0, x0);
        u1 = vaddq_u16(u1, x1);
        u2 = vaddq_u16(u2, x2);
        u3 = vaddq_u16(u3, x3);
        g0 = vaddq_s8(g0, h0);
        g1 = vaddq_s8(g1, h1);
        SGN_WIDEN(acc[0], acc[1], u0, vshll_n_s8(vget_low_s8(g0), 8));
        SGN_WIDEN(acc[2], acc[3], u1, vshll_high_n_s8(g0, 8));
        SGN_WIDEN(acc[4], acc[5], u2, vshll_n_s8(vget_low_s8(g1), 8));
        SGN_WIDEN(acc[6], acc[7], u3, vshll_high_n_s8(g1, 8));
    }
    for (int i = 0; i < 8; ++i) {
        vst1q_s32(out + 4 * i, acc[i]);
    }
}

void bitnet_tl1_gemv_neon(int64_t K, const uint8_t * w, int64_t tile0, int64_t tile1, const uint8_t * table,
                          int32_t * out) {
    const int64_t P = bitnet_tl1_pairs(K);
    for (int64_t tile = tile0; tile < tile1; ++tile) {
        gemv_tile(P, w + (size_t) tile * bitnet_tl1_tile_bytes(K), table, out + BITNET_TL1_TILE_ROWS * (tile - tile0));
    }
}

// ---- gemm ----------------------------------------------------------------------------------------------------

#define GEMM_BATCH_PAIRS 128  // pairs decoded at a time: 256 k x 32 rows = 8 KiB of int8 weights, in L1
#define GEMM_COLS        4    // columns per register block
#define GEMM_STEP_PAIRS  8    // the multiply loops take 16 activations (one vector) per column at a time
_Static_assert(GEMM_BATCH_PAIRS % GEMM_STEP_PAIRS == 0, "batches are whole multiply steps");
_Static_assert(BITNET_TL1_TABLE_STEP % GEMM_STEP_PAIRS == 0, "bitnet_tl1_act_len covers the multiply steps");

// w0 and w1 of the 32 rows of one pair: rows 0..15 from the low nibbles, rows 16..31 from the high ones
INL void decode_pair(const uint8_t * src, int8x16_t dg0, int8x16_t dg1, int8x16_t * w0lo, int8x16_t * w0hi,
                     int8x16_t * w1lo, int8x16_t * w1hi) {
    const uint8x16_t x = vld1q_u8(src);
    const uint8x16_t lo = vandq_u8(x, vdupq_n_u8(0x0F)), hi = vshrq_n_u8(x, 4);
    *w0lo = vqtbl1q_s8(dg0, lo);
    *w0hi = vqtbl1q_s8(dg0, hi);
    *w1lo = vqtbl1q_s8(dg1, lo);
    *w1hi = vqtbl1q_s8(dg1, hi);
}

// pairs [p0, p0 + n) of a tile (n a multiple of GEMM_STEP_PAIRS; pairs at or past P, which the tile does not
// hold, are zero weights)
static int64_t batch_pairs(int64_t P, int64_t p0) {
    const int64_t n = P - p0 < GEMM_BATCH_PAIRS ? P - p0 : GEMM_BATCH_PAIRS;
    return (n + GEMM_STEP_PAIRS - 1) / GEMM_STEP_PAIRS * GEMM_STEP_PAIRS;
}

// FN##_cols(C, ...) for C = 1 .. GEMM_COLS as separate functions, so that C is a compile-time constant in
// each and the per-column accumulators stay in registers (clang may merge the cases of a switch over inlined
// calls into one call with a variable C); the int32 sums of a column's 32 rows live in acc[32 * c + row]
// between batches
typedef void (*cols_fn)(const int8_t * wd, int64_t n, const int8_t * a, int64_t lda, int32_t * acc);
#define COLS_FUNCTION(FN, C)                                                                                \
    static __attribute__((noinline)) void FN##_cols##C(const int8_t * wd, int64_t n, const int8_t * a,        \
                                                       int64_t lda, int32_t * acc) {                          \
        FN##_cols(C, wd, n, a, lda, acc);                                                                     \
    }
#define COLS_FUNCTIONS(FN)                                                                                  \
    COLS_FUNCTION(FN, 1) COLS_FUNCTION(FN, 2) COLS_FUNCTION(FN, 3) COLS_FUNCTION(FN, 4)                     \
    static const cols_fn FN##_cols_by_count[GEMM_COLS] = { FN##_cols1, FN##_cols2, FN##_cols3, FN##_cols4 };
_Static_assert(GEMM_COLS == 4, "COLS_FUNCTIONS defines 1..4 columns");

// every group of up to GEMM_COLS columns of one decoded batch
static void for_column_groups(const cols_fn * by_count, const int8_t * wd, int64_t n, const int8_t * a, int64_t lda,
                              int64_t ncols, int32_t * acc) {
    for (int64_t c0 = 0; c0 < ncols; c0 += GEMM_COLS) {
        const int64_t nc = ncols - c0 < GEMM_COLS ? ncols - c0 : GEMM_COLS;
        by_count[nc - 1](wd, n, a + c0 * lda, lda, acc + BITNET_TL1_TILE_ROWS * c0);
    }
}

// decodes pairs [p0, p0 + n) of a tile (zeros past P) into a batch in the kernel's own weight layout
typedef void (*decode_fn)(const uint8_t * wt, int64_t P, int64_t p0, int64_t n, int8_t * wd);

// the gemm of one tile, for either weight layout: decode a batch of pairs, run every column group over it
INL void gemm_tile(decode_fn decode, const cols_fn * by_count, int64_t K, const uint8_t * w, int64_t tile,
                   const int8_t * a, int64_t lda, int64_t ncols, int32_t * out, int64_t ldo) {
    int8_t wd[GEMM_BATCH_PAIRS * 64] __attribute__((aligned(64)));
    int32_t acc[BITNET_LUT_GEMM_MAX_COLS * BITNET_TL1_TILE_ROWS];
    memset(acc, 0, sizeof(int32_t) * (size_t) (ncols * BITNET_TL1_TILE_ROWS));
    const int64_t P = bitnet_tl1_pairs(K);
    const uint8_t * wt = w + (size_t) tile * bitnet_tl1_tile_bytes(K);
    for (int64_t p0 = 0; p0 < P; p0 += GEMM_BATCH_PAIRS) {
        const int64_t n = batch_pairs(P, p0);
        decode(wt, P, p0, n, wd);
        for_column_groups(by_count, wd, n, a + 2 * p0, lda, ncols, acc);
    }
    for (int64_t c = 0; c < ncols; ++c) {
        memcpy(out + c * ldo, acc + BITNET_TL1_TILE_ROWS * c, sizeof(int32_t) * BITNET_TL1_TILE_ROWS);
    }
}

// the columns of a register block: a literal trip count, so that the loop unrolls completely (clang unrolls a
// pragma loop with a variable count at run time, before inlining makes C constant, and the accumulators then
// live on the stack)
#define FOR_COLS(c) UNROLL for (int c = 0; c < GEMM_COLS; ++c) if (c < C)

#define LANES16(X) X(0) X(1) X(2) X(3) X(4) X(5) X(6) X(7) X(8) X(9) X(10) X(11) X(12) X(13) X(14) X(15)

// -- plain NEON: k-major weights (per k, 32 bytes: rows 0..31), smlal by a broadcast activation ---------------

static void neon_decode(const uint8_t * wt, int64_t P, int64_t p0, int64_t n, int8_t * wd) {
    const int8x16_t dg0 = vld1q_s8(DIGIT0), dg1 = vld1q_s8(DIGIT1);
    for (int64_t j = 0; j < n; ++j, wd += 64) {
        if (p0 + j >= P) {
            memset(wd, 0, 64);
            continue;
        }
        int8x16_t w0lo, w0hi, w1lo, w1hi;
        decode_pair(wt + 16 * (p0 + j), dg0, dg1, &w0lo, &w0hi, &w1lo, &w1hi);
        vst1q_s8(wd, w0lo);
        vst1q_s8(wd + 16, w0hi);
        vst1q_s8(wd + 32, w1lo);
        vst1q_s8(wd + 48, w1hi);
    }
}

// |w * a| <= 128, so an int16 lane takes 255 products: flush every 128 k
#define NEON_FLUSH_K 128
_Static_assert(NEON_FLUSH_K * 128 <= 32767, "an int16 smlal accumulator could overflow");
_Static_assert(NEON_FLUSH_K % 16 == 0, "flushes fall between whole 16-k steps");

INL void neon_cols(const int C, const int8_t * wd, int64_t n, const int8_t * a, int64_t lda, int32_t * acc) {
    const int64_t nk = 2 * n;
    for (int64_t k0 = 0; k0 < nk; k0 += NEON_FLUSH_K) {
        const int64_t ke = nk - k0 < NEON_FLUSH_K ? nk : k0 + NEON_FLUSH_K;
        int16x8_t s[GEMM_COLS][4];
        FOR_COLS(c) {
            s[c][0] = s[c][1] = s[c][2] = s[c][3] = vdupq_n_s16(0);
        }
        for (int64_t k = k0; k < ke; k += 16) {
            int8x16_t A[GEMM_COLS];
            FOR_COLS(c) {
                A[c] = vld1q_s8(a + c * lda + k);
            }
#define NEON_K(L)                                                                                          \
            {                                                                                              \
                const int8x16_t wl = vld1q_s8(wd + 32 * (k + (L))), wh = vld1q_s8(wd + 32 * (k + (L)) + 16); \
                FOR_COLS(c) {                                                                              \
                    const int8x16_t d = vdupq_laneq_s8(A[c], L);                                           \
                    s[c][0] = vmlal_s8(s[c][0], vget_low_s8(wl), vget_low_s8(d));                          \
                    s[c][1] = vmlal_high_s8(s[c][1], wl, d);                                               \
                    s[c][2] = vmlal_s8(s[c][2], vget_low_s8(wh), vget_low_s8(d));                          \
                    s[c][3] = vmlal_high_s8(s[c][3], wh, d);                                               \
                }                                                                                          \
            }
            LANES16(NEON_K)
#undef NEON_K
        }
        FOR_COLS(c) {
            UNROLL
            for (int v = 0; v < 4; ++v) {  // s[c][v] holds rows 8v .. 8v+7
                int32_t * o = acc + 32 * c + 8 * v;
                vst1q_s32(o, vaddw_s16(vld1q_s32(o), vget_low_s16(s[c][v])));
                vst1q_s32(o + 4, vaddw_high_s16(vld1q_s32(o + 4), s[c][v]));
            }
        }
    }
}

COLS_FUNCTIONS(neon)

void bitnet_tl1_gemm_neon(int64_t K, const uint8_t * w, int64_t tile, const int8_t * a, const int32_t * a_sum,
                          int64_t lda, int64_t ncols, int32_t * out, int64_t ldo) {
    (void) a_sum;
    gemm_tile(neon_decode, neon_cols_by_count, K, w, tile, a, lda, ncols, out, ldo);
}

// -- dotprod: per quad of k (two pairs) 128 bytes, vector 4h + j = rows 16h + 4j .. +3, 4 k of each row -------

#ifdef BITNET_TL1_HAVE_DOTPROD

// rows of one nibble half (16 rows) of pairs p, p+1: (w0, w1) byte pairs per row, then the two pairs' 16-bit
// pairs interleaved, so that each 32-bit lane is one row's 4 consecutive weights
INL void dot_interleave(int8x16_t a0, int8x16_t b0, int8x16_t a1, int8x16_t b1, int8_t * dst) {
    const int16x8_t z0l = vreinterpretq_s16_s8(vzip1q_s8(a0, b0)), z0h = vreinterpretq_s16_s8(vzip2q_s8(a0, b0));
    const int16x8_t z1l = vreinterpretq_s16_s8(vzip1q_s8(a1, b1)), z1h = vreinterpretq_s16_s8(vzip2q_s8(a1, b1));
    vst1q_s8(dst, vreinterpretq_s8_s16(vzip1q_s16(z0l, z1l)));
    vst1q_s8(dst + 16, vreinterpretq_s8_s16(vzip2q_s16(z0l, z1l)));
    vst1q_s8(dst + 32, vreinterpretq_s8_s16(vzip1q_s16(z0h, z1h)));
    vst1q_s8(dst + 48, vreinterpretq_s8_s16(vzip2q_s16(z0h, z1h)));
}

static void dot_decode(const uint8_t * wt, int64_t P, int64_t p0, int64_t n, int8_t * wd) {
    const int8x16_t dg0 = vld1q_s8(DIGIT0), dg1 = vld1q_s8(DIGIT1);
    const int8x16_t zero = vdupq_n_s8(0);
    for (int64_t j = 0; j < n; j += 2, wd += 128) {
        int8x16_t a0lo = zero, a0hi = zero, b0lo = zero, b0hi = zero;  // pair p0 + j: w0 (a), w1 (b)
        int8x16_t a1lo = zero, a1hi = zero, b1lo = zero, b1hi = zero;  // pair p0 + j + 1
        if (p0 + j < P) {
            decode_pair(wt + 16 * (p0 + j), dg0, dg1, &a0lo, &a0hi, &b0lo, &b0hi);
        }
        if (p0 + j + 1 < P) {
            decode_pair(wt + 16 * (p0 + j + 1), dg0, dg1, &a1lo, &a1hi, &b1lo, &b1hi);
        }
        dot_interleave(a0lo, b0lo, a1lo, b1lo, wd);
        dot_interleave(a0hi, b0hi, a1hi, b1hi, wd + 64);
    }
}

// one half of the tile (h: rows 16h .. 16h+15) for C columns; sdot never saturates, so int32 throughout.
// Two quads (8 activations, a 64-bit lane pair) per step: 16 accumulators, 8 weight vectors and 4 activation
// halves fit the 32 registers without spills.
INL void dot_cols(const int C, const int8_t * wd, int64_t n, const int8_t * a, int64_t lda, int32_t * acc) {
    for (int h = 0; h < 2; ++h) {
        int32x4_t s[GEMM_COLS][4];
        FOR_COLS(c) {
            UNROLL
            for (int j = 0; j < 4; ++j) {
                s[c][j] = vld1q_s32(acc + 32 * c + 16 * h + 4 * j);
            }
        }
        for (int64_t q = 0; q < n / 2; q += 2) {
            int8x8_t A[GEMM_COLS];
            FOR_COLS(c) {
                A[c] = vld1_s8(a + c * lda + 4 * q);
            }
#define DOT_QUAD(L)                                                                                        \
            {                                                                                              \
                const int8_t * wq = wd + 128 * (q + (L)) + 64 * h;                                         \
                const int8x16_t W0 = vld1q_s8(wq), W1 = vld1q_s8(wq + 16);                                 \
                const int8x16_t W2 = vld1q_s8(wq + 32), W3 = vld1q_s8(wq + 48);                            \
                FOR_COLS(c) {                                                                              \
                    s[c][0] = vdotq_lane_s32(s[c][0], W0, A[c], L);                                        \
                    s[c][1] = vdotq_lane_s32(s[c][1], W1, A[c], L);                                        \
                    s[c][2] = vdotq_lane_s32(s[c][2], W2, A[c], L);                                        \
                    s[c][3] = vdotq_lane_s32(s[c][3], W3, A[c], L);                                        \
                }                                                                                          \
            }
            DOT_QUAD(0)
            DOT_QUAD(1)
#undef DOT_QUAD
        }
        FOR_COLS(c) {
            UNROLL
            for (int j = 0; j < 4; ++j) {
                vst1q_s32(acc + 32 * c + 16 * h + 4 * j, s[c][j]);
            }
        }
    }
}

COLS_FUNCTIONS(dot)

void bitnet_tl1_gemm_dotprod(int64_t K, const uint8_t * w, int64_t tile, const int8_t * a, const int32_t * a_sum,
                             int64_t lda, int64_t ncols, int32_t * out, int64_t ldo) {
    (void) a_sum;
    gemm_tile(dot_decode, dot_cols_by_count, K, w, tile, a, lda, ncols, out, ldo);
}

#endif // BITNET_TL1_HAVE_DOTPROD
#endif // BITNET_TL1_HAVE_NEON
