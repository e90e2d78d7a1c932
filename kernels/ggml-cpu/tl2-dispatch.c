// The TL2 kernel table of this build (lut-gemm.h says how an entry is chosen).
#include "tl2-gemm.h"

const struct bitnet_lut_kernel bitnet_tl2_kernels[] = {
#ifdef BITNET_TL2_HAVE_AVX512
    { .name = "avx512vnni", .table = bitnet_tl2_table_avx512, .gemv = bitnet_tl2_gemv_avx512,
      .gemm = bitnet_tl2_gemm_avx512 },
#endif
#ifdef BITNET_TL2_HAVE_AVXVNNI
    { .name = "avxvnni", .table = bitnet_tl2_table_avx2, .gemv = bitnet_tl2_gemv_avx2,
      .gemm = bitnet_tl2_gemm_avxvnni },
#endif
#ifdef BITNET_TL2_HAVE_AVX2
    { .name = "avx2", .table = bitnet_tl2_table_avx2, .gemv = bitnet_tl2_gemv_avx2, .gemm = bitnet_tl2_gemm_avx2 },
#endif
    { .name = "generic", .table = bitnet_tl2_table_generic, .gemv = bitnet_tl2_gemv_generic,
      .gemm = bitnet_tl2_gemm_generic },
};
const int bitnet_tl2_n_kernels = BITNET_LUT_COUNT(bitnet_tl2_kernels);
