// The TL1 kernel table of this build (lut-gemm.h says how an entry is chosen).
#include "tl1-gemm.h"

const struct bitnet_lut_kernel bitnet_tl1_kernels[] = {
#ifdef BITNET_TL1_HAVE_DOTPROD
    // the lookup GEMV has no use for sdot (it sums 4 bytes of different rows); only the GEMM differs
    { .name = "dotprod", .table = bitnet_tl1_table_neon, .gemv = bitnet_tl1_gemv_neon,
      .gemm = bitnet_tl1_gemm_dotprod },
#endif
#ifdef BITNET_TL1_HAVE_NEON
    { .name = "neon", .table = bitnet_tl1_table_neon, .gemv = bitnet_tl1_gemv_neon, .gemm = bitnet_tl1_gemm_neon },
#endif
    { .name = "generic", .table = bitnet_tl1_table_generic, .gemv = bitnet_tl1_gemv_generic,
      .gemm = bitnet_tl1_gemm_generic },
};
const int bitnet_tl1_n_kernels = BITNET_LUT_COUNT(bitnet_tl1_kernels);
