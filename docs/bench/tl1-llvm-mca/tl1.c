#include "tl1.h"
#include <arm_neon.h>
#include <string.h>

static inline int tl1_idx(int w0, int w1) { return 3 * w0 + w1 + 4; }

void tl1_pack(const int8_t * t, int64_t M, int64_t K, uint8_t * w) {
    const int64_t P = K / 2;
    for (int64_t tile = 0; tile < M / TL1_ROWS; ++tile)
        for (int64_t p = 0; p < P; ++p)
            for (int i = 0; i < 16; ++i) {
                const int8_t * lo = t + (tile * TL1_ROWS + i) * K + 2 * p;
                const int8_t * hi = t + (tile * TL1_ROWS + 16 + i) * K + 2 * p;
                w[(tile * P + p) * 16 + i] = (uint8_t) (tl1_idx(lo[0], lo[1]) | tl1_idx(hi[0], hi[1]) << 4);
            }
}

void tl1_build_lut_ref(const int8_t * a, int64_t K, int8_t * lut) {
    for (int64_t p = 0; p < K / 2; ++p) {
        for (int idx = 0; idx < 16; ++idx) {
            const int16_t e = idx < 9 ? (int16_t) ((idx / 3 - 1) * a[2 * p] + (idx % 3 - 1) * a[2 * p + 1]) : 0;
            lut[32 * p + idx]      = (int8_t) (uint8_t) ((uint16_t) e & 0xFF);
            lut[32 * p + 16 + idx] = (int8_t) (uint8_t) ((uint16_t) e >> 8);
        }
    }
}

// per pair: e[0..7] = W0[0..7]*a0 + W1[0..7]*a1, e[8..15] = W0[8..15]*a0 + W1[8..15]*a1 (int16, exact),
// then uzp1 (even bytes = low bytes) / uzp2 (odd bytes = high bytes) give the two 16-byte planes.
void tl1_build_lut_neon(const int8_t * a, int64_t K, int8_t * lut) {
    static const int16_t W0[16] = { -1, -1, -1, 0, 0, 0, 1, 1, 1, 0, 0, 0, 0, 0, 0, 0 };
    static const int16_t W1[16] = { -1, 0, 1, -1, 0, 1, -1, 0, 1, 0, 0, 0, 0, 0, 0, 0 };
    const int16x8_t w0l = vld1q_s16(W0), w0h = vld1q_s16(W0 + 8), w1l = vld1q_s16(W1), w1h = vld1q_s16(W1 + 8);
    for (int64_t k = 0; k < K; k += 16) {  // 8 pairs
        const int8x16_t x = vld1q_s8(a + k);
        const int16x8_t xl = vmovl_s8(vget_low_s8(x)), xh = vmovl_high_s8(x);
        int8_t * o = lut + 16 * k;
#define TL1_PAIR(j, X, L0, L1)                                                                         \
        do {                                                                                           \
            const int16x8_t el = vmlaq_laneq_s16(vmulq_laneq_s16(w0l, X, L0), w1l, X, L1);             \
            const int16x8_t eh = vmlaq_laneq_s16(vmulq_laneq_s16(w0h, X, L0), w1h, X, L1);             \
            const int8x16_t bl = vreinterpretq_s8_s16(el), bh = vreinterpretq_s8_s16(eh);              \
            vst1q_s8(o + 32 * (j), vuzp1q_s8(bl, bh));                                                 \
            vst1q_s8(o + 32 * (j) + 16, vuzp2q_s8(bl, bh));                                            \
        } while (0)
        TL1_PAIR(0, xl, 0, 1); TL1_PAIR(1, xl, 2, 3); TL1_PAIR(2, xl, 4, 5); TL1_PAIR(3, xl, 6, 7);
        TL1_PAIR(4, xh, 0, 1); TL1_PAIR(5, xh, 2, 3); TL1_PAIR(6, xh, 4, 5); TL1_PAIR(7, xh, 6, 7);
#undef TL1_PAIR
    }
}

void tl1_gemv_ref(const int8_t * t, const int8_t * a, int64_t M, int64_t K, int32_t * out) {
    for (int64_t r = 0; r < M; ++r) {
        int32_t s = 0;
        for (int64_t k = 0; k < K; ++k) s += t[r * K + k] * a[k];
        out[r] = s;
    }
}

void tl1_gemv_zip(int64_t K, const uint8_t * w, const int8_t * lut, int64_t M, int32_t * out) {
    const int64_t P = K / 2;
    const uint8x16_t m4 = vdupq_n_u8(0x0F);
    for (int64_t tile = 0; tile < M / TL1_ROWS; ++tile) {
        const uint8_t * wt = w + tile * P * 16;
        int32x4_t acc[8];
        for (int i = 0; i < 8; ++i) acc[i] = vdupq_n_s32(0);
        for (int64_t p0 = 0; p0 < P; p0 += TL1_BLK) {
            const int64_t pe = p0 + TL1_BLK < P ? p0 + TL1_BLK : P;
            int16x8_t s0 = vdupq_n_s16(0), s1 = s0, s2 = s0, s3 = s0;
            for (int64_t p = p0; p < pe; ++p) {  // steady-state inner loop: 32 rows x 1 pair = 64 weights
                const uint8x16_t ix = vld1q_u8(wt + 16 * p);
                const uint8x16_t i0 = vandq_u8(ix, m4), i1 = vshrq_n_u8(ix, 4);
                const int8x16_t tl = vld1q_s8(lut + 32 * p), th = vld1q_s8(lut + 32 * p + 16);
                const int8x16_t l0 = vqtbl1q_s8(tl, i0), h0 = vqtbl1q_s8(th, i0);
                const int8x16_t l1 = vqtbl1q_s8(tl, i1), h1 = vqtbl1q_s8(th, i1);
                s0 = vaddq_s16(s0, vreinterpretq_s16_s8(vzip1q_s8(l0, h0)));
                s1 = vaddq_s16(s1, vreinterpretq_s16_s8(vzip2q_s8(l0, h0)));
                s2 = vaddq_s16(s2, vreinterpretq_s16_s8(vzip1q_s8(l1, h1)));
                s3 = vaddq_s16(s3, vreinterpretq_s16_s8(vzip2q_s8(l1, h1)));
            }
            acc[0] = vaddw_s16(acc[0], vget_low_s16(s0)); acc[1] = vaddw_high_s16(acc[1], s0);
            acc[2] = vaddw_s16(acc[2], vget_low_s16(s1)); acc[3] = vaddw_high_s16(acc[3], s1);
            acc[4] = vaddw_s16(acc[4], vget_low_s16(s2)); acc[5] = vaddw_high_s16(acc[5], s2);
            acc[6] = vaddw_s16(acc[6], vget_low_s16(s3)); acc[7] = vaddw_high_s16(acc[7], s3);
        }
        for (int i = 0; i < 8; ++i) vst1q_s32(out + tile * TL1_ROWS + 4 * i, acc[i]);
    }
}

void tl1_gemv_sgn(int64_t K, const uint8_t * w, const int8_t * lut, int64_t M, int32_t * out) {
    const int64_t P = K / 2;
    const uint8x16_t m4 = vdupq_n_u8(0x0F);
    for (int64_t tile = 0; tile < M / TL1_ROWS; ++tile) {
        const uint8_t * wt = w + tile * P * 16;
        int32x4_t acc[8];
        for (int i = 0; i < 8; ++i) acc[i] = vdupq_n_s32(0);
        for (int64_t p0 = 0; p0 < P; p0 += TL1_BLK) {
            const int64_t pe = p0 + TL1_BLK < P ? p0 + TL1_BLK : P;
            // low bytes: <= 255*128 = 32640 per uint16 lane; signs: >= -128 per int8 lane
            uint16x8_t u0 = vdupq_n_u16(0), u1 = u0, u2 = u0, u3 = u0;
            int8x16_t g0 = vdupq_n_s8(0), g1 = g0;
            for (int64_t p = p0; p < pe; ++p) {  // steady-state inner loop: 32 rows x 1 pair = 64 weights
                const uint8x16_t ix = vld1q_u8(wt + 16 * p);
                const uint8x16_t i0 = vandq_u8(ix, m4), i1 = vshrq_n_u8(ix, 4);
                const uint8x16_t tl = vld1q_u8((const uint8_t *) lut + 32 * p);
                const int8x16_t th = vld1q_s8(lut + 32 * p + 16);
                const uint8x16_t l0 = vqtbl1q_u8(tl, i0), l1 = vqtbl1q_u8(tl, i1);
                u0 = vaddw_u8(u0, vget_low_u8(l0)); u1 = vaddw_high_u8(u1, l0);
                u2 = vaddw_u8(u2, vget_low_u8(l1)); u3 = vaddw_high_u8(u3, l1);
                g0 = vaddq_s8(g0, vqtbl1q_s8(th, i0));
                g1 = vaddq_s8(g1, vqtbl1q_s8(th, i1));
            }
            // block sum = lo + 256*sgn, |sum| <= 32512: exact in int16 arithmetic mod 2^16
            const int16x8_t v0 = vaddq_s16(vreinterpretq_s16_u16(u0), vshll_n_s8(vget_low_s8(g0), 8));
            const int16x8_t v1 = vaddq_s16(vreinterpretq_s16_u16(u1), vshll_high_n_s8(g0, 8));
            const int16x8_t v2 = vaddq_s16(vreinterpretq_s16_u16(u2), vshll_n_s8(vget_low_s8(g1), 8));
            const int16x8_t v3 = vaddq_s16(vreinterpretq_s16_u16(u3), vshll_high_n_s8(g1, 8));
            acc[0] = vaddw_s16(acc[0], vget_low_s16(v0)); acc[1] = vaddw_high_s16(acc[1], v0);
            acc[2] = vaddw_s16(acc[2], vget_low_s16(v1)); acc[3] = vaddw_high_s16(acc[3], v1);
            acc[4] = vaddw_s16(acc[4], vget_low_s16(v2)); acc[5] = vaddw_high_s16(acc[5], v2);
            acc[6] = vaddw_s16(acc[6], vget_low_s16(v3)); acc[7] = vaddw_high_s16(acc[7], v3);
        }
        for (int i = 0; i < 8; ++i) vst1q_s32(out + tile * TL1_ROWS + 4 * i, acc[i]);
    }
}

// "sgn2": the sgn loop unrolled by two pairs with a second set of accumulators, so that an in-order core
// (Cortex-A53) has independent work between a tbl and its accumulate. Same layout, same block bounds.
#define TL1_SGN_STEP(U0, U1, U2, U3, G0, G1, P)                                                         \
    do {                                                                                                \
        const uint8x16_t ix_ = vld1q_u8(wt + 16 * (P));                                                 \
        const uint8x16_t i0_ = vandq_u8(ix_, m4), i1_ = vshrq_n_u8(ix_, 4);                             \
        const uint8x16_t tl_ = vld1q_u8((const uint8_t *) lut + 32 * (P));                              \
        const int8x16_t th_ = vld1q_s8(lut + 32 * (P) + 16);                                            \
        const uint8x16_t l0_ = vqtbl1q_u8(tl_, i0_), l1_ = vqtbl1q_u8(tl_, i1_);                        \
        U0 = vaddw_u8(U0, vget_low_u8(l0_)); U1 = vaddw_high_u8(U1, l0_);                               \
        U2 = vaddw_u8(U2, vget_low_u8(l1_)); U3 = vaddw_high_u8(U3, l1_);                               \
        G0 = vaddq_s8(G0, vqtbl1q_s8(th_, i0_));                                                        \
        G1 = vaddq_s8(G1, vqtbl1q_s8(th_, i1_));                                                        \
    } while (0)

void tl1_gemv_sgn2(int64_t K, const uint8_t * w, const int8_t * lut, int64_t M, int32_t * out) {
    const int64_t P = K / 2;
    const uint8x16_t m4 = vdupq_n_u8(0x0F);
    for (int64_t tile = 0; tile < M / TL1_ROWS; ++tile) {
        const uint8_t * wt = w + tile * P * 16;
        int32x4_t acc[8];
        for (int i = 0; i < 8; ++i) acc[i] = vdupq_n_s32(0);
        for (int64_t p0 = 0; p0 < P; p0 += TL1_BLK) {
            const int64_t pe = p0 + TL1_BLK < P ? p0 + TL1_BLK : P;
            uint16x8_t u0 = vdupq_n_u16(0), u1 = u0, u2 = u0, u3 = u0, x0 = u0, x1 = u0, x2 = u0, x3 = u0;
            int8x16_t g0 = vdupq_n_s8(0), g1 = g0, h0 = g0, h1 = g0;
            int64_t p = p0;
            for (; p + 2 <= pe; p += 2) {  // steady-state inner loop: 32 rows x 2 pairs = 128 weights
                TL1_SGN_STEP(u0, u1, u2, u3, g0, g1, p);
                TL1_SGN_STEP(x0, x1, x2, x3, h0, h1, p + 1);
            }
            if (p < pe) TL1_SGN_STEP(u0, u1, u2, u3, g0, g1, p);
            // u + x <= 255*128 and g + h >= -128 still hold for the whole block
            u0 = vaddq_u16(u0, x0); u1 = vaddq_u16(u1, x1); u2 = vaddq_u16(u2, x2); u3 = vaddq_u16(u3, x3);
            g0 = vaddq_s8(g0, h0); g1 = vaddq_s8(g1, h1);
            const int16x8_t v0 = vaddq_s16(vreinterpretq_s16_u16(u0), vshll_n_s8(vget_low_s8(g0), 8));
            const int16x8_t v1 = vaddq_s16(vreinterpretq_s16_u16(u1), vshll_high_n_s8(g0, 8));
            const int16x8_t v2 = vaddq_s16(vreinterpretq_s16_u16(u2), vshll_n_s8(vget_low_s8(g1), 8));
            const int16x8_t v3 = vaddq_s16(vreinterpretq_s16_u16(u3), vshll_high_n_s8(g1, 8));
            acc[0] = vaddw_s16(acc[0], vget_low_s16(v0)); acc[1] = vaddw_high_s16(acc[1], v0);
            acc[2] = vaddw_s16(acc[2], vget_low_s16(v1)); acc[3] = vaddw_high_s16(acc[3], v1);
            acc[4] = vaddw_s16(acc[4], vget_low_s16(v2)); acc[5] = vaddw_high_s16(acc[5], v2);
            acc[6] = vaddw_s16(acc[6], vget_low_s16(v3)); acc[7] = vaddw_high_s16(acc[7], v3);
        }
        for (int i = 0; i < 8; ++i) vst1q_s32(out + tile * TL1_ROWS + 4 * i, acc[i]);
    }
}
