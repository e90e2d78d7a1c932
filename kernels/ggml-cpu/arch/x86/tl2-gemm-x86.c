// x86 TL2 kernels (contract: tl2-gemm.h), AVX-512 BW + VBMI + VNNI.
//
// One token (gemv): the token's table holds, per group, the int16 sums e[m] of its 3 activations weighted by the
// digits of m = |v|, split into a low-byte and a high-byte 16-entry plane. For each group a 64-byte vector of
// indices (one per row of the tile) looks up both planes with vpshufb; unpack{lo,hi}_epi8 joins the bytes into
// int16 lanes, whose order the sign bits are stored in, so the signs load straight into mask registers.
// Sums stay int16 within blocks of BITNET_TL2_BLOCK_GROUPS groups (no wrap by construction), then widen.
//
// Several tokens (gemm): each chunk of a tile is decoded to unsigned codes t + 1 with vpshufb (one table per
// digit and sign), interleaved into [k/4][64 rows] dwords, and vpdpbusd multiplies 4 codes of 16 rows with a
// broadcast dword of 4 activations of one column; sum(a) is subtracted at the end.
//
// The constant tables (shuffle indices, masks, lane -> row maps) and the tuned parameters come from the
// generator (bitnet_gguf/setup/kernel_gen.py) in the build folder.
#include "tl2-gemm.h"

#ifdef BITNET_TL2_HAVE_AVX512

#include "tl2-generated.h"

#include <immintrin.h>
#include <stdalign.h>
#include <string.h>

#define INL    static inline __attribute__((always_inline))
#define UNROLL _Pragma("GCC unroll 32")  // register-blocked loops must unroll, or the accumulators go to the stack

// ---- table: 10 groups (30 activations) per step; vpermi2w picks each digit's term from [a, -a] -------------

void bitnet_tl2_table_avx512(const int8_t * a, int64_t K, uint8_t * table) {
    const int64_t G = bitnet_tl2_table_groups(K);
    const __m512i split = _mm512_loadu_si512(BITNET_TL2_TABLE_SPLIT);
    for (int64_t c = 0; c < G; c += BITNET_TL2_TABLE_STEP) {
        const __m512i x = _mm512_cvtepi8_epi16(_mm256_loadu_si256((const __m256i *) (a + 3 * c)));
        const __m512i nx = _mm512_sub_epi16(_mm512_setzero_si512(), x);
        for (int p = 0; p < BITNET_TL2_TABLE_STEP / 2; ++p) {  // two groups per vector of 32 int16 entries
            __m512i e = _mm512_setzero_si512();
            for (int d = 0; d < 3; ++d) {
                const __m512i idx = _mm512_loadu_si512(BITNET_TL2_TABLE_INDEX[p][d]);
                e = _mm512_add_epi16(e, _mm512_maskz_permutex2var_epi16(BITNET_TL2_TABLE_MASK[p][d], x, idx, nx));
            }
            _mm512_storeu_si512(table + 32 * (c + 2 * p), _mm512_permutexvar_epi8(split, e));
        }
    }
}

// ---- gemv ----------------------------------------------------------------------------------------------------

// one group: look up 64 rows, add to the all-rows sums A and the negative-rows sums N (signed sum = A - 2N)
INL void gemv_group(__m512i idx, const uint8_t * t, const uint8_t * sg, __m512i * A0, __m512i * A1, __m512i * N0,
                    __m512i * N1) {
    const __m512i tl = _mm512_broadcast_i32x4(_mm_loadu_si128((const __m128i *) t));
    const __m512i th = _mm512_broadcast_i32x4(_mm_loadu_si128((const __m128i *) (t + 16)));
    const __m512i bl = _mm512_shuffle_epi8(tl, idx);
    const __m512i bh = _mm512_shuffle_epi8(th, idx);
    const __m512i v0 = _mm512_unpacklo_epi8(bl, bh);
    const __m512i v1 = _mm512_unpackhi_epi8(bl, bh);
    __mmask32 k0, k1;
    memcpy(&k0, sg, 4);
    memcpy(&k1, sg + 4, 4);
    *A0 = _mm512_add_epi16(*A0, v0);
    *A1 = _mm512_add_epi16(*A1, v1);
    *N0 = _mm512_mask_add_epi16(*N0, k0, *N0, v0);
    *N1 = _mm512_mask_add_epi16(*N1, k1, *N1, v1);
}

// int16 lanes -> int32: even words into ev, odd words into od
INL void widen(__m512i s, __m512i * ev, __m512i * od) {
    *ev = _mm512_add_epi32(*ev, _mm512_srai_epi32(_mm512_slli_epi32(s, 16), 16));
    *od = _mm512_add_epi32(*od, _mm512_srai_epi32(s, 16));
}

INL void gemv_tile(int64_t G, const uint8_t * p, const uint8_t * table, int32_t * out) {
    const __m512i m4 = _mm512_set1_epi8(0x0F);
    __m512i R0 = _mm512_setzero_si512(), R1 = R0, R2 = R0, R3 = R0;
    for (int64_t g0 = 0; g0 < G; g0 += BITNET_TL2_BLOCK_GROUPS) {
        const int64_t nb = G - g0 < BITNET_TL2_BLOCK_GROUPS ? G - g0 : BITNET_TL2_BLOCK_GROUPS;
        const uint8_t * t = table + 32 * g0;
        __m512i A0 = _mm512_setzero_si512(), A1 = A0, N0 = A0, N1 = A0;
        for (int64_t c = 0; c < nb / BITNET_TL2_CHUNK_GROUPS; ++c) {
            const uint8_t * q = p + BITNET_TL2_CHUNK_BYTES * c;
            for (int off = 0; off < BITNET_TL2_CHUNK_BYTES; off += 64) {
                _mm_prefetch((const char *) q + BITNET_TL2_GEMV_PREFETCH + off, _MM_HINT_T0);
            }
            for (int j = 0; j < BITNET_TL2_CHUNK_GROUPS / 2; ++j) {
                const __m512i x = _mm512_loadu_si512(q + 64 * j);
                const __m512i lo = _mm512_and_si512(x, m4);
                const __m512i hi = _mm512_and_si512(_mm512_srli_epi16(x, 4), m4);
                const uint8_t * tj = t + 256 * c + 64 * j;
                gemv_group(lo, tj, q + 256 + 16 * j, &A0, &A1, &N0, &N1);
                gemv_group(hi, tj + 32, q + 256 + 16 * j + 8, &A0, &A1, &N0, &N1);
            }
        }
        // each partial is a sub-sum of at most nb entries, so A - N - N cannot wrap
        widen(_mm512_sub_epi16(_mm512_sub_epi16(A0, N0), N0), &R0, &R1);
        widen(_mm512_sub_epi16(_mm512_sub_epi16(A1, N1), N1), &R2, &R3);
        p += nb / BITNET_TL2_CHUNK_GROUPS * BITNET_TL2_CHUNK_BYTES;
    }
    alignas(64) int32_t buf[64];
    _mm512_store_si512(buf, R0);
    _mm512_store_si512(buf + 16, R1);
    _mm512_store_si512(buf + 32, R2);
    _mm512_store_si512(buf + 48, R3);
    for (int i = 0; i < 64; ++i) {
        out[BITNET_TL2_GEMV_ROW[i]] = buf[i];
    }
}

// the model's K values get their own copy with constant loop bounds (BITNET_TL2_SHAPES, from the generator)
#define GEMV_FOR_K(KC)                                                                                      \
    static void gemv_k##KC(const uint8_t * w, int64_t tile0, int64_t tile1, const uint8_t * table, int32_t * out) { \
        for (int64_t tile = tile0; tile < tile1; ++tile) {                                                  \
            gemv_tile(bitnet_tl2_groups(KC), w + (size_t) tile * bitnet_tl2_tile_bytes(KC), table,          \
                      out + 64 * (tile - tile0));                                                           \
        }                                                                                                   \
    }
BITNET_TL2_SHAPES(GEMV_FOR_K)
#undef GEMV_FOR_K

void bitnet_tl2_gemv_avx512(int64_t K, const uint8_t * w, int64_t tile0, int64_t tile1, const uint8_t * table,
                            int32_t * out) {
    switch (K) {
#define CASE_K(KC) case KC: gemv_k##KC(w, tile0, tile1, table, out); return;
        BITNET_TL2_SHAPES(CASE_K)
#undef CASE_K
        default: break;
    }
    for (int64_t tile = tile0; tile < tile1; ++tile) {
        gemv_tile(bitnet_tl2_groups(K), w + (size_t) tile * bitnet_tl2_tile_bytes(K), table, out + 64 * (tile - tile0));
    }
}

// ---- gemm ----------------------------------------------------------------------------------------------------

#define GEMM_BATCH_CHUNKS 16  // chunks decoded at a time: 384 k x 64 rows = 24 KiB of codes, in L1
#define CHUNK_CODES       (BITNET_TL2_CHUNK_GROUPS * 3 * 64)  // bytes of decoded codes per chunk
#define GEMM_COLS         6   // columns per register block: 4 x 6 accumulators

// four code vectors (k, k+1, k+2, k+3 of 64 lanes) -> 4 vectors of dwords; vector v, dword p holds lane
// 16 * (p / 4) + 4 * v + p % 4 (BITNET_TL2_GEMM_ROW maps it to its row)
INL void quad_store(__m512i c0, __m512i c1, __m512i c2, __m512i c3, uint8_t * dst) {
    const __m512i l01 = _mm512_unpacklo_epi8(c0, c1), h01 = _mm512_unpackhi_epi8(c0, c1);
    const __m512i l23 = _mm512_unpacklo_epi8(c2, c3), h23 = _mm512_unpackhi_epi8(c2, c3);
    _mm512_store_si512(dst, _mm512_unpacklo_epi16(l01, l23));
    _mm512_store_si512(dst + 64, _mm512_unpackhi_epi16(l01, l23));
    _mm512_store_si512(dst + 128, _mm512_unpacklo_epi16(h01, h23));
    _mm512_store_si512(dst + 192, _mm512_unpackhi_epi16(h01, h23));
}

// one chunk (8 groups = 24 k = 6 quads) of a tile -> 6 x 256 bytes of codes t + 1, lanes in sign-bit order
INL void decode_chunk(const uint8_t * q, uint8_t * dst) {
    const __m512i m4 = _mm512_set1_epi8(0x0F);
    const __m512i lane_rows = _mm512_loadu_si512(BITNET_TL2_LANE_ROW);
    for (int jj = 0; jj < BITNET_TL2_CHUNK_GROUPS / 2; jj += 2) {  // 4 groups = 12 k = 3 quads
        __m512i cc[12];
        for (int h = 0; h < 2; ++h) {
            const __m512i x = _mm512_permutexvar_epi8(lane_rows, _mm512_loadu_si512(q + 64 * (jj + h)));
            const __m512i ix[2] = { _mm512_and_si512(x, m4), _mm512_and_si512(_mm512_srli_epi16(x, 4), m4) };
            for (int s = 0; s < 2; ++s) {
                __mmask64 neg;
                memcpy(&neg, q + 256 + 8 * (2 * (jj + h) + s), 8);
                for (int d = 0; d < 3; ++d) {
                    const __m512i pos = _mm512_loadu_si512(BITNET_TL2_DECODE[0][d]);
                    const __m512i ngt = _mm512_loadu_si512(BITNET_TL2_DECODE[1][d]);
                    cc[6 * h + 3 * s + d] =
                        _mm512_mask_shuffle_epi8(_mm512_shuffle_epi8(pos, ix[s]), neg, ngt, ix[s]);
                }
            }
        }
        for (int qd = 0; qd < 3; ++qd) {
            quad_store(cc[4 * qd], cc[4 * qd + 1], cc[4 * qd + 2], cc[4 * qd + 3], dst + 256 * (3 * (jj / 2) + qd));
        }
    }
}

// acc + 4 unsigned codes . 4 signed activations per int32 lane. GCC 12 wraps the intrinsic in register copies
// and spills accumulators in the register-blocked loop below (50-60 % of vpdpbusd's peak); the asm statement
// pins the accumulator to one register.
INL __m512i dpbusd(__m512i acc, __m512i u8, __m512i s8) {
#if defined(__GNUC__) && !defined(__clang__)
    __asm__("vpdpbusd %[s], %[u], %[acc]" : [acc] "+v"(acc) : [u] "v"(u8), [s] "v"(s8));  // AT&T operand order
    return acc;
#else
    return _mm512_dpbusd_epi32(acc, u8, s8);
#endif
}

// acc[c][v] (+)= codes . activations of column c, over nq quads (accumulators in registers: C <= GEMM_COLS)
INL void gemm_cols(int C, const uint8_t * restrict codes, int64_t nq, const int8_t * restrict a, int64_t lda,
                   int32_t * restrict acc, int first) {
    __m512i A[GEMM_COLS * 4];
    UNROLL
    for (int i = 0; i < 4 * C; ++i) {
        A[i] = first ? _mm512_setzero_si512() : _mm512_load_si512(acc + 16 * i);
    }
    for (int64_t q = 0; q < nq; ++q) {
        __m512i wv[4];
        UNROLL
        for (int v = 0; v < 4; ++v) {
            wv[v] = _mm512_load_si512(codes + 256 * q + 64 * v);
        }
        UNROLL
        for (int c = 0; c < C; ++c) {
            int32_t x;
            memcpy(&x, a + c * lda + 4 * q, 4);
            const __m512i b = _mm512_set1_epi32(x);
            UNROLL
            for (int v = 0; v < 4; ++v) {
                A[4 * c + v] = dpbusd(A[4 * c + v], wv[v], b);
            }
        }
    }
    UNROLL
    for (int i = 0; i < 4 * C; ++i) {
        _mm512_store_si512(acc + 16 * i, A[i]);
    }
}

#define GEMM_COLS_CASE(C) \
    case C: gemm_cols(C, codes, nq, a + c0 * lda + k0, lda, acc + 64 * c0, first); break;

void bitnet_tl2_gemm_avx512(int64_t K, const uint8_t * w, int64_t tile, const int8_t * a, const int32_t * a_sum,
                            int64_t lda, int64_t ncols, int32_t * out, int64_t ldo) {
    alignas(64) uint8_t codes[GEMM_BATCH_CHUNKS * CHUNK_CODES];
    alignas(64) int32_t acc[BITNET_LUT_GEMM_MAX_COLS * 64];
    const int64_t nchunks = bitnet_tl2_groups(K) / BITNET_TL2_CHUNK_GROUPS;
    const uint8_t * wt = w + (size_t) tile * bitnet_tl2_tile_bytes(K);
    for (int64_t b0 = 0; b0 < nchunks; b0 += GEMM_BATCH_CHUNKS) {
        const int64_t nb = nchunks - b0 < GEMM_BATCH_CHUNKS ? nchunks - b0 : GEMM_BATCH_CHUNKS;
        for (int64_t i = 0; i < nb; ++i) {
            decode_chunk(wt + (b0 + i) * BITNET_TL2_CHUNK_BYTES, codes + i * CHUNK_CODES);
        }
        const int64_t k0 = b0 * BITNET_TL2_CHUNK_GROUPS * 3;
        const int64_t nq = nb * BITNET_TL2_CHUNK_GROUPS * 3 / 4;
        const int first = b0 == 0;
        for (int64_t c0 = 0; c0 < ncols; c0 += GEMM_COLS) {
            switch (ncols - c0 < GEMM_COLS ? ncols - c0 : GEMM_COLS) {
                GEMM_COLS_CASE(1)
                GEMM_COLS_CASE(2)
                GEMM_COLS_CASE(3)
                GEMM_COLS_CASE(4)
                GEMM_COLS_CASE(5)
                default: gemm_cols(GEMM_COLS, codes, nq, a + c0 * lda + k0, lda, acc + 64 * c0, first); break;
            }
        }
    }
    for (int64_t c = 0; c < ncols; ++c) {
        for (int i = 0; i < 64; ++i) {
            out[c * ldo + BITNET_TL2_GEMM_ROW[i]] = acc[64 * c + i] - a_sum[c];
        }
    }
}

#endif // BITNET_TL2_HAVE_AVX512
