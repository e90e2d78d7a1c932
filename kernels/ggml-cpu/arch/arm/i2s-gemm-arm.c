// AArch64 I2_S kernels (contract: i2s-gemm.h): plain NEON (widening int8 multiplies) and dotprod
// (sdot). This is the x86 layout on ARM too: docs/formats.md §2, no 64-element ARM variant.
//
// 16 bytes of a 32-byte block (half h) hold elements 16h + i + 32j (i < 16) at shift 6 - 2j, so
// each shift/mask gives 16 consecutive codes meeting 16 consecutive activations. Codes are used as
// t + 1 (0..2) and a_sum is subtracted at the end; invalid code 3 must read as t = 0 (code 1), so
// fix3 clears the high bit of every field whose low bit is set.
// K % 64 == 0 is required (dispatcher): a row then starts at element 0 or 64 of a block.
#include "i2s-kernels.h"
#include "i2s-simd.h"

#ifdef BITNET_I2S_HAVE_NEON
#include <arm_neon.h>

BITNET_I2S_INLINE uint8x16_t arm_fix3(uint8x16_t x) {
    return vbicq_u8(x, vandq_u8(vshlq_n_u8(x, 1), vdupq_n_u8(0xAA)));
}

// ---- plain NEON: vmull/vmlal into int16, widened with vpadal -----------------------------------

// |code * a| <= 2 * 128 = 256, so an int16 lane holds 127 products. Each of the two int16
// accumulators of a column takes 8 products per lane per block (4 per head half): flushing every
// 15 blocks keeps it at <= 124.
#define NEON_FLUSH 15

BITNET_I2S_INLINE int16x8_t neon_mla(int16x8_t acc, uint8x16_t code, const int8_t * a) {
    const int8x16_t c = vreinterpretq_s8_u8(code);
    const int8x16_t x = vld1q_s8(a);
    acc = vmlal_s8(acc, vget_low_s8(c), vget_low_s8(x));
    return vmlal_high_s8(acc, c, x);
}

BITNET_I2S_INLINE void neon_rows(const int C, int64_t K, const uint8_t * w, int64_t r0, int64_t r1,
                                 const int8_t * a, const int32_t * a_sum, int64_t lda, int32_t * out, int64_t ldo) {
    const uint8x16_t m3 = vdupq_n_u8(3);
    for (int64_t r = r0; r < r1; ++r) {
        const uint8_t * p = BITNET_I2S_ROW_START(K, w, r);
        int32x4_t acc[BITNET_I2S_GROUP_COLS];
        int16x8_t s0[BITNET_I2S_GROUP_COLS], s1[BITNET_I2S_GROUP_COLS];
        BITNET_I2S_UNROLL
        for (int c = 0; c < C; ++c) {
            acc[c] = vdupq_n_s32(0);
            s0[c] = s1[c] = vdupq_n_s16(0);
        }
        int64_t k = 0;
        if (BITNET_I2S_ROW_MID(K, r)) {  // head: elements 64..127 of the block are fields 2 and 0
            BITNET_I2S_UNROLL
            for (int h = 0; h < 2; ++h) {
                const uint8x16_t u = arm_fix3(vld1q_u8(p + 16 * h));
                const uint8x16_t c2 = vandq_u8(vshrq_n_u8(u, 2), m3), c3 = vandq_u8(u, m3);
                BITNET_I2S_UNROLL
                for (int c = 0; c < C; ++c) {
                    s0[c] = neon_mla(s0[c], c2, a + c * lda + 16 * h);
                    s1[c] = neon_mla(s1[c], c3, a + c * lda + 32 + 16 * h);
                }
            }
            p += 32;
            k = 64;
        }
        int n16 = 0;
        for (; k + 128 <= K; k += 128, p += 32) {
            BITNET_I2S_UNROLL
            for (int h = 0; h < 2; ++h) {
                const uint8x16_t u = arm_fix3(vld1q_u8(p + 16 * h));
                const uint8x16_t c0 = vshrq_n_u8(u, 6), c1 = vandq_u8(vshrq_n_u8(u, 4), m3);
                const uint8x16_t c2 = vandq_u8(vshrq_n_u8(u, 2), m3), c3 = vandq_u8(u, m3);
                BITNET_I2S_UNROLL
                for (int c = 0; c < C; ++c) {
                    const int8_t * ac = a + c * lda + k + 16 * h;
                    s0[c] = neon_mla(s0[c], c0, ac);
                    s1[c] = neon_mla(s1[c], c1, ac + 32);
                    s0[c] = neon_mla(s0[c], c2, ac + 64);
                    s1[c] = neon_mla(s1[c], c3, ac + 96);
                }
            }
            if (++n16 == NEON_FLUSH) {
                n16 = 0;
                BITNET_I2S_UNROLL
                for (int c = 0; c < C; ++c) {
                    acc[c] = vpadalq_s16(vpadalq_s16(acc[c], s0[c]), s1[c]);
                    s0[c] = s1[c] = vdupq_n_s16(0);
                }
            }
        }
        if (k < K) {  // tail: elements 0..63 of the block are fields 6 and 4
            BITNET_I2S_UNROLL
            for (int h = 0; h < 2; ++h) {
                const uint8x16_t u = arm_fix3(vld1q_u8(p + 16 * h));
                const uint8x16_t c0 = vshrq_n_u8(u, 6), c1 = vandq_u8(vshrq_n_u8(u, 4), m3);
                BITNET_I2S_UNROLL
                for (int c = 0; c < C; ++c) {
                    const int8_t * ac = a + c * lda + k + 16 * h;
                    // at most 4 more products per lane after the last flush check: still <= 127
                    s0[c] = neon_mla(s0[c], c0, ac);
                    s1[c] = neon_mla(s1[c], c1, ac + 32);
                }
            }
        }
        BITNET_I2S_UNROLL
        for (int c = 0; c < C; ++c) {
            acc[c] = vpadalq_s16(vpadalq_s16(acc[c], s0[c]), s1[c]);
            out[c * ldo + (r - r0)] = vaddvq_s32(acc[c]) - a_sum[c];
        }
    }
}

void bitnet_i2s_gemm_neon(int64_t K, const uint8_t * w, int64_t r0, int64_t r1,
                          const int8_t * a, const int32_t * a_sum, int64_t lda, int64_t ncols,
                          int32_t * out, int64_t ldo) {
    BITNET_I2S_FOR_COLUMN_GROUPS(neon_rows, K, w, r0, r1, a, a_sum, lda, ncols, out, ldo)
}

// ---- dotprod: sdot on unshifted fields ----------------------------------------------------------
//
// Masking without shifting gives codes times 16 (0x30) or 4 (0x0C); sdot sums into int32 without
// saturation, so each field keeps its own accumulator and one exact arithmetic shift at the end of
// the row removes the scale. The top field needs only a shift (>> 6), the bottom only a mask.

#ifdef BITNET_I2S_HAVE_DOTPROD

BITNET_I2S_INLINE int32x4_t dot_acc(int32x4_t acc, uint8x16_t code, const int8_t * a) {
    return vdotq_s32(acc, vreinterpretq_s8_u8(code), vld1q_s8(a));
}

BITNET_I2S_INLINE void dot_rows(const int C, int64_t K, const uint8_t * w, int64_t r0, int64_t r1,
                                const int8_t * a, const int32_t * a_sum, int64_t lda, int32_t * out, int64_t ldo) {
    const uint8x16_t m30 = vdupq_n_u8(0x30), m0c = vdupq_n_u8(0x0C), m3 = vdupq_n_u8(3);
    for (int64_t r = r0; r < r1; ++r) {
        const uint8_t * p = BITNET_I2S_ROW_START(K, w, r);
        // per column: fields 6 and 0 (scale 1, two chains), field 4 (x16), field 2 (x4)
        int32x4_t f6[BITNET_I2S_GROUP_COLS], f0[BITNET_I2S_GROUP_COLS];
        int32x4_t f4[BITNET_I2S_GROUP_COLS], f2[BITNET_I2S_GROUP_COLS];
        BITNET_I2S_UNROLL
        for (int c = 0; c < C; ++c) {
            f6[c] = f0[c] = f4[c] = f2[c] = vdupq_n_s32(0);
        }
        int64_t k = 0;
        if (BITNET_I2S_ROW_MID(K, r)) {
            BITNET_I2S_UNROLL
            for (int h = 0; h < 2; ++h) {
                const uint8x16_t u = arm_fix3(vld1q_u8(p + 16 * h));
                const uint8x16_t c2 = vandq_u8(u, m0c), c3 = vandq_u8(u, m3);
                BITNET_I2S_UNROLL
                for (int c = 0; c < C; ++c) {
                    f2[c] = dot_acc(f2[c], c2, a + c * lda + 16 * h);
                    f0[c] = dot_acc(f0[c], c3, a + c * lda + 32 + 16 * h);
                }
            }
            p += 32;
            k = 64;
        }
        for (; k + 128 <= K; k += 128, p += 32) {
            BITNET_I2S_UNROLL
            for (int h = 0; h < 2; ++h) {
                const uint8x16_t u = arm_fix3(vld1q_u8(p + 16 * h));
                const uint8x16_t c0 = vshrq_n_u8(u, 6), c1 = vandq_u8(u, m30);
                const uint8x16_t c2 = vandq_u8(u, m0c), c3 = vandq_u8(u, m3);
                BITNET_I2S_UNROLL
                for (int c = 0; c < C; ++c) {
                    const int8_t * ac = a + c * lda + k + 16 * h;
                    f6[c] = dot_acc(f6[c], c0, ac);
                    f4[c] = dot_acc(f4[c], c1, ac + 32);
                    f2[c] = dot_acc(f2[c], c2, ac + 64);
                    f0[c] = dot_acc(f0[c], c3, ac + 96);
                }
            }
        }
        if (k < K) {
            BITNET_I2S_UNROLL
            for (int h = 0; h < 2; ++h) {
                const uint8x16_t u = arm_fix3(vld1q_u8(p + 16 * h));
                const uint8x16_t c0 = vshrq_n_u8(u, 6), c1 = vandq_u8(u, m30);
                BITNET_I2S_UNROLL
                for (int c = 0; c < C; ++c) {
                    const int8_t * ac = a + c * lda + k + 16 * h;
                    f6[c] = dot_acc(f6[c], c0, ac);
                    f4[c] = dot_acc(f4[c], c1, ac + 32);
                }
            }
        }
        BITNET_I2S_UNROLL
        for (int c = 0; c < C; ++c) {
            const int32x4_t s = vaddq_s32(vaddq_s32(f6[c], f0[c]), vaddq_s32(vshrq_n_s32(f4[c], 4), vshrq_n_s32(f2[c], 2)));
            out[c * ldo + (r - r0)] = vaddvq_s32(s) - a_sum[c];
        }
    }
}

void bitnet_i2s_gemm_dotprod(int64_t K, const uint8_t * w, int64_t r0, int64_t r1,
                             const int8_t * a, const int32_t * a_sum, int64_t lda, int64_t ncols,
                             int32_t * out, int64_t ldo) {
    BITNET_I2S_FOR_COLUMN_GROUPS(dot_rows, K, w, r0, r1, a, a_sum, lda, ncols, out, ldo)
}

#endif // BITNET_I2S_HAVE_DOTPROD
#endif // BITNET_I2S_HAVE_NEON
