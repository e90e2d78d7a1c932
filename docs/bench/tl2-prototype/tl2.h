// TL2 prototype (standalone, not project code). Integer contract, as I2_S:
//   out[r] = sum_k t(r,k) * q[k]  exactly in int32, t in {-1,0,1}, q int8 (|q| <= 127)
#pragma once
#include <stdint.h>
#include <stddef.h>

#define TL2_BM 64   // rows per tile
#define TL2_BK 80   // groups of 3 per int16 block: 80 * 381 = 30480 <= 32767; a multiple of 8 keeps blocks 64-byte aligned
#define TL2W_BK 84  // same bound, multiple of 3 (triples)

// ---- TL2b: the brief's layout (4-bit |v| nibbles + 1 sign bit per group, 5 bits / 3 weights) ----
// per tile of 64 rows, groups padded to a multiple of 8, in 320-byte chunks of 8 groups (one stream):
//   4 x 64 index bytes: byte r of pair j = |v| of group 2j (low nibble), 2j+1 (high nibble), row r
//   8 x 8 sign bytes: 64 sign bits per group, in the int16-lane order that unpack{lo,hi}_epi8 give:
//   bit i < 32 -> row 16*(i/8) + i%8, bit 32+i -> row 16*(i/8) + 8 + i%8
// int16 blocks of TL2_BK groups (a multiple of 8). table: 32 bytes per group: 16 low bytes, 16 high bytes of e[|v|] (int16), e[14] = e[15] = 0
size_t tl2b_bytes(int64_t M, int64_t K);
int64_t tl2_groups(int64_t K);        // ceil(K/3) rounded up to even (TL2b) -- table length in groups
void tl2b_pack(const int8_t * t, int64_t M, int64_t K, uint8_t * dst);
void tl2b_table(const int8_t * q, int64_t K, uint8_t * T);           // q padded: readable to 3*G+64, zero past K
void tl2b_table_range(const int8_t * q, int64_t g0, int64_t g1, uint8_t * T);  // groups [g0,g1), g0 % 10 == 0
void tl2b_gemv(int64_t K, const uint8_t * w, int64_t tile0, int64_t tile1, const uint8_t * T, int32_t * out);

// ---- TL2w: 5-bit signed index v+13 per group, 3 per uint16 (bits 0-4, 5-9, 10-14): 16 bits / 9 weights --
// per tile of 64 rows, per K block of nb <= 84 groups (multiple of 3): nb/3 x (32 + 32) words (rows 0-31, 32-63)
// table: 64 bytes per group: int16 e[v+13] for v in -13..13, zeros above -> one vpermw per 32 rows
size_t tl2w_bytes(int64_t M, int64_t K);
int64_t tl2w_groups(int64_t K);
void tl2w_pack(const int8_t * t, int64_t M, int64_t K, uint8_t * dst);
void tl2w_table_range(const int8_t * q, int64_t g0, int64_t g1, uint8_t * T);
void tl2w_gemv(int64_t K, const uint8_t * w, int64_t tile0, int64_t tile1, const uint8_t * T, int32_t * out);

void tl2_init(void);

// ---- TL2a: AVX2 (see tl2_avx2.c): 32-row tiles, natural-order sign bits, + per-row negative counts ----
size_t tl2a_bytes(int64_t M, int64_t K);
void tl2a_pack(const int8_t * t, int64_t M, int64_t K, uint8_t * dst);
void tl2a_table_range(const int8_t * q, int64_t g0, int64_t g1, uint8_t * T);
void tl2a_gemv(int64_t K, const uint8_t * w, int64_t tile0, int64_t tile1, const uint8_t * T, int32_t * out);
