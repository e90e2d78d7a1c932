// Portable reference kernel: decodes every element through the format's addressing rule,
// so it is correct for any K, including rows that start in the middle of a 128-block.
#include "i2s-gemm.h"
#include "i2s-quants.h"

void bitnet_i2s_gemm_generic(int64_t K, const uint8_t * w, int64_t r0, int64_t r1,
                             const int8_t * a, const int32_t * a_sum, int64_t lda, int64_t ncols,
                             int32_t * out, int64_t ldo) {
    (void) a_sum;
    for (int64_t r = r0; r < r1; ++r) {
        const int64_t g0 = r * K;
        for (int64_t c = 0; c < ncols; ++c) {
            const int8_t * ac = a + c * lda;
            int32_t acc = 0;
            for (int64_t k = 0; k < K; ++k) {
                acc += bitnet_i2s_ternary(bitnet_i2s_code(w, g0 + k)) * ac[k];
            }
            out[c * ldo + (r - r0)] = acc;
        }
    }
}
