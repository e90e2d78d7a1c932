// TL2 prototype kernels, AVX-512BW (+VBMI for the table build). Written from scratch for the measurement.
#include "tl2.h"
#ifdef __AVX512BW__
#include <immintrin.h>
#include <string.h>
#include <stdalign.h>

#define INL static inline __attribute__((always_inline))
#ifndef TL2B_PF
#define TL2B_PF 640  // bytes of weights prefetched ahead
#endif
#ifndef TL2W_PF
#define TL2W_PF 768
#endif

static int64_t cdiv(int64_t a, int64_t b) { return (a + b - 1) / b; }

// balanced ternary digits of v in [-13, 13]: v = 9 w0 + 3 w1 + w2
static void tern(int v, int w[3]) {
    int w2 = ((v + 13) % 3) - 1;
    int v1 = (v - w2) / 3;
    int w1 = ((v1 + 4) % 3) - 1;
    int w0 = (v1 - w1) / 3;
    w[0] = w0; w[1] = w1; w[2] = w2;
}

int64_t tl2w_groups(int64_t K) { return cdiv(cdiv(K, 3), 3) * 3; }

size_t tl2b_bytes(int64_t M, int64_t K) { return (size_t) cdiv(M, TL2_BM) * (size_t) tl2_groups(K) * 40; }
size_t tl2w_bytes(int64_t M, int64_t K) { return (size_t) cdiv(M, TL2_BM) * (size_t) (tl2w_groups(K) / 3) * 128; }

// signed group value of rows r (padding rows / columns read as 0)
static int gval(const int8_t * t, int64_t M, int64_t K, int64_t r, int64_t g) {
    if (r >= M) return 0;
    int v = 0;
    for (int j = 0; j < 3; ++j) {
        int64_t k = 3 * g + j;
        int w = k < K ? t[r * K + k] : 0;
        v = 3 * v + w;
    }
    return v;
}

// unpack{lo,hi}_epi8 order: int16 lane i of half h (0: lo, 1: hi) holds row 16*(i/8) + 8*h + i%8
static int b_row(int bit) { int h = bit / 32, i = bit % 32; return 16 * (i / 8) + 8 * h + i % 8; }

void tl2b_pack(const int8_t * t, int64_t M, int64_t K, uint8_t * dst) {
    const int64_t G = tl2_groups(K);  // a multiple of 8
    uint8_t * p = dst;
    for (int64_t r0 = 0; r0 < M; r0 += TL2_BM) {
        for (int64_t g0 = 0; g0 < G; g0 += 8) {  // chunk of 8 groups: 4 x 64 index bytes, then 8 x 8 sign bytes
            for (int64_t j = 0; j < 4; ++j) {
                for (int r = 0; r < 64; ++r) {
                    int a = gval(t, M, K, r0 + r, g0 + 2 * j), b = gval(t, M, K, r0 + r, g0 + 2 * j + 1);
                    p[r] = (uint8_t) ((a < 0 ? -a : a) | ((b < 0 ? -b : b) << 4));
                }
                p += 64;
            }
            for (int64_t g = 0; g < 8; ++g) {
                uint64_t bits = 0;
                for (int i = 0; i < 64; ++i) {
                    if (gval(t, M, K, r0 + b_row(i), g0 + g) < 0) bits |= 1ull << i;
                }
                memcpy(p, &bits, 8);
                p += 8;
            }
        }
    }
}

void tl2w_pack(const int8_t * t, int64_t M, int64_t K, uint8_t * dst) {
    const int64_t G = tl2w_groups(K);
    uint16_t * p = (uint16_t *) dst;
    for (int64_t r0 = 0; r0 < M; r0 += TL2_BM) {
        for (int64_t g = 0; g < G; g += 3) {
            for (int r = 0; r < 64; ++r) {
                uint16_t x = 0;
                for (int j = 0; j < 3; ++j) x |= (uint16_t) ((gval(t, M, K, r0 + r, g + j) + 13) << (5 * j));
                p[r] = x;
            }
            p += 64;
        }
    }
}

// ---- table builds: 10 groups (30 activations) per chunk, terms picked by vpermi2w from [q, -q] ------
static __m512i bidx[5][3], widx[10][3];
static __mmask32 bmsk[5][3], wmsk[10][3];
static __m512i bsplit;

void tl2_init(void) {
    for (int p = 0; p < 5; ++p)
        for (int j = 0; j < 3; ++j) {
            alignas(64) int16_t ix[32];
            uint32_t m = 0;
            for (int l = 0; l < 32; ++l) {
                int grp = 2 * p + l / 16, e = l % 16, w[3] = { 0, 0, 0 };
                if (e <= 13) tern(e, w);
                ix[l] = (int16_t) (3 * grp + j + (w[j] < 0 ? 32 : 0));
                if (w[j] != 0) m |= 1u << l;
            }
            bidx[p][j] = _mm512_load_si512(ix);
            bmsk[p][j] = m;
        }
    for (int g = 0; g < 10; ++g)
        for (int j = 0; j < 3; ++j) {
            alignas(64) int16_t ix[32];
            uint32_t m = 0;
            for (int l = 0; l < 32; ++l) {
                int w[3] = { 0, 0, 0 };
                if (l <= 26) tern(l - 13, w);
                ix[l] = (int16_t) (3 * g + j + (w[j] < 0 ? 32 : 0));
                if (w[j] != 0) m |= 1u << l;
            }
            widx[g][j] = _mm512_load_si512(ix);
            wmsk[g][j] = m;
        }
    alignas(64) uint8_t s[64];
    for (int o = 0; o < 64; ++o) {
        int h = o / 32, b = o % 32, plane = b / 16, e = b % 16;
        s[o] = (uint8_t) (2 * (16 * h + e) + plane);
    }
    bsplit = _mm512_load_si512(s);
}

INL void chunk_x(const int8_t * q, __m512i * x, __m512i * nx) {
    *x = _mm512_cvtepi8_epi16(_mm256_loadu_si256((const __m256i *) q));
    *nx = _mm512_sub_epi16(_mm512_setzero_si512(), *x);
}

void tl2b_table_range(const int8_t * q, int64_t g0, int64_t g1, uint8_t * T) {
    for (int64_t c = g0; c < g1; c += 10) {
        __m512i x, nx;
        chunk_x(q + 3 * c, &x, &nx);
        for (int p = 0; p < 5; ++p) {
            __m512i e = _mm512_maskz_permutex2var_epi16(bmsk[p][0], x, bidx[p][0], nx);
            e = _mm512_add_epi16(e, _mm512_maskz_permutex2var_epi16(bmsk[p][1], x, bidx[p][1], nx));
            e = _mm512_add_epi16(e, _mm512_maskz_permutex2var_epi16(bmsk[p][2], x, bidx[p][2], nx));
            _mm512_store_si512(T + 32 * (c + 2 * p), _mm512_permutexvar_epi8(bsplit, e));
        }
    }
}
void tl2b_table(const int8_t * q, int64_t K, uint8_t * T) { tl2b_table_range(q, 0, tl2_groups(K), T); }

void tl2w_table_range(const int8_t * q, int64_t g0, int64_t g1, uint8_t * T) {
    for (int64_t c = g0; c < g1; c += 10) {
        __m512i x, nx;
        chunk_x(q + 3 * c, &x, &nx);
        for (int g = 0; g < 10; ++g) {
            __m512i e = _mm512_maskz_permutex2var_epi16(wmsk[g][0], x, widx[g][0], nx);
            e = _mm512_add_epi16(e, _mm512_maskz_permutex2var_epi16(wmsk[g][1], x, widx[g][1], nx));
            e = _mm512_add_epi16(e, _mm512_maskz_permutex2var_epi16(wmsk[g][2], x, widx[g][2], nx));
            _mm512_store_si512(T + 64 * (c + g), e);
        }
    }
}

// ---- widening: int16 lanes -> int32 (even words, odd words) ------------------------------------------
INL void widen(__m512i s, __m512i * ev, __m512i * od) {
    *ev = _mm512_add_epi32(*ev, _mm512_srai_epi32(_mm512_slli_epi32(s, 16), 16));
    *od = _mm512_add_epi32(*od, _mm512_srai_epi32(s, 16));
}

// ---- TL2b GEMV -----------------------------------------------------------------------------------
INL void b_group(__m512i idx, const uint8_t * t, const uint8_t * sg, __m512i * A0, __m512i * A1, __m512i * N0, __m512i * N1) {
    const __m512i tl = _mm512_broadcast_i32x4(_mm_load_si128((const __m128i *) t));
    const __m512i th = _mm512_broadcast_i32x4(_mm_load_si128((const __m128i *) (t + 16)));
    const __m512i bl = _mm512_shuffle_epi8(tl, idx), bh = _mm512_shuffle_epi8(th, idx);
    const __m512i v0 = _mm512_unpacklo_epi8(bl, bh), v1 = _mm512_unpackhi_epi8(bl, bh);
    const __mmask32 k0 = _load_mask32((__mmask32 *) sg), k1 = _load_mask32((__mmask32 *) (sg + 4));
    *A0 = _mm512_add_epi16(*A0, v0);
    *A1 = _mm512_add_epi16(*A1, v1);
    *N0 = _mm512_mask_add_epi16(*N0, k0, *N0, v0);
    *N1 = _mm512_mask_add_epi16(*N1, k1, *N1, v1);
}

void tl2b_gemv(int64_t K, const uint8_t * w, int64_t tile0, int64_t tile1, const uint8_t * T, int32_t * out) {
    const int64_t G = tl2_groups(K);
    const __m512i m4 = _mm512_set1_epi8(0x0F);
    static int map[64];
    static int map_ready = 0;
    if (!map_ready) {  // R lanes -> rows: R0 even words of v0, R1 odd of v0, R2/R3 of v1
        for (int t = 0; t < 4; ++t)
            for (int j = 0; j < 16; ++j) map[16 * t + j] = b_row(32 * (t / 2) + 2 * j + (t % 2));
        map_ready = 1;
    }
    const uint8_t * p = w + (size_t) tile0 * (size_t) G * 40;
    for (int64_t tile = tile0; tile < tile1; ++tile) {
        __m512i R0 = _mm512_setzero_si512(), R1 = R0, R2 = R0, R3 = R0;
        for (int64_t g0 = 0; g0 < G; g0 += TL2_BK) {
            const int64_t nb = G - g0 < TL2_BK ? G - g0 : TL2_BK;
            const uint8_t * t = T + 32 * g0;
            __m512i A0 = _mm512_setzero_si512(), A1 = A0, N0 = A0, N1 = A0;
            for (int64_t c = 0; c < nb / 8; ++c) {  // one 320-byte chunk: 4 pairs + their signs
                const uint8_t * q = p + 320 * c;
                const uint8_t * sg = q + 256;
                _mm_prefetch((const char *) q + TL2B_PF, _MM_HINT_T0);
                _mm_prefetch((const char *) q + TL2B_PF + 64, _MM_HINT_T0);
                _mm_prefetch((const char *) q + TL2B_PF + 128, _MM_HINT_T0);
                _mm_prefetch((const char *) q + TL2B_PF + 192, _MM_HINT_T0);
                _mm_prefetch((const char *) q + TL2B_PF + 256, _MM_HINT_T0);
                for (int j = 0; j < 4; ++j) {
                    const __m512i x = _mm512_load_si512(q + 64 * j);
                    const __m512i lo = _mm512_and_si512(x, m4);
                    const __m512i hi = _mm512_and_si512(_mm512_srli_epi16(x, 4), m4);
                    b_group(lo, t + 256 * c + 64 * j, sg + 16 * j, &A0, &A1, &N0, &N1);
                    b_group(hi, t + 256 * c + 64 * j + 32, sg + 16 * j + 8, &A0, &A1, &N0, &N1);
                }
            }
            // A - 2N = signed sum (each partial is a sub-sum, |.| <= nb * 381 <= 32766)
            const __m512i S0 = _mm512_sub_epi16(_mm512_sub_epi16(A0, N0), N0);
            const __m512i S1 = _mm512_sub_epi16(_mm512_sub_epi16(A1, N1), N1);
            widen(S0, &R0, &R1);
            widen(S1, &R2, &R3);
            p += nb * 40;
        }
        alignas(64) int32_t buf[64];
        _mm512_store_si512(buf, R0); _mm512_store_si512(buf + 16, R1);
        _mm512_store_si512(buf + 32, R2); _mm512_store_si512(buf + 48, R3);
        int32_t * o = out + (tile - tile0) * 64;
        for (int i = 0; i < 64; ++i) o[map[i]] = buf[i];
    }
}

// ---- TL2w GEMV -----------------------------------------------------------------------------------
void tl2w_gemv(int64_t K, const uint8_t * w, int64_t tile0, int64_t tile1, const uint8_t * T, int32_t * out) {
    const int64_t G = tl2w_groups(K);
    const uint8_t * p = w + (size_t) tile0 * (size_t) (G / 3) * 128;
    for (int64_t tile = tile0; tile < tile1; ++tile) {
        __m512i R0 = _mm512_setzero_si512(), R1 = R0, R2 = R0, R3 = R0;
        for (int64_t g0 = 0; g0 < G; g0 += TL2W_BK) {
            const int64_t nb = G - g0 < TL2W_BK ? G - g0 : TL2W_BK;
            __m512i S0 = _mm512_setzero_si512(), S1 = S0, U0 = S0, U1 = S0;  // two chains per half
            const uint8_t * t = T + 64 * g0;
            for (int64_t j = 0; j < nb / 3; ++j) {
                _mm_prefetch((const char *) p + TL2W_PF, _MM_HINT_T0);
                _mm_prefetch((const char *) p + TL2W_PF + 64, _MM_HINT_T0);
                const __m512i x0 = _mm512_load_si512(p), x1 = _mm512_load_si512(p + 64);
                const __m512i ta = _mm512_load_si512(t), tb = _mm512_load_si512(t + 64), tc = _mm512_load_si512(t + 128);
                S0 = _mm512_add_epi16(S0, _mm512_permutexvar_epi16(x0, ta));
                S1 = _mm512_add_epi16(S1, _mm512_permutexvar_epi16(x1, ta));
                U0 = _mm512_add_epi16(U0, _mm512_permutexvar_epi16(_mm512_srli_epi16(x0, 5), tb));
                U1 = _mm512_add_epi16(U1, _mm512_permutexvar_epi16(_mm512_srli_epi16(x1, 5), tb));
                S0 = _mm512_add_epi16(S0, _mm512_permutexvar_epi16(_mm512_srli_epi16(x0, 10), tc));
                S1 = _mm512_add_epi16(S1, _mm512_permutexvar_epi16(_mm512_srli_epi16(x1, 10), tc));
                p += 128;
                t += 192;
            }
            // S + U: a sub-sum split in two is fine: |S|,|U| and |S+U| <= nb * 381
            widen(_mm512_add_epi16(S0, U0), &R0, &R1);
            widen(_mm512_add_epi16(S1, U1), &R2, &R3);
        }
        alignas(64) int32_t buf[64];
        _mm512_store_si512(buf, R0); _mm512_store_si512(buf + 16, R1);
        _mm512_store_si512(buf + 32, R2); _mm512_store_si512(buf + 48, R3);
        int32_t * o = out + (tile - tile0) * 64;
        for (int i = 0; i < 16; ++i) {
            o[2 * i] = buf[i]; o[2 * i + 1] = buf[16 + i];
            o[32 + 2 * i] = buf[32 + i]; o[32 + 2 * i + 1] = buf[48 + i];
        }
    }
}

#endif // __AVX512BW__

int64_t tl2_groups(int64_t K) { int64_t G = (K + 2) / 3; return (G + 7) / 8 * 8; }

#ifdef __AVX512BW__
// ---- pp estimate only: TL2b block -> u8 codes (t + 1) as [k/4][64 rows] dwords, the operand a packed vpdpbusd
// GEMM broadcasts. Cost probe: the sign-bit order is taken as is (same instruction count as a remapped one).
static __m512i dpos[3], dneg[3];
static void dec_init(void) {
    alignas(64) uint8_t a[3][64], b[3][64];
    for (int i = 0; i < 64; ++i) {
        int m = i % 16, w[3] = { 0, 0, 0 };
        if (m <= 13) tern(m, w);
        for (int j = 0; j < 3; ++j) { a[j][i] = (uint8_t) (1 + w[j]); b[j][i] = (uint8_t) (1 - w[j]); }
    }
    for (int j = 0; j < 3; ++j) { dpos[j] = _mm512_load_si512(a[j]); dneg[j] = _mm512_load_si512(b[j]); }
}
INL void quad_store(__m512i c0, __m512i c1, __m512i c2, __m512i c3, uint8_t * dst) {
    const __m512i l01 = _mm512_unpacklo_epi8(c0, c1), h01 = _mm512_unpackhi_epi8(c0, c1);
    const __m512i l23 = _mm512_unpacklo_epi8(c2, c3), h23 = _mm512_unpackhi_epi8(c2, c3);
    _mm512_store_si512(dst, _mm512_unpacklo_epi16(l01, l23));
    _mm512_store_si512(dst + 64, _mm512_unpackhi_epi16(l01, l23));
    _mm512_store_si512(dst + 128, _mm512_unpacklo_epi16(h01, h23));
    _mm512_store_si512(dst + 192, _mm512_unpackhi_epi16(h01, h23));
}
void tl2b_decode_block(const uint8_t * p, int64_t nb, uint8_t * dst) {
    static int ready = 0;
    if (!ready) { dec_init(); ready = 1; }
    const __m512i m4 = _mm512_set1_epi8(0x0F);
    for (int64_t c = 0; c < nb / 8; ++c) {  // chunk of 8 groups = 24 k = 6 quads
        const uint8_t * q = p + 320 * c, * sg = q + 256;
        for (int jj = 0; jj < 4; jj += 2) {  // 4 groups = 12 k = 3 quads
            __m512i cc[12];
            for (int h = 0; h < 2; ++h) {
                const __m512i x = _mm512_load_si512(q + 64 * (jj + h));
                const __m512i ix[2] = { _mm512_and_si512(x, m4), _mm512_and_si512(_mm512_srli_epi16(x, 4), m4) };
                for (int s = 0; s < 2; ++s) {
                    const __mmask64 k = _load_mask64((__mmask64 *) (sg + 8 * (2 * (jj + h) + s)));
                    for (int d = 0; d < 3; ++d)
                        cc[6 * h + 3 * s + d] = _mm512_mask_shuffle_epi8(_mm512_shuffle_epi8(dpos[d], ix[s]), k, dneg[d], ix[s]);
                }
            }
            for (int qd = 0; qd < 3; ++qd)
                quad_store(cc[4 * qd], cc[4 * qd + 1], cc[4 * qd + 2], cc[4 * qd + 3], dst + 256 * (6 * c + 3 * (jj / 2) + qd));
        }
    }
}
#endif
