// The I2_S kernel table of this build and the process-wide choice among its entries. Arch-specific
// kernels register here (see arch/x86 and arch/arm); the generic kernel is the fallback and the test
// oracle.
#include "i2s-gemm.h"
#include "i2s-kernels.h"
#include "i2s-simd.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#if defined(_MSC_VER) && !defined(__clang__)
// MSVC's C mode has no <stdatomic.h> (without /experimental:c11atomics): the same with Interlocked*
#  define WIN32_LEAN_AND_MEAN
#  include <windows.h>
typedef volatile LONG pref_t;
#  define PREF_INIT(v)              (v)
#  define pref_load(p)              ((int) InterlockedCompareExchange((p), 0, 0))
#  define pref_store(p, v)          ((void) InterlockedExchange((p), (v)))
#  define pref_set_once(p, from, v) (InterlockedCompareExchange((p), (v), (from)) == (from))
#else
#  include <stdatomic.h>
typedef atomic_int pref_t;
#  define PREF_INIT(v) (v)
// relaxed is enough: the index is the only thing published (the table is constant data)
#  define pref_load(p)     atomic_load_explicit((p), memory_order_relaxed)
#  define pref_store(p, v) atomic_store_explicit((p), (v), memory_order_relaxed)
static bool pref_set_once(pref_t * p, int from, int v) {
    return atomic_compare_exchange_strong_explicit(p, &from, v, memory_order_relaxed, memory_order_relaxed);
}
#endif

// fastest first: the default preference is entry 0, and a K that the preferred kernel cannot do takes
// the first entry that can. Variants without their own activation quantizer carry their ISA's best one.
const struct bitnet_i2s_kernel bitnet_i2s_kernels[] = {
#ifdef BITNET_I2S_HAVE_AVX512VNNI
    { .name = "avx512vnni", .k_align = BITNET_I2S_SIMD_K_ALIGN,
      .quantize_activations = bitnet_i2s_quantize_activations_avx512, .gemm = bitnet_i2s_gemm_avx512vnni,
      .pack_cols = BITNET_I2S_AVX512_PACK_COLS, .pack = bitnet_i2s_pack_avx512vnni,
      .gemm_packed = bitnet_i2s_gemm_packed_avx512vnni },
#endif
#ifdef BITNET_I2S_HAVE_AVXVNNI
    { .name = "avxvnni", .k_align = BITNET_I2S_SIMD_K_ALIGN,
      .quantize_activations = bitnet_i2s_quantize_activations_avx2, .gemm = bitnet_i2s_gemm_avxvnni },
#endif
#ifdef BITNET_I2S_HAVE_AVX2
    { .name = "avx2", .k_align = BITNET_I2S_SIMD_K_ALIGN,
      .quantize_activations = bitnet_i2s_quantize_activations_avx2, .gemm = bitnet_i2s_gemm_avx2 },
#endif
#ifdef BITNET_I2S_HAVE_DOTPROD
    { .name = "dotprod", .k_align = BITNET_I2S_SIMD_K_ALIGN,
      .quantize_activations = bitnet_i2s_quantize_activations_neon, .gemm = bitnet_i2s_gemm_dotprod },
#endif
#ifdef BITNET_I2S_HAVE_NEON
    { .name = "neon", .k_align = BITNET_I2S_SIMD_K_ALIGN,
      .quantize_activations = bitnet_i2s_quantize_activations_neon, .gemm = bitnet_i2s_gemm_neon },
#endif
    { .name = "generic", .k_align = 1,
      .quantize_activations = bitnet_i2s_quantize_activations_generic, .gemm = bitnet_i2s_gemm_generic },
};
#define N_KERNELS ((int) (sizeof(bitnet_i2s_kernels) / sizeof(bitnet_i2s_kernels[0])))
const int bitnet_i2s_n_kernels = N_KERNELS;

const struct bitnet_i2s_kernel * bitnet_i2s_kernel_find(const char * name) {
    for (int i = 0; i < N_KERNELS; ++i) {
        if (strcmp(bitnet_i2s_kernels[i].name, name) == 0) {
            return &bitnet_i2s_kernels[i];
        }
    }
    return NULL;
}

#define UNRESOLVED (-1)
static pref_t preferred = PREF_INIT(UNRESOLVED);  // index into bitnet_i2s_kernels

// the preference BITNET_I2S_KERNEL asks for; *unknown is set to the name when this build lacks it
static int read_env(const char ** unknown) {
    const char * want = getenv("BITNET_I2S_KERNEL");
    *unknown = NULL;
    if (want == NULL || *want == '\0') {
        return 0;
    }
    const struct bitnet_i2s_kernel * k = bitnet_i2s_kernel_find(want);
    if (k == NULL) {
        *unknown = want;
        return 0;
    }
    return (int) (k - bitnet_i2s_kernels);
}

static void warn_unknown(const char * want) {
    char have[128] = "";
    for (int i = 0; i < N_KERNELS; ++i) {
        strncat(have, " ", sizeof(have) - strlen(have) - 1);
        strncat(have, bitnet_i2s_kernels[i].name, sizeof(have) - strlen(have) - 1);
    }
    fprintf(stderr, "bitnet: BITNET_I2S_KERNEL=%s is not a kernel of this build (it has:%s); using %s\n",
            want, have, bitnet_i2s_kernels[0].name);
}

// first use: every racing thread reads the same environment, one of them publishes (and warns)
static int resolve_once(void) {
    const char * unknown;
    const int i = read_env(&unknown);
    if (pref_set_once(&preferred, UNRESOLVED, i) && unknown != NULL) {
        warn_unknown(unknown);
    }
    return pref_load(&preferred);
}

const struct bitnet_i2s_kernel * bitnet_i2s_kernel_reload(void) {
    const char * unknown;
    const int i = read_env(&unknown);
    pref_store(&preferred, i);
    if (unknown != NULL) {
        warn_unknown(unknown);
    }
    return &bitnet_i2s_kernels[i];
}

static bool handles(const struct bitnet_i2s_kernel * k, int64_t K) {
    return K > 0 && K % k->k_align == 0;
}

const struct bitnet_i2s_kernel * bitnet_i2s_kernel_preferred(void) {
    const int i = pref_load(&preferred);
    return &bitnet_i2s_kernels[i == UNRESOLVED ? resolve_once() : i];
}

const struct bitnet_i2s_kernel * bitnet_i2s_kernel_get(int64_t K) {
    const struct bitnet_i2s_kernel * pref = bitnet_i2s_kernel_preferred();
    if (handles(pref, K)) {
        return pref;
    }
    for (int i = 0; i < N_KERNELS - 1; ++i) {
        if (handles(&bitnet_i2s_kernels[i], K)) {
            return &bitnet_i2s_kernels[i];
        }
    }
    return &bitnet_i2s_kernels[N_KERNELS - 1];  // the generic kernel: any K (K <= 0 does nothing)
}
