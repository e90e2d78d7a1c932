// Software prefetch for weights that a token streams once from memory (N = 1 mat-muls). The hardware
// prefetchers alone leave DRAM bandwidth unused on one core's stream; asking for the bytes one DRAM latency
// ahead gave tg32 +19 % (I2_S, docs/bench/prefetch-distance.md) and +10-16 % for ggml's own Q6_K lm_head
// (docs/bench/tg-ceiling.md). Past the end of a tensor a prefetch is harmless: it never faults.
#pragma once

#include <stddef.h>

// bytes ahead of the current read (-D to measure other distances)
#ifndef BITNET_STREAM_PREFETCH
#    define BITNET_STREAM_PREFETCH 2048
#endif

// the hook patch 0026 calls before each row dot product of a one-column mat-mul of any ggml type: the bytes
// BITNET_STREAM_PREFETCH past the row, for the row's length
static inline void bitnet_prefetch_ahead(const void * row, size_t row_bytes) {
#if defined(__GNUC__) || defined(__clang__)
    const char * p = (const char *) row + BITNET_STREAM_PREFETCH;
    for (size_t off = 0; off < row_bytes; off += 64) {
        __builtin_prefetch(p + off, 0, 3);
    }
#else
    (void) row;
    (void) row_bytes;
#endif
}
