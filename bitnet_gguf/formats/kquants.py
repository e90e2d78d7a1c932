"""numpy encoder for ggml's Q6_K, byte-identical to ggml's quantize_row_q6_K_ref.

That is what llama-quantize writes for Q6_K without an importance matrix (the default lm_head / token
embedding type of I2_S files, docs/bench/README.md). gguf-py decodes Q6_K but has no encoder.

Exactness: ggml-base is built for plain x86-64 (no FMA contraction), so every float32 operation below is
done in the same order with the same rounding as the C code, sums included (sequential, never pairwise).
"""

from __future__ import annotations

from collections.abc import Iterator

import numpy as np

QK_K = 256
Q6_K_BLOCK_BYTES = QK_K // 2 + QK_K // 4 + QK_K // 16 + 2  # ql, qh, scales, d (f16)
GROUP_MAX_EPS = np.float32(1e-15)
SUB = 16  # elements per sub-block (one int8 scale each)
NMAX = 32
F = np.float32


def _nearest_int(x: np.ndarray) -> np.ndarray:
    """ggml's nearest_int: add 1.5*2^23 and read the mantissa (round half to even, as C does it)."""
    bits = (x.astype(F, copy=False) + F(12582912.0)).view(np.int32)
    return (bits & 0x007FFFFF) - 0x00400000


def _weighted_sums(x: np.ndarray, w: np.ndarray, lf: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """sum(w*x*l) and sum(w*l*l) over each row, one element after the other like the C loop."""
    # x, w, lf are [16, n] (element-major) so that each step reads contiguous rows
    wxl = (w * x) * lf
    wll = (w * lf) * lf
    sumlx = np.zeros(x.shape[1], dtype=F)
    suml2 = np.zeros(x.shape[1], dtype=F)
    for i in range(x.shape[0]):
        sumlx += wxl[i]
        suml2 += wll[i]
    return sumlx, suml2


def _levels(iscale: np.ndarray, x: np.ndarray) -> np.ndarray:
    return np.clip(_nearest_int(iscale * x), -NMAX, NMAX - 1)


def make_qx_quants(x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """ggml's make_qx_quants(16, 32, x, L, rmse_type=1, NULL) for every row of x [n, 16].

    Returns (scale per row as float32, L [n, 16] in 0..63): the best of 19 trial scales by weighted
    (x^2) least squares.
    """
    n = x.shape[0]
    mx = x[np.arange(n), np.argmax(np.abs(x), axis=1)]  # first element of largest |x|, sign kept
    live = np.abs(mx) >= GROUP_MAX_EPS
    mx = np.where(live, mx, F(1.0))  # dead rows: any divisor, their result is forced to 0 below
    x = np.ascontiguousarray(x.T)
    w = x * x

    lv = _levels(F(-NMAX) / mx, x)
    levels = lv + NMAX
    sumlx, suml2 = _weighted_sums(x, w, lv.astype(F))
    scale = np.zeros(n, dtype=F)
    np.divide(sumlx, suml2, out=scale, where=suml2 != 0)
    best = scale * sumlx
    for step in range(-9, 10):
        if step == 0:
            continue
        iscale = -(F(NMAX) + F(0.1) * F(step)) / mx
        lv = _levels(iscale, x)
        sumlx, suml2 = _weighted_sums(x, w, lv.astype(F))
        better = (suml2 > 0) & (sumlx * sumlx > best * suml2)
        if better.any():
            levels[:, better] = lv[:, better] + NMAX
            scale[better] = sumlx[better] / suml2[better]
            best[better] = scale[better] * sumlx[better]
    scale[~live] = 0
    levels[:, ~live] = 0
    return scale, np.ascontiguousarray(levels.T)


class Q6K:
    """Q6_K: super-blocks of 256 values = 16 sub-blocks of 16 with 6-bit levels, an int8 scale per
    sub-block and an f16 scale per super-block (210 bytes)."""

    @staticmethod
    def quantize_blocks(x: np.ndarray) -> np.ndarray:
        """x [nb, 256] float32 -> [nb, 210] uint8."""
        # huge finite inputs overflow the weights x*x to inf/NaN exactly as in C; the bytes still match
        with np.errstate(over="ignore", invalid="ignore", divide="ignore"):
            return Q6K._quantize_blocks(x)

    @staticmethod
    def _quantize_blocks(x: np.ndarray) -> np.ndarray:
        nb = x.shape[0]
        sub = x.reshape(nb * (QK_K // SUB), SUB)
        scales, levels = make_qx_quants(sub)
        scales = scales.reshape(nb, QK_K // SUB)
        levels = levels.reshape(nb, QK_K // SUB, SUB)

        # first sub-block of largest |scale|; a NaN scale (from overflowing squares) never wins, as in C
        abs_scales = np.abs(scales)
        max_scale = scales[np.arange(nb), np.argmax(np.where(np.isnan(abs_scales), F(-1.0), abs_scales), axis=1)]
        live = np.abs(max_scale) >= GROUP_MAX_EPS
        iscale = F(-128.0) / np.where(live, max_scale, F(1.0))
        d16 = (F(1.0) / iscale).astype(np.float16)
        sc = np.minimum(127, _nearest_int(iscale[:, None] * scales)).astype(np.int8)

        # levels again from the rounded scales; a sub-block whose scale rounds to 0 keeps its first levels
        d = d16.astype(F)[:, None] * sc.astype(F)
        nz = d != 0
        xs = x.reshape(nb, QK_K // SUB, SUB)
        q = np.clip(_nearest_int(xs / np.where(nz, d, F(1.0))[:, :, None]), -NMAX, NMAX - 1) + NMAX
        levels = np.where(nz[:, :, None], q, levels).astype(np.uint8)

        # ql: low nibbles, quarters 0|2 and 1|3 of each 128-half; qh: the high 2 bits of all four quarters
        lv = levels.reshape(nb, 2, 4, 32)
        ql = np.concatenate([(lv[:, :, 0] & 15) | ((lv[:, :, 2] & 15) << 4),
                             (lv[:, :, 1] & 15) | ((lv[:, :, 3] & 15) << 4)], axis=2).reshape(nb, 128)
        qh = ((lv[:, :, 0] >> 4) | ((lv[:, :, 1] >> 4) << 2) | ((lv[:, :, 2] >> 4) << 4)
              | ((lv[:, :, 3] >> 4) << 6)).reshape(nb, 64)
        out = np.concatenate([ql, qh, sc.view(np.uint8), d16.reshape(nb, 1).view(np.uint8)], axis=1)
        out[~live] = 0
        return out

    @classmethod
    def quantize_chunks(cls, x: np.ndarray, blocks_per_chunk: int = 1024) -> Iterator[np.ndarray]:
        """Encode a float array whose last axis is a multiple of 256, a bounded number of blocks at a time
        (1024 keeps the working arrays in cache: 2.5x faster than 16384)."""
        x = np.asarray(x)
        if x.shape[-1] % QK_K:
            raise ValueError(f"Q6_K needs rows whose length is a multiple of {QK_K}, got {x.shape[-1]}")
        flat = x.reshape(-1, QK_K)
        for b0 in range(0, flat.shape[0], blocks_per_chunk):
            chunk = flat[b0:b0 + blocks_per_chunk].astype(F)
            if not np.isfinite(chunk).all():
                raise ValueError("Q6_K input has NaN or infinite values")
            yield cls.quantize_blocks(chunk).reshape(-1)

    @classmethod
    def quantize(cls, x: np.ndarray) -> np.ndarray:
        """The whole array: shape (..., n) -> (..., n // 256 * 210) uint8."""
        x = np.asarray(x)
        data = np.concatenate(list(cls.quantize_chunks(x))) if x.size else np.zeros(0, np.uint8)
        return data.reshape(*x.shape[:-1], x.shape[-1] // QK_K * Q6_K_BLOCK_BYTES)
