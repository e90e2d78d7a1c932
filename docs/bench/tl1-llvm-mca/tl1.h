// TL1 (2 ternary weights -> one 4-bit index) GEMV for AArch64 NEON, N = 1. Own code, written from the
// description in the brief; nothing copied from bitnet.cpp / T-MAC / ik_llama.cpp.
//
// Index of a weight pair (w0, w1) in {-1,0,1}^2: idx = 3*w0 + w1 + 4 in [0, 8] (9..15 unused, look up 0).
//
// Weight layout ("tiles of 32 rows"): M % 32 == 0, K % 2 == 0, P = K/2 pairs per row.
//   tile t (rows 32t .. 32t+31), pair p: 16 bytes at w + (t*P + p)*16;
//   byte i (0..15) = idx(row 32t+i, pair p) | idx(row 32t+16+i, pair p) << 4.
//   -> K/4 bytes per row = 2 bits/weight (256 bytes per 1024 weights), same as I2_S.
//
// LUT (built per token): 32 bytes per pair at lut + 32p: bytes 0..15 = low bytes of the 16 int16 entries
//   e[idx] = (idx/3-1)*a0 + (idx%3-1)*a1 (0 for idx >= 9), bytes 16..31 = their high bytes.
//   = 16 bytes per activation. |a| <= 127 (docs/formats.md §3) => |e| <= 254, so the high byte is 0x00
//   or 0xFF: it is a sign (-1/0).
//
// Accumulation: K is cut into blocks of TL1_BLK = 128 pairs (256 activations): a block sum is at most
//   128*254 = 32512 in magnitude, so int16 lanes are exact inside a block; widened to int32 per block.
#pragma once
#include <stdint.h>

#define TL1_ROWS 32
#define TL1_BLK  128   // pairs per int16 block (<= 128: 128*254 < 32768; the sign count also needs <= 128)

void tl1_pack(const int8_t * t, int64_t M, int64_t K, uint8_t * w);          // t: M*K ternary, row-major
void tl1_build_lut_ref(const int8_t * a, int64_t K, int8_t * lut);           // scalar
void tl1_build_lut_neon(const int8_t * a, int64_t K, int8_t * lut);          // NEON, K % 16 == 0
void tl1_gemv_ref(const int8_t * t, const int8_t * a, int64_t M, int64_t K, int32_t * out);  // scalar truth
// "zip": tbl both planes, vzip back to int16, add into int16 (the classic TL1 loop)
void tl1_gemv_zip(int64_t K, const uint8_t * w, const int8_t * lut, int64_t M, int32_t * out);
// "sgn": tbl both planes; low bytes accumulate widening (uaddw) into uint16, high bytes (= -1/0 sign)
//        accumulate as int8 counts; per block int16 = lo + (sgn << 8) (exact mod 2^16), widened to int32
void tl1_gemv_sgn(int64_t K, const uint8_t * w, const int8_t * lut, int64_t M, int32_t * out);
void tl1_gemv_sgn2(int64_t K, const uint8_t * w, const int8_t * lut, int64_t M, int32_t * out);  // sgn, 2 pairs/iter
