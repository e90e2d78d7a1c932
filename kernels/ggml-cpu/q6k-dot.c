// Which Q6_K x Q8_K kernels this build's ggml-cpu calls (q6k-dot.h).
#include "q6k-dot.h"

#include "quants.h"

void bitnet_vec_dot_q6_K_q8_K(int n, float * s, size_t bs, const void * vx, size_t bx, const void * vy, size_t by,
                              int nrc) {
#ifdef BITNET_Q6K_HAVE_AVX512VNNI
    bitnet_vec_dot_q6_K_q8_K_avx512vnni(n, s, bs, vx, bx, vy, by, nrc);
#else
    ggml_vec_dot_q6_K_q8_K(n, s, bs, vx, bx, vy, by, nrc);
#endif
}

bool bitnet_one_column_rows(enum ggml_type type, int n, const void * rows, size_t row_bytes, int64_t nrows,
                            const void * y, float * out) {
#ifdef BITNET_Q6K_HAVE_AVX512VNNI
    if (type == GGML_TYPE_Q6_K) {
        bitnet_q6_K_rows_avx512vnni(n, rows, row_bytes, nrows, y, out);
        return true;
    }
#endif
    (void) type;
    (void) n;
    (void) rows;
    (void) row_bytes;
    (void) nrows;
    (void) y;
    (void) out;
    return false;
}
