// x86 I2_S kernels (contract: i2s-gemm.h): AVX2 with maddubs, the same loop with 256-bit vpdpbusd
// (AVX-VNNI), AVX-512 with VNNI vpdpbusd.
//
// A 32-byte block holds elements e, e+32, e+64, e+96 in byte e at shifts 6, 4, 2, 0, so shifting and
// masking the block gives runs of 32 consecutive codes that meet 32 consecutive activations.
// Codes are used unsigned (t + 1 in 0..2) and a_sum is subtracted at the end. The invalid code 3
// must read as t = 0, i.e. as code 1: fix3 clears the high bit of every field whose low bit is set.
// K % 64 == 0 is required (dispatcher): a row then starts at element 0 or 64 of a block.
#include "bitnet-prefetch.h"
#include "i2s-kernels.h"
#include "i2s-simd.h"

#if defined(BITNET_I2S_HAVE_AVX2) || defined(BITNET_I2S_HAVE_AVX512VNNI)
#include <immintrin.h>
#include <stdalign.h>
#include <string.h>
#endif

#ifdef BITNET_I2S_HAVE_AVX2

// BITNET_I2S_GROUP_COLS (4) columns share one decode of a block: 4 codes + 2 accumulators per column fit 16 ymm
// int16 partial sums: |maddubs| <= 2*2*128 = 512 per lane, 4 per block; 15 blocks plus a head half
// (2 maddubs) reach 31744 < 32768, so flushing to int32 every 15 blocks cannot overflow
#define AVX2_FLUSH 15

BITNET_I2S_INLINE __m256i avx2_fix3(__m256i x) {
    const __m256i hi = _mm256_and_si256(_mm256_slli_epi16(x, 1), _mm256_set1_epi8((char) 0xAA));
    return _mm256_andnot_si256(hi, x);
}

// acc + sums of 4 (u8 code, s8 activation) products per int32 lane. Only the avxvnni kernel calls it with
// vpdpbusd; the maddubs form keeps the shared loop compiling in builds without VNNI (exact too: |sum| <= 1024).
BITNET_I2S_INLINE __m256i avx2_dpbusd(__m256i acc, __m256i codes, __m256i act) {
#if defined(__AVXVNNI__)
    return _mm256_dpbusd_avx_epi32(acc, codes, act);
#elif defined(BITNET_I2S_HAVE_AVXVNNI)
    return _mm256_dpbusd_epi32(acc, codes, act);
#else
    return _mm256_add_epi32(acc, _mm256_madd_epi16(_mm256_maddubs_epi16(codes, act), _mm256_set1_epi16(1)));
#endif
}

BITNET_I2S_INLINE int32_t avx2_hsum(__m256i v) {
    __m128i s = _mm_add_epi32(_mm256_castsi256_si128(v), _mm256_extracti128_si256(v, 1));
    s = _mm_add_epi32(s, _mm_shuffle_epi32(s, 0x4E));
    s = _mm_add_epi32(s, _mm_shuffle_epi32(s, 0xB1));
    return _mm_cvtsi128_si32(s);
}

// rows [r0, r1) against C columns (C and vnni are constants after inlining). vnni: products go straight into
// int32 with vpdpbusd; otherwise maddubs pairs gather in int16 (acc1) and are widened every AVX2_FLUSH blocks.
BITNET_I2S_INLINE void avx2_rows_impl(const int C, const bool vnni, int64_t K, const uint8_t * w, int64_t r0, int64_t r1,
                                      const int8_t * a, const int32_t * a_sum, int64_t lda, int32_t * out, int64_t ldo) {
    const __m256i m3 = _mm256_set1_epi8(3);
    const __m256i ones = _mm256_set1_epi16(1);
    for (int64_t r = r0; r < r1; ++r) {
        const uint8_t * p = BITNET_I2S_ROW_START(K, w, r);
        __m256i acc[BITNET_I2S_GROUP_COLS], acc1[BITNET_I2S_GROUP_COLS];
        __m256i acc2[BITNET_I2S_GROUP_COLS], acc3[BITNET_I2S_GROUP_COLS];
        BITNET_I2S_UNROLL
        for (int c = 0; c < C; ++c) {
            acc[c] = _mm256_setzero_si256();
            acc1[c] = _mm256_setzero_si256();
            acc2[c] = _mm256_setzero_si256();
            acc3[c] = _mm256_setzero_si256();
        }
        int64_t k = 0;
        if (BITNET_I2S_ROW_MID(K, r)) {  // head: elements 64..127 of the block are fields 2 and 0
            const __m256i x = avx2_fix3(_mm256_loadu_si256((const __m256i *) p));
            const __m256i c2 = _mm256_and_si256(_mm256_srli_epi16(x, 2), m3);
            const __m256i c3 = _mm256_and_si256(x, m3);
            BITNET_I2S_UNROLL
            for (int c = 0; c < C; ++c) {
                const int8_t * ac = a + c * lda;
                const __m256i a2 = _mm256_load_si256((const __m256i *) ac);
                const __m256i a3 = _mm256_load_si256((const __m256i *) (ac + 32));
                if (vnni) {
                    acc[c] = avx2_dpbusd(avx2_dpbusd(acc[c], c2, a2), c3, a3);
                } else {
                    acc1[c] = _mm256_add_epi16(_mm256_maddubs_epi16(c2, a2), _mm256_maddubs_epi16(c3, a3));
                }
            }
            p += 32;
            k = 64;
        }
        int n16 = 0;
        for (; k + 128 <= K; k += 128, p += 32) {
            // the distance of every streamed GEMV (bitnet-prefetch.h): 2048 bytes instead of 256 took the 7B shape's
            // tg32 (2 threads) from 7.7 to 10.4 t/s (avxvnni) and from 7.4 to 9.9 (avx2)
            _mm_prefetch((const char *) p + BITNET_STREAM_PREFETCH, _MM_HINT_T0);
            const __m256i x = avx2_fix3(_mm256_loadu_si256((const __m256i *) p));
            const __m256i c0 = _mm256_and_si256(_mm256_srli_epi16(x, 6), m3);
            const __m256i c1 = _mm256_and_si256(_mm256_srli_epi16(x, 4), m3);
            const __m256i c2 = _mm256_and_si256(_mm256_srli_epi16(x, 2), m3);
            const __m256i c3 = _mm256_and_si256(x, m3);
            BITNET_I2S_UNROLL
            for (int c = 0; c < C; ++c) {
                const int8_t * ac = a + c * lda + k;
                const __m256i a0 = _mm256_load_si256((const __m256i *) ac);
                const __m256i a1 = _mm256_load_si256((const __m256i *) (ac + 32));
                const __m256i a2 = _mm256_load_si256((const __m256i *) (ac + 64));
                const __m256i a3 = _mm256_load_si256((const __m256i *) (ac + 96));
                if (vnni && C <= 2) {
                    // four chains per column: few columns leave vpdpbusd latency-bound otherwise
                    acc[c] = avx2_dpbusd(acc[c], c0, a0);
                    acc1[c] = avx2_dpbusd(acc1[c], c1, a1);
                    acc2[c] = avx2_dpbusd(acc2[c], c2, a2);
                    acc3[c] = avx2_dpbusd(acc3[c], c3, a3);
                } else if (vnni) {
                    // two chains per column (four would not fit 16 registers with 4 columns)
                    acc[c] = avx2_dpbusd(avx2_dpbusd(acc[c], c0, a0), c1, a1);
                    acc1[c] = avx2_dpbusd(avx2_dpbusd(acc1[c], c2, a2), c3, a3);
                } else {
                    const __m256i p01 = _mm256_add_epi16(_mm256_maddubs_epi16(c0, a0), _mm256_maddubs_epi16(c1, a1));
                    const __m256i p23 = _mm256_add_epi16(_mm256_maddubs_epi16(c2, a2), _mm256_maddubs_epi16(c3, a3));
                    acc1[c] = _mm256_add_epi16(acc1[c], _mm256_add_epi16(p01, p23));
                }
            }
            if (!vnni && ++n16 == AVX2_FLUSH) {
                n16 = 0;
                BITNET_I2S_UNROLL
                for (int c = 0; c < C; ++c) {
                    acc[c] = _mm256_add_epi32(acc[c], _mm256_madd_epi16(acc1[c], ones));
                    acc1[c] = _mm256_setzero_si256();
                }
            }
        }
        if (k < K) {  // tail: elements 0..63 of the block are fields 6 and 4
            const __m256i x = avx2_fix3(_mm256_loadu_si256((const __m256i *) p));
            const __m256i c0 = _mm256_and_si256(_mm256_srli_epi16(x, 6), m3);
            const __m256i c1 = _mm256_and_si256(_mm256_srli_epi16(x, 4), m3);
            BITNET_I2S_UNROLL
            for (int c = 0; c < C; ++c) {
                const int8_t * ac = a + c * lda + k;
                const __m256i a0 = _mm256_load_si256((const __m256i *) ac);
                const __m256i a1 = _mm256_load_si256((const __m256i *) (ac + 32));
                if (vnni) {
                    acc[c] = avx2_dpbusd(avx2_dpbusd(acc[c], c0, a0), c1, a1);
                } else {
                    acc[c] = _mm256_add_epi32(acc[c], _mm256_madd_epi16(_mm256_add_epi16(
                        _mm256_maddubs_epi16(c0, a0), _mm256_maddubs_epi16(c1, a1)), ones));
                }
            }
        }
        BITNET_I2S_UNROLL
        for (int c = 0; c < C; ++c) {
            // vnni: acc1..acc3 are more int32 chains; maddubs form: acc1 holds the int16 sums since the last flush
            acc[c] = _mm256_add_epi32(acc[c], vnni ? _mm256_add_epi32(acc1[c], _mm256_add_epi32(acc2[c], acc3[c]))
                                                   : _mm256_madd_epi16(acc1[c], ones));
            out[c * ldo + (r - r0)] = avx2_hsum(acc[c]) - a_sum[c];
        }
    }
}

// the `vnni` of the enclosing avx2_gemm, so both kernels share the column grouping below
#define AVX2_ROWS(C, K, w, r0, r1, a, a_sum, lda, out, ldo) avx2_rows_impl(C, vnni, K, w, r0, r1, a, a_sum, lda, out, ldo)

BITNET_I2S_INLINE void avx2_gemm(const bool vnni, int64_t K, const uint8_t * w, int64_t r0, int64_t r1,
                                 const int8_t * a, const int32_t * a_sum, int64_t lda, int64_t ncols,
                                 int32_t * out, int64_t ldo) {
    // weights are decoded once per group of columns; the row tile is small enough (caller: 64 rows)
    // to stay in L1/L2 between groups
    BITNET_I2S_FOR_COLUMN_GROUPS(AVX2_ROWS, K, w, r0, r1, a, a_sum, lda, ncols, out, ldo)
}

void bitnet_i2s_gemm_avx2(int64_t K, const uint8_t * w, int64_t r0, int64_t r1,
                          const int8_t * a, const int32_t * a_sum, int64_t lda, int64_t ncols,
                          int32_t * out, int64_t ldo) {
    avx2_gemm(false, K, w, r0, r1, a, a_sum, lda, ncols, out, ldo);
}

#ifdef BITNET_I2S_HAVE_AVXVNNI
void bitnet_i2s_gemm_avxvnni(int64_t K, const uint8_t * w, int64_t r0, int64_t r1,
                             const int8_t * a, const int32_t * a_sum, int64_t lda, int64_t ncols,
                             int32_t * out, int64_t ldo) {
    avx2_gemm(true, K, w, r0, r1, a, a_sum, lda, ncols, out, ldo);
}
#endif

#endif // BITNET_I2S_HAVE_AVX2

#ifdef BITNET_I2S_HAVE_AVX512VNNI

// ---- shared AVX-512 helpers --------------------------------------------------------------------

// a block in both 256-bit halves: a broadcast load costs no shuffle
BITNET_I2S_INLINE __m512i v512_block(const uint8_t * p) {
    return _mm512_broadcast_i64x4(_mm256_loadu_si256((const __m256i *) p));
}

BITNET_I2S_INLINE __m512i v512_fix3(__m512i z) {
    // z & ~((z << 1) & 0xAA) in one ternary-logic op (imm 0x70 = A & ~(B & C))
    return _mm512_ternarylogic_epi32(z, _mm512_slli_epi16(z, 1), _mm512_set1_epi8((char) 0xAA), 0x70);
}

// ---- few columns: lanes run along k, one horizontal sum per (row, column) ----------------------
//
// With the block in both halves, masking the low half with 0xC0 and the high half with 0x30 gives
// elements 0..63 of the block as codes times 64 / 16, and 0x0C / 0x03 gives elements 64..127 times
// 4 / 1. vpdpbusd does not saturate, so these scaled codes are exact in int32 (a lane sums K/32
// products of at most 64*2*128: |lane| <= 512*K < 2^31 for K < 2^22) and one arithmetic shift per
// lane at the end of the row undoes the scale.

// Bytes of weights to prefetch ahead in the one-block loop (-D to measure other distances): by default the
// distance of every streamed GEMV (bitnet-prefetch.h). 2048 gave tg32 +19 % (2B-4T) and +24 % (7B) over 256 in
// llama-bench on an Intel Xeon (Emerald Rapids, 2 vCPUs; docs/bench/prefetch-distance.md); 1024 and 4096 were slower.
#ifndef BITNET_I2S_V512_PREFETCH
#    define BITNET_I2S_V512_PREFETCH BITNET_STREAM_PREFETCH
#endif

#define V512_LO_MASK _mm512_inserti64x4(_mm512_set1_epi8((char) 0xC0), _mm256_set1_epi8(0x30), 1)
#define V512_HI_MASK _mm512_inserti64x4(_mm512_set1_epi8(0x0C), _mm256_set1_epi8(0x03), 1)

// the row's dot product from its scaled partial sums (even/odd blocks): each lane is an exact multiple of its
// scale, so the arithmetic shifts are exact
BITNET_I2S_INLINE int32_t v512_row_sum(__m512i lo0, __m512i lo1, __m512i hi0, __m512i hi1) {
    const __m512i lo_shift = _mm512_inserti64x4(_mm512_set1_epi32(6), _mm256_set1_epi32(4), 1);
    const __m512i hi_shift = _mm512_inserti64x4(_mm512_set1_epi32(2), _mm256_setzero_si256(), 1);
    return _mm512_reduce_add_epi32(_mm512_add_epi32(_mm512_srav_epi32(_mm512_add_epi32(lo0, lo1), lo_shift),
                                                    _mm512_srav_epi32(_mm512_add_epi32(hi0, hi1), hi_shift)));
}

BITNET_I2S_INLINE void v512_rows_few(const int C, int64_t K, const uint8_t * w, int64_t r0, int64_t r1,
                                     const int8_t * a, const int32_t * a_sum, int64_t lda, int32_t * out, int64_t ldo) {
    const __m512i lo_mask = V512_LO_MASK, hi_mask = V512_HI_MASK;
    for (int64_t r = r0; r < r1; ++r) {
        const uint8_t * p = BITNET_I2S_ROW_START(K, w, r);
        // per column (4 x 4 accumulators for a full group): [0] even blocks, [1] odd blocks of the
        // two-block loop (independent chains)
        __m512i lo[BITNET_I2S_GROUP_COLS][2], hi[BITNET_I2S_GROUP_COLS][2];
        BITNET_I2S_UNROLL
        for (int c = 0; c < C; ++c) {
            lo[c][0] = lo[c][1] = hi[c][0] = hi[c][1] = _mm512_setzero_si512();
        }
        int64_t k = 0;
        if (BITNET_I2S_ROW_MID(K, r)) {
            const __m512i v = _mm512_and_si512(v512_fix3(v512_block(p)), hi_mask);
            BITNET_I2S_UNROLL
            for (int c = 0; c < C; ++c) {
                hi[c][0] = _mm512_dpbusd_epi32(hi[c][0], v, _mm512_load_si512(a + c * lda));
            }
            p += 32;
            k = 64;
        }
        // two blocks per iteration: four independent dpbusd chains per column (with two, a single column
        // waits on vpdpbusd's latency), and one cache line of weights, prefetched ahead
        for (; k + 256 <= K; k += 256, p += 64) {
            _mm_prefetch((const char *) p + BITNET_I2S_V512_PREFETCH, _MM_HINT_T0);
            const __m512i u0 = v512_fix3(v512_block(p));
            const __m512i u1 = v512_fix3(v512_block(p + 32));
            const __m512i l0 = _mm512_and_si512(u0, lo_mask), h0 = _mm512_and_si512(u0, hi_mask);
            const __m512i l1 = _mm512_and_si512(u1, lo_mask), h1 = _mm512_and_si512(u1, hi_mask);
            BITNET_I2S_UNROLL
            for (int c = 0; c < C; ++c) {
                const int8_t * ac = a + c * lda + k;
                lo[c][0] = _mm512_dpbusd_epi32(lo[c][0], l0, _mm512_load_si512(ac));
                hi[c][0] = _mm512_dpbusd_epi32(hi[c][0], h0, _mm512_load_si512(ac + 64));
                lo[c][1] = _mm512_dpbusd_epi32(lo[c][1], l1, _mm512_load_si512(ac + 128));
                hi[c][1] = _mm512_dpbusd_epi32(hi[c][1], h1, _mm512_load_si512(ac + 192));
            }
        }
        for (; k + 128 <= K; k += 128, p += 32) {
            // measured under DRAM streaming (1 column): +25-40% over the hardware prefetchers alone;
            // a prefetch past the tensor's end is harmless
            _mm_prefetch((const char *) p + BITNET_I2S_V512_PREFETCH, _MM_HINT_T0);
            const __m512i u = v512_fix3(v512_block(p));
            const __m512i l = _mm512_and_si512(u, lo_mask), h = _mm512_and_si512(u, hi_mask);
            BITNET_I2S_UNROLL
            for (int c = 0; c < C; ++c) {
                const int8_t * ac = a + c * lda + k;
                lo[c][0] = _mm512_dpbusd_epi32(lo[c][0], l, _mm512_load_si512(ac));
                hi[c][0] = _mm512_dpbusd_epi32(hi[c][0], h, _mm512_load_si512(ac + 64));
            }
        }
        if (k < K) {
            const __m512i l = _mm512_and_si512(v512_fix3(v512_block(p)), lo_mask);
            BITNET_I2S_UNROLL
            for (int c = 0; c < C; ++c) {
                lo[c][1] = _mm512_dpbusd_epi32(lo[c][1], l, _mm512_load_si512(a + c * lda + k));
            }
        }
        BITNET_I2S_UNROLL
        for (int c = 0; c < C; ++c) {
            out[c * ldo + (r - r0)] = v512_row_sum(lo[c][0], lo[c][1], hi[c][0], hi[c][1]) - a_sum[c];
        }
    }
}

// One column (token generation) reads every weight byte once, from memory. A core keeps more lines in flight
// on two streams far apart than on one: rows i and i + n/2 of the caller's tile go through the loop together
// (2 threads, cold: 23.5 -> 26.8 GB/s against 28 GB/s of a plain read loop; docs/bench/tg-ceiling.md).
// Rows must start on a block (K % 128 == 0); an odd last row goes alone.
static void v512_one_column_two_streams(int64_t K, const uint8_t * w, int64_t r0, int64_t r1, const int8_t * a,
                                        const int32_t * a_sum, int32_t * out, int64_t ldo) {
    const __m512i lo_mask = V512_LO_MASK, hi_mask = V512_HI_MASK;
    const int64_t half = (r1 - r0) / 2;
    for (int64_t i = 0; i < half; ++i) {
        const uint8_t * p[2] = { BITNET_I2S_ROW_START(K, w, r0 + i), BITNET_I2S_ROW_START(K, w, r0 + half + i) };
        __m512i lo[2][2], hi[2][2];  // [stream][even/odd block]
        BITNET_I2S_UNROLL
        for (int s = 0; s < 2; ++s) {
            lo[s][0] = lo[s][1] = hi[s][0] = hi[s][1] = _mm512_setzero_si512();
        }
        int64_t k = 0;
        for (; k + 256 <= K; k += 256) {
            const __m512i a0 = _mm512_load_si512(a + k), a1 = _mm512_load_si512(a + k + 64);
            const __m512i a2 = _mm512_load_si512(a + k + 128), a3 = _mm512_load_si512(a + k + 192);
            BITNET_I2S_UNROLL
            for (int s = 0; s < 2; ++s) {
                _mm_prefetch((const char *) p[s] + BITNET_I2S_V512_PREFETCH, _MM_HINT_T0);
                const __m512i u0 = v512_fix3(v512_block(p[s])), u1 = v512_fix3(v512_block(p[s] + 32));
                lo[s][0] = _mm512_dpbusd_epi32(lo[s][0], _mm512_and_si512(u0, lo_mask), a0);
                hi[s][0] = _mm512_dpbusd_epi32(hi[s][0], _mm512_and_si512(u0, hi_mask), a1);
                lo[s][1] = _mm512_dpbusd_epi32(lo[s][1], _mm512_and_si512(u1, lo_mask), a2);
                hi[s][1] = _mm512_dpbusd_epi32(hi[s][1], _mm512_and_si512(u1, hi_mask), a3);
                p[s] += 64;
            }
        }
        if (k < K) {  // K % 256 == 128: one block left
            const __m512i a0 = _mm512_load_si512(a + k), a1 = _mm512_load_si512(a + k + 64);
            BITNET_I2S_UNROLL
            for (int s = 0; s < 2; ++s) {
                const __m512i u = v512_fix3(v512_block(p[s]));
                lo[s][0] = _mm512_dpbusd_epi32(lo[s][0], _mm512_and_si512(u, lo_mask), a0);
                hi[s][0] = _mm512_dpbusd_epi32(hi[s][0], _mm512_and_si512(u, hi_mask), a1);
            }
        }
        BITNET_I2S_UNROLL
        for (int s = 0; s < 2; ++s) {
            out[s * half + i] = v512_row_sum(lo[s][0], lo[s][1], hi[s][0], hi[s][1]) - a_sum[0];
        }
    }
    if ((r1 - r0) % 2 != 0) {
        v512_rows_few(1, K, w, r1 - 1, r1, a, a_sum, 0, out + 2 * half, ldo);
    }
}

// ---- many columns: lanes run along 16 columns, activations packed once per mat-mul --------------
//
// bitnet_i2s_pack_avx512vnni transposes the activations of 16 columns into [k/4][16 columns] dwords.
// Weights of V512_ROWS rows are decoded, one k-chunk at a time, to plain u8 codes in L1, and every
// dpbusd multiplies a broadcast dword of 4 codes of one row with the 4 matching activations of 16
// columns. One decode serves up to V512_GROUPS groups of 16 columns, each activation load serves
// V512_ROWS rows, and the accumulators are final (row, column) sums: no horizontal reductions.

#define V512_KC     256  // k per chunk: 2 x 4 KiB of codes (current, next), 4 KiB of activations per group
#define V512_ROWS   16   // rows per register block (16 accumulators)
#define V512_GROUPS 8    // column groups per decode: their accumulators (8 KiB) stay in L1

// 16x16 transpose of dwords: in[c] = 16 dwords of column c -> out[j] = dword j of every column
BITNET_I2S_INLINE void v512_transpose16(__m512i r[16]) {
    __m512i t[16], u[16];
    BITNET_I2S_UNROLL
    for (int i = 0; i < 16; i += 2) {
        t[i]     = _mm512_unpacklo_epi32(r[i], r[i + 1]);
        t[i + 1] = _mm512_unpackhi_epi32(r[i], r[i + 1]);
    }
    // per 128-bit lane L, u[4g + j] holds dword 4L + j of columns 4g..4g+3
    BITNET_I2S_UNROLL
    for (int g = 0; g < 4; ++g) {
        u[4 * g + 0] = _mm512_unpacklo_epi64(t[4 * g + 0], t[4 * g + 2]);
        u[4 * g + 1] = _mm512_unpackhi_epi64(t[4 * g + 0], t[4 * g + 2]);
        u[4 * g + 2] = _mm512_unpacklo_epi64(t[4 * g + 1], t[4 * g + 3]);
        u[4 * g + 3] = _mm512_unpackhi_epi64(t[4 * g + 1], t[4 * g + 3]);
    }
    // 4x4 transpose of 128-bit lanes across the column groups
    BITNET_I2S_UNROLL
    for (int j = 0; j < 4; ++j) {
        const __m512i v0 = _mm512_shuffle_i32x4(u[j], u[4 + j], 0x44);
        const __m512i v1 = _mm512_shuffle_i32x4(u[j], u[4 + j], 0xEE);
        const __m512i v2 = _mm512_shuffle_i32x4(u[8 + j], u[12 + j], 0x44);
        const __m512i v3 = _mm512_shuffle_i32x4(u[8 + j], u[12 + j], 0xEE);
        r[j]      = _mm512_shuffle_i32x4(v0, v2, 0x88);
        r[4 + j]  = _mm512_shuffle_i32x4(v0, v2, 0xDD);
        r[8 + j]  = _mm512_shuffle_i32x4(v1, v3, 0x88);
        r[12 + j] = _mm512_shuffle_i32x4(v1, v3, 0xDD);
    }
}

void bitnet_i2s_pack_avx512vnni(int64_t K, const int8_t * a, int64_t lda, int64_t ncols, void * dst) {
    int32_t * d = (int32_t *) dst;
    for (int64_t k = 0; k < K; k += 64) {
        __m512i r[16];
        BITNET_I2S_UNROLL
        for (int c = 0; c < 16; ++c) {
            r[c] = c < ncols ? _mm512_loadu_si512(a + c * lda + k) : _mm512_setzero_si512();
        }
        v512_transpose16(r);
        BITNET_I2S_UNROLL
        for (int j = 0; j < 16; ++j) {
            _mm512_store_si512(d + (k / 4 + j) * 16, r[j]);
        }
    }
}

// codes of global elements [g, g + n) (g, n multiples of 64) -> dst, one byte per code
BITNET_I2S_INLINE void v512_decode(const uint8_t * w, int64_t g, int64_t n, uint8_t * dst) {
    const __m512i m3 = _mm512_set1_epi8(3);
    const __m512i lo_shift = _mm512_inserti64x4(_mm512_set1_epi16(6), _mm256_set1_epi16(4), 1);
    const __m512i hi_shift = _mm512_inserti64x4(_mm512_set1_epi16(2), _mm256_setzero_si256(), 1);
    const uint8_t * p = BITNET_I2S_BLOCK_OF(w, g);
    int64_t i = 0;
    if (g % BITNET_I2S_QK != 0) {
        const __m512i u = v512_fix3(v512_block(p));
        _mm512_store_si512(dst, _mm512_and_si512(_mm512_srlv_epi16(u, hi_shift), m3));
        p += 32;
        i = 64;
    }
    for (; i + 128 <= n; i += 128, p += 32) {
        const __m512i u = v512_fix3(v512_block(p));
        _mm512_store_si512(dst + i,      _mm512_and_si512(_mm512_srlv_epi16(u, lo_shift), m3));
        _mm512_store_si512(dst + i + 64, _mm512_and_si512(_mm512_srlv_epi16(u, hi_shift), m3));
    }
    if (i < n) {
        const __m512i u = v512_fix3(v512_block(p));
        _mm512_store_si512(dst + i, _mm512_and_si512(_mm512_srlv_epi16(u, lo_shift), m3));
    }
}

// one step of work: up to V512_ROWS rows (from row) times the k-chunk [k0, k0 + kc)
struct v512_step {
    int64_t row, nrows, k0, kc;
};

// step j of rows [r0, r1): row block j / nchunks, chunk j % nchunks
static struct v512_step v512_step_of(int64_t K, int64_t r0, int64_t r1, int64_t nchunks, int64_t j) {
    const int64_t row = r0 + (j / nchunks) * V512_ROWS;
    const int64_t k0 = (j % nchunks) * V512_KC;
    return (struct v512_step) { row, r1 - row < V512_ROWS ? r1 - row : V512_ROWS, k0, K - k0 < V512_KC ? K - k0 : V512_KC };
}

// codes of row i of a step -> buf + i * V512_KC (zeros for the padding rows of a ragged block)
BITNET_I2S_INLINE void v512_decode_row(int64_t K, const uint8_t * w, const struct v512_step * s, int i, uint8_t * buf) {
    uint8_t * dst = buf + i * V512_KC;
    if (i >= s->nrows) {  // only in a ragged last row block
        memset(dst, 0, (size_t) s->kc);
        return;
    }
    const int64_t g = (s->row + i) * K + s->k0;
    v512_decode(w, g, s->kc, dst);
    if (s->k0 + V512_KC < K) {
        // the row's next chunk is read one step later: short strided streams that the hardware
        // prefetchers do not pick up
        const char * nx = (const char *) w + (g + V512_KC) / 4;
        for (int64_t off = 0; off < V512_KC / 4 + 63; off += 64) {
            _mm_prefetch(nx + off, _MM_HINT_T0);
        }
    }
}

// acc[i] (16 columns of row i) += codes[i][0..kc) . act chunk, while decoding the codes of the
// next step into next_codes: one row every kc/64 q-steps. vpdpbusd keeps the multiply pipes busy
// and the decode runs on the others, so it costs almost nothing.
static void v512_micro(const int32_t * act, const uint8_t * codes, int64_t kc, int32_t * acc_mem, bool first,
                       int64_t K, const uint8_t * w, const struct v512_step * next, uint8_t * next_codes) {
    __m512i acc[V512_ROWS];
    BITNET_I2S_UNROLL
    for (int i = 0; i < V512_ROWS; ++i) {
        acc[i] = first ? _mm512_setzero_si512() : _mm512_load_si512(acc_mem + i * 16);
    }
    const int32_t * wq = (const int32_t *) codes;
    const int64_t per_row = kc / 64;  // kc / 4 q-steps = V512_ROWS * per_row
    for (int d = 0; d < V512_ROWS; ++d) {
        for (int64_t q = d * per_row; q < (d + 1) * per_row; ++q) {
            const __m512i av = _mm512_load_si512(act + q * 16);
            BITNET_I2S_UNROLL
            for (int i = 0; i < V512_ROWS; ++i) {
                acc[i] = _mm512_dpbusd_epi32(acc[i], _mm512_set1_epi32(wq[i * (V512_KC / 4) + q]), av);
            }
        }
        if (next != NULL) {
            v512_decode_row(K, w, next, d, next_codes);
        }
    }
    BITNET_I2S_UNROLL
    for (int i = 0; i < V512_ROWS; ++i) {
        _mm512_store_si512(acc_mem + i * 16, acc[i]);
    }
}

// rows [r0, r1) against ng <= V512_GROUPS packed groups holding ncols columns
static void v512_rows_packed(int64_t K, const uint8_t * w, int64_t r0, int64_t r1, const int32_t * groups, int64_t ng,
                             const int32_t * a_sum, int64_t ncols, int32_t * out, int64_t ldo) {
    alignas(64) uint8_t codes[2][V512_ROWS * V512_KC];  // current step, next step
    alignas(64) int32_t acc[V512_GROUPS * V512_ROWS * 16];
    const int64_t group_len = K * 4;  // int32 per group: K/4 q-steps x 16 columns
    const int64_t nchunks = (K + V512_KC - 1) / V512_KC;
    const int64_t nsteps = (r1 - r0 + V512_ROWS - 1) / V512_ROWS * nchunks;
    struct v512_step cur = v512_step_of(K, r0, r1, nchunks, 0), nxt = cur;
    for (int i = 0; i < V512_ROWS; ++i) {
        v512_decode_row(K, w, &cur, i, codes[0]);
    }
    for (int64_t j = 0; j < nsteps; ++j) {
        const bool more = j + 1 < nsteps;
        if (more) {
            nxt = v512_step_of(K, r0, r1, nchunks, j + 1);
        }
        // the decode of the next step rides along with the last group
        for (int64_t g = 0; g < ng; ++g) {
            v512_micro(groups + g * group_len + cur.k0 * 4, codes[j & 1], cur.kc, acc + g * V512_ROWS * 16, cur.k0 == 0,
                       K, w, more && g == ng - 1 ? &nxt : NULL, codes[(j + 1) & 1]);
        }
        if (cur.k0 + cur.kc == K) {  // the row block is complete
            for (int64_t c = 0; c < ncols; ++c) {
                const int32_t * ac = acc + (c / 16) * V512_ROWS * 16 + c % 16;
                int32_t * o = out + c * ldo + (cur.row - r0);
                for (int64_t i = 0; i < cur.nrows; ++i) {
                    o[i] = ac[i * 16] - a_sum[c];
                }
            }
        }
        cur = nxt;
    }
}

void bitnet_i2s_gemm_packed_avx512vnni(int64_t K, const uint8_t * w, int64_t r0, int64_t r1,
                                       const void * packed, const int32_t * a_sum, int64_t ncols,
                                       int32_t * out, int64_t ldo) {
    const int32_t * groups = (const int32_t *) packed;
    for (int64_t c0 = 0; c0 < ncols; c0 += V512_GROUPS * 16) {
        const int64_t nc = ncols - c0 < V512_GROUPS * 16 ? ncols - c0 : V512_GROUPS * 16;
        v512_rows_packed(K, w, r0, r1, groups + (c0 / 16) * K * 4, (nc + 15) / 16, a_sum + c0, nc, out + c0 * ldo, ldo);
    }
}

void bitnet_i2s_gemm_avx512vnni(int64_t K, const uint8_t * w, int64_t r0, int64_t r1,
                                const int8_t * a, const int32_t * a_sum, int64_t lda, int64_t ncols,
                                int32_t * out, int64_t ldo) {
    if (ncols == 1 && K % BITNET_I2S_QK == 0) {
        v512_one_column_two_streams(K, w, r0, r1, a, a_sum, out, ldo);
        return;
    }
    // many columns take the packed form (the ggml glue packs once per mat-mul)
    BITNET_I2S_FOR_COLUMN_GROUPS(v512_rows_few, K, w, r0, r1, a, a_sum, lda, ncols, out, ldo)
}

#endif // BITNET_I2S_HAVE_AVX512VNNI
