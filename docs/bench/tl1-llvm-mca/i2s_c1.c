// N = 1 entry points of the project's I2_S ARM kernels (C = 1 instance of neon_rows / dot_rows), so the
// compiled output holds only the GEMV loops. The kernel source is included unmodified.
#include "arch/arm/i2s-gemm-arm.c"  // found through -I kernels/ggml-cpu
void i2s_neon_c1(int64_t K, const uint8_t * w, int64_t r0, int64_t r1, const int8_t * a, const int32_t * s, int32_t * out) {
    neon_rows(1, K, w, r0, r1, a, s, K, out, 1);
}
#ifdef BITNET_I2S_HAVE_DOTPROD
void i2s_dot_c1(int64_t K, const uint8_t * w, int64_t r0, int64_t r1, const int8_t * a, const int32_t * s, int32_t * out) {
    dot_rows(1, K, w, r0, r1, a, s, K, out, 1);
}
#endif
