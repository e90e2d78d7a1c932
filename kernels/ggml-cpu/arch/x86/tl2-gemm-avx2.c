// x86 TL2 kernels for AVX2 (contract: tl2-gemm.h), and the same gemm with 256-bit vpdpbusd (AVX-VNNI, or
// AVX512-VNNI + VL). They read the one TL2 layout (docs/formats.md §5) a 64-row tile at a time, as two 32-row
// halves: bytes 0-31 and 32-63 of each 64-byte index vector. The sign word of a group is in the order of the
// AVX-512 unpacks, so for AVX2 each half's 32 sign bits are spread over four of its eight bytes
// (bitnet_tl2_sign_bit): rows 32h + r take byte SIGN_BYTE[h][r]; the bit within the byte is always r % 8.
// There are no mask registers: a broadcast of the word, vpshufb and a compare turn the bits into byte masks,
// 0xFF for negative groups, in natural row order.
//
// One token (gemv): per group, vpshufb looks the 32 index bytes of a half up in the group's low-byte and
// high-byte planes. XOR with the mask complements both bytes of a negative row's entry (~e = -e - 1) before
// unpack{lo,hi}_epi8 joins them into int16 lanes; a per-row byte count of negative groups adds the 1s back at
// the end of each int16 block. |~e| <= 3 * 128 + 1, so a block of BITNET_TL2_BLOCK_GROUPS cannot wrap.
//
// Several tokens (gemm): a batch of chunks is decoded to unsigned codes t + 1 (vpshufb of a per-digit table of
// the positive value's codes; a negative group's code is 2 - code = (code ^ 0xFF) + 3), interleaved into dwords
// of 4 consecutive k of one row. One vector of 8 rows then meets up to 12 columns, each a broadcast dword of 4
// activations: maddubs into int16, widened to int32 once per batch (AVX2), or vpdpbusd into int32 (VNNI);
// sum(a) is subtracted at the end.
// Every constant table below was printed from the inline helpers of tl2-quants.h (bitnet_tl2_sign_bit,
// bitnet_tl2_digit); the bit-exactness test (tests/kernels/test_tl2_gemm.c) checks them through the results.
#include "tl2-gemm.h"

#if (defined(__x86_64__) || defined(_M_X64)) && defined(__AVX2__)

#include <immintrin.h>
#include <stdalign.h>
#include <stdbool.h>
#include <string.h>

#if defined(__AVXVNNI__) || (defined(__AVX512VNNI__) && defined(__AVX512VL__))
#  define TL2_AVX2_VNNI 1
#endif

#define INL    static inline __attribute__((always_inline))
#define UNROLL _Pragma("GCC unroll 16")  // register-blocked loops must unroll, or the accumulators go to the stack

_Static_assert(BITNET_TL2_BLOCK_GROUPS * (3 * 128 + 1) <= 32767, "an int16 block of complemented entries could wrap");
_Static_assert(BITNET_TL2_BLOCK_GROUPS <= 255, "the per-row byte count of negative groups could wrap");

// byte of the group's sign word that holds row 32h + r (bitnet_tl2_sign_bit(32h + r) / 8); pshufb reads it from
// the word broadcast to every 64-bit lane
static const alignas(32) uint8_t SIGN_BYTE[2][32] = {
    { 0, 0, 0, 0, 0, 0, 0, 0, 4, 4, 4, 4, 4, 4, 4, 4, 1, 1, 1, 1, 1, 1, 1, 1, 5, 5, 5, 5, 5, 5, 5, 5 },
    { 2, 2, 2, 2, 2, 2, 2, 2, 6, 6, 6, 6, 6, 6, 6, 6, 3, 3, 3, 3, 3, 3, 3, 3, 7, 7, 7, 7, 7, 7, 7, 7 },
};

// digit d of m = |v| (bitnet_tl2_digit(m, 0, d)); 14 and 15 are no weights
static const alignas(32) int16_t DIGIT16[3][16] = {
    { 0, 0, 0, 0, 0, 1, 1, 1, 1, 1, 1, 1, 1, 1, 0, 0 },
    { 0, 0, 1, 1, 1, -1, -1, -1, 0, 0, 0, 1, 1, 1, 0, 0 },
    { 0, 1, -1, 0, 1, -1, 0, 1, -1, 0, 1, -1, 0, 1, 0, 0 },
};

// the unsigned code digit + 1 of m, in both 128-bit lanes for vpshufb
static const alignas(32) uint8_t CODE[3][32] = {
    { 1, 1, 1, 1, 1, 2, 2, 2, 2, 2, 2, 2, 2, 2, 1, 1, 1, 1, 1, 1, 1, 2, 2, 2, 2, 2, 2, 2, 2, 2, 1, 1 },
    { 1, 1, 2, 2, 2, 0, 0, 0, 1, 1, 1, 2, 2, 2, 1, 1, 1, 1, 2, 2, 2, 0, 0, 0, 1, 1, 1, 2, 2, 2, 1, 1 },
    { 1, 2, 0, 1, 2, 0, 1, 2, 0, 1, 2, 0, 1, 2, 1, 1, 1, 2, 0, 1, 2, 0, 1, 2, 0, 1, 2, 0, 1, 2, 1, 1 },
};

// bit r % 8 of every byte r: the bit of row r within its sign byte
#define SIGN_BITS 0x8040201008040201ull

// 0xFF for the rows of half `shuf` whose group (sign word at sg) is negative, natural row order
INL __m256i sign_mask(const uint8_t * sg, __m256i shuf, __m256i bits) {
    int64_t word;
    memcpy(&word, sg, 8);
    const __m256i b = _mm256_shuffle_epi8(_mm256_set1_epi64x(word), shuf);
    return _mm256_cmpeq_epi8(_mm256_and_si256(b, bits), bits);
}

// ---- table: per group, 16 int16 entries from the digit vectors, split into low and high byte planes ------------

void bitnet_tl2_table_avx2(const int8_t * a, int64_t K, uint8_t * table) {
    const int64_t G = bitnet_tl2_table_groups(K);
    const __m256i w0 = _mm256_load_si256((const __m256i *) DIGIT16[0]);
    const __m256i w1 = _mm256_load_si256((const __m256i *) DIGIT16[1]);
    const __m256i w2 = _mm256_load_si256((const __m256i *) DIGIT16[2]);
    // per 128-bit lane: the 8 low bytes, then the 8 high bytes; vpermq then gathers both lanes' low bytes first
    const __m256i split = _mm256_setr_epi8(0, 2, 4, 6, 8, 10, 12, 14, 1, 3, 5, 7, 9, 11, 13, 15,
                                           0, 2, 4, 6, 8, 10, 12, 14, 1, 3, 5, 7, 9, 11, 13, 15);
    for (int64_t g = 0; g < G; ++g) {
        // vpsignw: each activation times its digit (-1, 0, 1) in all 16 entries at once
        __m256i e = _mm256_sign_epi16(_mm256_set1_epi16(a[3 * g]), w0);
        e = _mm256_add_epi16(e, _mm256_sign_epi16(_mm256_set1_epi16(a[3 * g + 1]), w1));
        e = _mm256_add_epi16(e, _mm256_sign_epi16(_mm256_set1_epi16(a[3 * g + 2]), w2));
        e = _mm256_permute4x64_epi64(_mm256_shuffle_epi8(e, split), 0xD8);
        _mm256_storeu_si256((__m256i *) (table + 32 * g), e);
    }
}

// ---- gemv ----------------------------------------------------------------------------------------------------

// bytes of weights prefetched ahead: from DRAM the gemv then runs at ~95 % of its cache-resident speed (1024: ~80 %)
#define GEMV_PREFETCH 4096

// one group for one half: S0/S1 take the complemented entries of the rows of the low/high unpack, C counts
// the negative groups per row (bytes, natural order)
INL void gemv_half(__m256i idx, __m256i tl, __m256i th, __m256i m, __m256i * S0, __m256i * S1, __m256i * C) {
    const __m256i bl = _mm256_xor_si256(_mm256_shuffle_epi8(tl, idx), m);
    const __m256i bh = _mm256_xor_si256(_mm256_shuffle_epi8(th, idx), m);
    *S0 = _mm256_add_epi16(*S0, _mm256_unpacklo_epi8(bl, bh));
    *S1 = _mm256_add_epi16(*S1, _mm256_unpackhi_epi8(bl, bh));
    *C = _mm256_sub_epi8(*C, m);
}

// end of a block for one half: add the counts back and widen to int32. The low unpack holds rows 0-7 (128-bit
// lane 0) and 16-23 (lane 1), the high unpack rows 8-15 and 24-31: R gets 8 consecutive rows per vector.
INL void gemv_flush(__m256i S0, __m256i S1, __m256i C, __m256i * R) {
    const __m256i z = _mm256_setzero_si256();
    const __m256i T0 = _mm256_add_epi16(S0, _mm256_unpacklo_epi8(C, z));
    const __m256i T1 = _mm256_add_epi16(S1, _mm256_unpackhi_epi8(C, z));
    R[0] = _mm256_add_epi32(R[0], _mm256_cvtepi16_epi32(_mm256_castsi256_si128(T0)));
    R[1] = _mm256_add_epi32(R[1], _mm256_cvtepi16_epi32(_mm256_castsi256_si128(T1)));
    R[2] = _mm256_add_epi32(R[2], _mm256_cvtepi16_epi32(_mm256_extracti128_si256(T0, 1)));
    R[3] = _mm256_add_epi32(R[3], _mm256_cvtepi16_epi32(_mm256_extracti128_si256(T1, 1)));
}

INL void gemv_tile(int64_t G, const uint8_t * p, const uint8_t * table, int32_t * out) {
    const __m256i m4 = _mm256_set1_epi8(0x0F);
    const __m256i bits = _mm256_set1_epi64x((int64_t) SIGN_BITS);
    const __m256i sh0 = _mm256_load_si256((const __m256i *) SIGN_BYTE[0]);
    const __m256i sh1 = _mm256_load_si256((const __m256i *) SIGN_BYTE[1]);
    __m256i R[8];
    for (int i = 0; i < 8; ++i) {
        R[i] = _mm256_setzero_si256();
    }
    for (int64_t g0 = 0; g0 < G; g0 += BITNET_TL2_BLOCK_GROUPS) {
        const int64_t nb = G - g0 < BITNET_TL2_BLOCK_GROUPS ? G - g0 : BITNET_TL2_BLOCK_GROUPS;
        const uint8_t * t = table + 32 * g0;
        __m256i S00 = _mm256_setzero_si256(), S01 = S00, S10 = S00, S11 = S00, C0 = S00, C1 = S00;
        for (int64_t c = 0; c < nb / BITNET_TL2_CHUNK_GROUPS; ++c) {
            const uint8_t * q = p + BITNET_TL2_CHUNK_BYTES * c;
            for (int off = 0; off < BITNET_TL2_CHUNK_BYTES; off += 64) {
                _mm_prefetch((const char *) q + GEMV_PREFETCH + off, _MM_HINT_T0);
            }
            _Pragma("GCC unroll 1")  // unrolled, GCC reassociates the adds and spills the looked-up vectors
            for (int j = 0; j < BITNET_TL2_CHUNK_GROUPS / 2; ++j) {
                const __m256i x0 = _mm256_loadu_si256((const __m256i *) (q + 64 * j));
                const __m256i x1 = _mm256_loadu_si256((const __m256i *) (q + 64 * j + 32));
                const uint8_t * tj = t + 256 * c + 64 * j;
                const uint8_t * sg = q + 256 + 16 * j;
                // group 2j: the low nibbles
                __m256i tl = _mm256_broadcastsi128_si256(_mm_loadu_si128((const __m128i *) tj));
                __m256i th = _mm256_broadcastsi128_si256(_mm_loadu_si128((const __m128i *) (tj + 16)));
                gemv_half(_mm256_and_si256(x0, m4), tl, th, sign_mask(sg, sh0, bits), &S00, &S01, &C0);
                gemv_half(_mm256_and_si256(x1, m4), tl, th, sign_mask(sg, sh1, bits), &S10, &S11, &C1);
                // group 2j + 1: the high nibbles
                tl = _mm256_broadcastsi128_si256(_mm_loadu_si128((const __m128i *) (tj + 32)));
                th = _mm256_broadcastsi128_si256(_mm_loadu_si128((const __m128i *) (tj + 48)));
                gemv_half(_mm256_and_si256(_mm256_srli_epi16(x0, 4), m4), tl, th, sign_mask(sg + 8, sh0, bits), &S00, &S01, &C0);
                gemv_half(_mm256_and_si256(_mm256_srli_epi16(x1, 4), m4), tl, th, sign_mask(sg + 8, sh1, bits), &S10, &S11, &C1);
            }
        }
        gemv_flush(S00, S01, C0, R);
        gemv_flush(S10, S11, C1, R + 4);
        p += nb / BITNET_TL2_CHUNK_GROUPS * BITNET_TL2_CHUNK_BYTES;
    }
    for (int i = 0; i < 8; ++i) {
        _mm256_storeu_si256((__m256i *) (out + 8 * i), R[i]);
    }
}

void bitnet_tl2_gemv_avx2(int64_t K, const uint8_t * w, int64_t tile0, int64_t tile1, const uint8_t * table,
                          int32_t * out) {
    const int64_t G = bitnet_tl2_groups(K);
    const size_t tile_bytes = bitnet_tl2_tile_bytes(K);
    for (int64_t tile = tile0; tile < tile1; ++tile) {
        gemv_tile(G, w + (size_t) tile * tile_bytes, table, out + 64 * (tile - tile0));
    }
}

// ---- gemm ----------------------------------------------------------------------------------------------------

// chunks decoded at a time: 8 x 6 quads of k. 48 maddubs sums of |x| <= 2 * 2 * 128 stay below 32768 in int16,
// so the AVX2 form flushes once per batch; 12 KiB of codes stay in L1 while every column block reads them.
#define GEMM_BATCH_CHUNKS 8
#define CHUNK_QUADS       (BITNET_TL2_CHUNK_GROUPS * 3 / 4)
#define QUAD_BYTES        256  // codes of 4 k x 64 rows: per half h, 4 vectors of 8 row dwords at 128h + 32v
#define GEMM_COLS         12   // columns per register block: 12 accumulators, one code vector, one broadcast
_Static_assert(GEMM_BATCH_CHUNKS * CHUNK_QUADS * 2 * 2 * 128 <= 32767, "int16 maddubs sums of a batch could wrap");

// four code vectors (k .. k+3, rows of one half in natural order) -> 4 vectors of dwords: vector v, dword p
// holds row 16 * (p / 4) + 4v + p % 4 of the half (the unpacks work within 128-bit lanes)
INL void quad_store(__m256i c0, __m256i c1, __m256i c2, __m256i c3, uint8_t * dst) {
    const __m256i l01 = _mm256_unpacklo_epi8(c0, c1), h01 = _mm256_unpackhi_epi8(c0, c1);
    const __m256i l23 = _mm256_unpacklo_epi8(c2, c3), h23 = _mm256_unpackhi_epi8(c2, c3);
    _mm256_store_si256((__m256i *) dst, _mm256_unpacklo_epi16(l01, l23));
    _mm256_store_si256((__m256i *) (dst + 32), _mm256_unpackhi_epi16(l01, l23));
    _mm256_store_si256((__m256i *) (dst + 64), _mm256_unpacklo_epi16(h01, h23));
    _mm256_store_si256((__m256i *) (dst + 96), _mm256_unpackhi_epi16(h01, h23));
}

// one chunk (8 groups = 24 k = 6 quads) of a tile -> 6 x QUAD_BYTES of codes t + 1
INL void decode_chunk(const uint8_t * q, uint8_t * dst) {
    const __m256i m4 = _mm256_set1_epi8(0x0F);
    const __m256i three = _mm256_set1_epi8(3);
    const __m256i bits = _mm256_set1_epi64x((int64_t) SIGN_BITS);
    const __m256i code0 = _mm256_load_si256((const __m256i *) CODE[0]);
    const __m256i code1 = _mm256_load_si256((const __m256i *) CODE[1]);
    const __m256i code2 = _mm256_load_si256((const __m256i *) CODE[2]);
    for (int h = 0; h < 2; ++h) {
        const __m256i shuf = _mm256_load_si256((const __m256i *) SIGN_BYTE[h]);
        for (int jj = 0; jj < BITNET_TL2_CHUNK_GROUPS / 2; jj += 2) {  // 4 groups = 12 k = 3 quads
            __m256i cc[12];
            for (int hh = 0; hh < 2; ++hh) {
                const __m256i x = _mm256_loadu_si256((const __m256i *) (q + 64 * (jj + hh) + 32 * h));
                for (int s = 0; s < 2; ++s) {
                    const __m256i ix = _mm256_and_si256(s ? _mm256_srli_epi16(x, 4) : x, m4);
                    const __m256i m = sign_mask(q + 256 + 8 * (2 * (jj + hh) + s), shuf, bits);
                    const __m256i fix = _mm256_and_si256(m, three);  // negative: 2 - c = (c ^ 0xFF) + 3
                    cc[6 * hh + 3 * s + 0] = _mm256_add_epi8(_mm256_xor_si256(_mm256_shuffle_epi8(code0, ix), m), fix);
                    cc[6 * hh + 3 * s + 1] = _mm256_add_epi8(_mm256_xor_si256(_mm256_shuffle_epi8(code1, ix), m), fix);
                    cc[6 * hh + 3 * s + 2] = _mm256_add_epi8(_mm256_xor_si256(_mm256_shuffle_epi8(code2, ix), m), fix);
                }
            }
            for (int qd = 0; qd < 3; ++qd) {
                quad_store(cc[4 * qd], cc[4 * qd + 1], cc[4 * qd + 2], cc[4 * qd + 3],
                           dst + QUAD_BYTES * (3 * (jj / 2) + qd) + 128 * h);
            }
        }
    }
}

// One column step of a register block: acc + codes . the 4 activations at p broadcast to every dword, as int32
// sums of 4 products (vnni) or int16 sums of 2 (maddubs). GCC (12) schedules all broadcasts of a block ahead of
// the multiplies and spills accumulators, and wraps the VEX vpdpbusd builtin in register copies; there one asm
// statement per step keeps the loop at the accumulators plus two registers (AT&T syntax, the default: ggml is not
// built with -masm=intel). The EVEX builtin is compiled well.
INL __m256i step_maddubs(__m256i acc, __m256i w, const int8_t * p) {
#if defined(__GNUC__) && !defined(__clang__)
    __m256i t;
    __asm__("vpbroadcastd %[p], %[t]\n\t"
            "vpmaddubsw %[t], %[w], %[t]\n\t"  // AT&T order: t = maddubs(w unsigned, t signed)
            "vpaddw %[t], %[acc], %[acc]"
            : [acc] "+x"(acc), [t] "=&x"(t)
            : [w] "x"(w), [p] "m"(*(const int32_t *) p));
    return acc;
#else
    int32_t x;
    memcpy(&x, p, 4);
    return _mm256_add_epi16(acc, _mm256_maddubs_epi16(w, _mm256_set1_epi32(x)));
#endif
}

#ifdef TL2_AVX2_VNNI
INL __m256i step_vnni(__m256i acc, __m256i w, const int8_t * p) {
#if defined(__AVX512VNNI__) && defined(__AVX512VL__)
    int32_t x;
    memcpy(&x, p, 4);
    return _mm256_dpbusd_epi32(acc, w, _mm256_set1_epi32(x));
#elif defined(__GNUC__) && !defined(__clang__)
    __m256i t;
    __asm__("vpbroadcastd %[p], %[t]\n\t"
            "%{vex%} vpdpbusd %[t], %[w], %[acc]"  // AT&T order: acc += w (unsigned) . t (signed)
            : [acc] "+x"(acc), [t] "=&x"(t)
            : [w] "x"(w), [p] "m"(*(const int32_t *) p));
    return acc;
#else
    int32_t x;
    memcpy(&x, p, 4);
    return _mm256_dpbusd_avx_epi32(acc, w, _mm256_set1_epi32(x));
#endif
}
#else
#define step_vnni step_maddubs  // never called: only the avxvnni kernel takes the vnni path
#endif

// acc[64c + i] += codes . activations of column c over nq quads, for the 8 rows of one code vector (lane i of
// the tile, see quad_store). One code vector meets C broadcast columns, so the accumulators are all that stays
// in registers. vnni: vpdpbusd into int32; otherwise maddubs into int16 (nq <= one batch), widened by madd.
INL void gemm_rows8(const int C, const bool vnni, const uint8_t * codes, int64_t nq, const int8_t * a, int64_t lda,
                    int32_t * acc) {
    __m256i A[GEMM_COLS];
    UNROLL
    for (int c = 0; c < C; ++c) {
        A[c] = vnni ? _mm256_load_si256((const __m256i *) (acc + 64 * c)) : _mm256_setzero_si256();
    }
    int64_t q = 0;
    do {  // nq > 0: a loop that may run zero times makes GCC keep the accumulators on the stack as well
        const __m256i w = _mm256_load_si256((const __m256i *) (codes + QUAD_BYTES * q));
        UNROLL
        for (int c = 0; c < C; ++c) {
            A[c] = vnni ? step_vnni(A[c], w, a + c * lda + 4 * q) : step_maddubs(A[c], w, a + c * lda + 4 * q);
        }
    } while (++q < nq);
    UNROLL
    for (int c = 0; c < C; ++c) {
        __m256i * dst = (__m256i *) (acc + 64 * c);
        _mm256_store_si256(dst, vnni ? A[c] : _mm256_add_epi32(_mm256_load_si256(dst), _mm256_madd_epi16(A[c], _mm256_set1_epi16(1))));
    }
}

// every 8-row group of the tile (vector v of half h: lanes 32h + 8v ..) against C columns
INL void gemm_cols(const int C, const bool vnni, const uint8_t * codes, int64_t nq, const int8_t * a, int64_t lda,
                   int32_t * acc) {
    for (int hv = 0; hv < 8; ++hv) {
        gemm_rows8(C, vnni, codes + 32 * hv, nq, a, lda, acc + 8 * hv);
    }
}

INL void gemm_impl(const bool vnni, int64_t K, const uint8_t * w, int64_t tile, const int8_t * a, const int32_t * a_sum,
                   int64_t lda, int64_t ncols, int32_t * out, int64_t ldo) {
    alignas(32) uint8_t codes[GEMM_BATCH_CHUNKS * CHUNK_QUADS * QUAD_BYTES];
    alignas(32) int32_t acc[BITNET_LUT_GEMM_MAX_COLS * 64];
    const int64_t nchunks = bitnet_tl2_groups(K) / BITNET_TL2_CHUNK_GROUPS;
    const uint8_t * wt = w + (size_t) tile * bitnet_tl2_tile_bytes(K);
    memset(acc, 0, sizeof(int32_t) * 64 * (size_t) ncols);
    for (int64_t b0 = 0; b0 < nchunks; b0 += GEMM_BATCH_CHUNKS) {
        const int64_t nb = nchunks - b0 < GEMM_BATCH_CHUNKS ? nchunks - b0 : GEMM_BATCH_CHUNKS;
        for (int64_t i = 0; i < nb; ++i) {
            decode_chunk(wt + (b0 + i) * BITNET_TL2_CHUNK_BYTES, codes + i * CHUNK_QUADS * QUAD_BYTES);
        }
        const int64_t k0 = b0 * BITNET_TL2_CHUNK_GROUPS * 3;
        const int64_t nq = nb * CHUNK_QUADS;
        for (int64_t c0 = 0; c0 < ncols; c0 += GEMM_COLS) {
            const int8_t * ac = a + c0 * lda + k0;
            switch (ncols - c0 < GEMM_COLS ? ncols - c0 : GEMM_COLS) {
#define GEMM_COLS_CASE(C) case C: gemm_cols(C, vnni, codes, nq, ac, lda, acc + 64 * c0); break;
                GEMM_COLS_CASE(1)
                GEMM_COLS_CASE(2)
                GEMM_COLS_CASE(3)
                GEMM_COLS_CASE(4)
                GEMM_COLS_CASE(5)
                GEMM_COLS_CASE(6)
                GEMM_COLS_CASE(7)
                GEMM_COLS_CASE(8)
                GEMM_COLS_CASE(9)
                GEMM_COLS_CASE(10)
                GEMM_COLS_CASE(11)
#undef GEMM_COLS_CASE
                default: gemm_cols(GEMM_COLS, vnni, codes, nq, ac, lda, acc + 64 * c0); break;
            }
        }
    }
    _Static_assert(GEMM_COLS == 12, "gemm_impl has cases for 1 .. 12 columns");
    for (int64_t c = 0; c < ncols; ++c) {
        for (int i = 0; i < 64; ++i) {  // lane i = 32h + 8v + p holds row 32h + 16 (p / 4) + 4v + p % 4
            const int h = i / 32, v = i / 8 % 4, p = i % 8;
            out[c * ldo + 32 * h + 16 * (p / 4) + 4 * v + p % 4] = acc[64 * c + i] - a_sum[c];
        }
    }
}

void bitnet_tl2_gemm_avx2(int64_t K, const uint8_t * w, int64_t tile, const int8_t * a, const int32_t * a_sum,
                          int64_t lda, int64_t ncols, int32_t * out, int64_t ldo) {
    gemm_impl(false, K, w, tile, a, a_sum, lda, ncols, out, ldo);
}

#ifdef TL2_AVX2_VNNI
void bitnet_tl2_gemm_avxvnni(int64_t K, const uint8_t * w, int64_t tile, const int8_t * a, const int32_t * a_sum,
                             int64_t lda, int64_t ncols, int32_t * out, int64_t ldo) {
    gemm_impl(true, K, w, tile, a, a_sum, lda, ncols, out, ldo);
}
#endif

#endif // x86-64 with AVX2
