// TL2a: AVX2 variant of the TL2 prototype (compiles at -mavx2; also fine in the AVX-512 build).
// Layout per tile of 32 rows, per K block of nb <= TL2A_BK groups (nb even):
//   nb/2 x 32 index bytes (byte r of pair j: |v| of group 2j low nibble, 2j+1 high nibble, row r)
//   nb x 4 sign bytes (bit r = 1 when v < 0 for row r, natural order)
// then 32 int32: per row, the number of negative groups in the whole row (a weight-only constant).
// Sign trick: for a negative group both table bytes are XORed with 0xFF before the int16 interleave,
// which gives ~e = -e - 1; adding the row's negative count at the end makes it exact.
// Table: as TL2b (32 bytes per group: low bytes, high bytes of the 16 int16 entries).
#include "tl2.h"
#include <immintrin.h>
#include <string.h>
#include <stdalign.h>

#define TL2A_BM 32
#define TL2A_BK 80  // |block sum| <= nb * 382 (the -1 per negative group) <= 30560; multiple of 8: 32-byte aligned blocks

static int64_t cdiv(int64_t a, int64_t b) { return (a + b - 1) / b; }
size_t tl2a_bytes(int64_t M, int64_t K) {
    return (size_t) cdiv(M, TL2A_BM) * ((size_t) tl2_groups(K) * 20 + 128);
}

static int gval(const int8_t * t, int64_t M, int64_t K, int64_t r, int64_t g) {
    if (r >= M) return 0;
    int v = 0;
    for (int j = 0; j < 3; ++j) {
        int64_t k = 3 * g + j;
        v = 3 * v + (k < K ? t[r * K + k] : 0);
    }
    return v;
}

void tl2a_pack(const int8_t * t, int64_t M, int64_t K, uint8_t * dst) {
    const int64_t G = tl2_groups(K);
    uint8_t * p = dst;
    for (int64_t r0 = 0; r0 < M; r0 += TL2A_BM) {
        int32_t nneg[32] = { 0 };
        for (int64_t g0 = 0; g0 < G; g0 += TL2A_BK) {
            const int64_t nb = G - g0 < TL2A_BK ? G - g0 : TL2A_BK;
            for (int64_t j = 0; j < nb / 2; ++j) {
                for (int r = 0; r < 32; ++r) {
                    int a = gval(t, M, K, r0 + r, g0 + 2 * j), b = gval(t, M, K, r0 + r, g0 + 2 * j + 1);
                    p[r] = (uint8_t) ((a < 0 ? -a : a) | ((b < 0 ? -b : b) << 4));
                }
                p += 32;
            }
            for (int64_t g = 0; g < nb; ++g) {
                uint32_t bits = 0;
                for (int r = 0; r < 32; ++r)
                    if (gval(t, M, K, r0 + r, g0 + g) < 0) { bits |= 1u << r; nneg[r]++; }
                memcpy(p, &bits, 4);
                p += 4;
            }
        }
        memcpy(p, nneg, 128);
        p += 128;
    }
}

// table: per group, e = a0*W0 + a1*W1 + a2*W2 via psignw, bytes split with pshufb + vpermq
void tl2a_table_range(const int8_t * q16, int64_t g0, int64_t g1, uint8_t * T) {
    alignas(32) int16_t w[3][16];
    for (int e = 0; e < 16; ++e) {
        int d[3] = { 0, 0, 0 };
        if (e <= 13) { int v = e; d[2] = ((v + 13) % 3) - 1; int v1 = (v - d[2]) / 3; d[1] = ((v1 + 4) % 3) - 1; d[0] = (v1 - d[1]) / 3; }
        for (int j = 0; j < 3; ++j) w[j][e] = (int16_t) d[j];
    }
    const __m256i W0 = _mm256_load_si256((const __m256i *) w[0]), W1 = _mm256_load_si256((const __m256i *) w[1]),
                  W2 = _mm256_load_si256((const __m256i *) w[2]);
    const __m256i split = _mm256_setr_epi8(0, 2, 4, 6, 8, 10, 12, 14, 1, 3, 5, 7, 9, 11, 13, 15,
                                           0, 2, 4, 6, 8, 10, 12, 14, 1, 3, 5, 7, 9, 11, 13, 15);
    for (int64_t g = g0; g < g1; ++g) {
        __m256i e = _mm256_sign_epi16(_mm256_set1_epi16(q16[3 * g]), W0);
        e = _mm256_add_epi16(e, _mm256_sign_epi16(_mm256_set1_epi16(q16[3 * g + 1]), W1));
        e = _mm256_add_epi16(e, _mm256_sign_epi16(_mm256_set1_epi16(q16[3 * g + 2]), W2));
        e = _mm256_permute4x64_epi64(_mm256_shuffle_epi8(e, split), 0xD8);
        _mm256_store_si256((__m256i *) (T + 32 * g), e);
    }
}

#define INL static inline __attribute__((always_inline))

INL __m256i sign_bytes(const uint8_t * sg) {
    const __m256i rep = _mm256_setr_epi8(0, 0, 0, 0, 0, 0, 0, 0, 1, 1, 1, 1, 1, 1, 1, 1,
                                         2, 2, 2, 2, 2, 2, 2, 2, 3, 3, 3, 3, 3, 3, 3, 3);
    const __m256i bit = _mm256_set1_epi64x((long long) 0x8040201008040201ull);
    const __m256i b = _mm256_shuffle_epi8(_mm256_set1_epi32(*(const int32_t *) sg), rep);
    return _mm256_cmpeq_epi8(_mm256_and_si256(b, bit), bit);
}

INL void a_group(__m256i idx, const uint8_t * t, const uint8_t * sg, __m256i * A0, __m256i * A1) {
    const __m256i tl = _mm256_broadcastsi128_si256(_mm_load_si128((const __m128i *) t));
    const __m256i th = _mm256_broadcastsi128_si256(_mm_load_si128((const __m128i *) (t + 16)));
    const __m256i m = sign_bytes(sg);
    const __m256i bl = _mm256_xor_si256(_mm256_shuffle_epi8(tl, idx), m);
    const __m256i bh = _mm256_xor_si256(_mm256_shuffle_epi8(th, idx), m);
    *A0 = _mm256_add_epi16(*A0, _mm256_unpacklo_epi8(bl, bh));
    *A1 = _mm256_add_epi16(*A1, _mm256_unpackhi_epi8(bl, bh));
}

INL void widen2(__m256i s, __m256i * ev, __m256i * od) {
    *ev = _mm256_add_epi32(*ev, _mm256_srai_epi32(_mm256_slli_epi32(s, 16), 16));
    *od = _mm256_add_epi32(*od, _mm256_srai_epi32(s, 16));
}

void tl2a_gemv(int64_t K, const uint8_t * w, int64_t tile0, int64_t tile1, const uint8_t * T, int32_t * out) {
    const int64_t G = tl2_groups(K);
    const __m256i m4 = _mm256_set1_epi8(0x0F);
    const uint8_t * p = w + (size_t) tile0 * ((size_t) G * 20 + 128);
    for (int64_t tile = tile0; tile < tile1; ++tile) {
        __m256i R0 = _mm256_setzero_si256(), R1 = R0, R2 = R0, R3 = R0;
        for (int64_t g0 = 0; g0 < G; g0 += TL2A_BK) {
            const int64_t nb = G - g0 < TL2A_BK ? G - g0 : TL2A_BK;
            const uint8_t * sg = p + nb / 2 * 32;
            const uint8_t * t = T + 32 * g0;
            __m256i A0 = _mm256_setzero_si256(), A1 = A0, B0 = A0, B1 = A0;
            for (int64_t j = 0; j < nb / 2; ++j) {
                _mm_prefetch((const char *) p + 32 * j + 512, _MM_HINT_T0);
                const __m256i x = _mm256_load_si256((const __m256i *) (p + 32 * j));
                const __m256i lo = _mm256_and_si256(x, m4);
                const __m256i hi = _mm256_and_si256(_mm256_srli_epi16(x, 4), m4);
                a_group(lo, t + 64 * j, sg + 8 * j, &A0, &A1);
                a_group(hi, t + 64 * j + 32, sg + 8 * j + 4, &B0, &B1);
            }
            widen2(_mm256_add_epi16(A0, B0), &R0, &R1);
            widen2(_mm256_add_epi16(A1, B1), &R2, &R3);
            p += nb * 20;
        }
        // R0: even words of the unpacklo half, R1 odd; lane L word i of unpacklo -> row 16L + i
        alignas(32) int32_t buf[32];
        _mm256_store_si256((__m256i *) buf, R0); _mm256_store_si256((__m256i *) (buf + 8), R1);
        _mm256_store_si256((__m256i *) (buf + 16), R2); _mm256_store_si256((__m256i *) (buf + 24), R3);
        const int32_t * nneg = (const int32_t *) p;
        int32_t * o = out + (tile - tile0) * 32;
        for (int h = 0; h < 2; ++h)          // unpacklo / unpackhi
            for (int par = 0; par < 2; ++par)  // even / odd words
                for (int j = 0; j < 4; ++j)
                    for (int L = 0; L < 2; ++L) {
                        const int word = 2 * j + par;  // within the 8 words of lane L
                        const int row = 16 * L + 8 * h + word;
                        o[row] = buf[16 * h + 8 * par + 4 * L + j] + nneg[row];
                    }
        p += 128;
    }
}
