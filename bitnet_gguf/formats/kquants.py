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
# where a Q6_K block's 16 int8 sub-block scales and its f16 d start (after ql: 128 bytes, qh: 64)
Q6_K_SCALES_AT = QK_K // 2 + QK_K // 4
Q6_K_D_AT = Q6_K_SCALES_AT + QK_K // 16
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


# ---- Q4_K (quantize_row_q4_K_ref): llama-quantize's token_embd type for TQ1_0 / TQ2_0 files ----------------------
Q4_K_BLOCK_BYTES = 2 + 2 + 12 + QK_K // 2  # d, dmin (f16), 6-bit scales and mins, 4-bit levels
Q4_SUB = 32  # elements per sub-block (one 6-bit scale and min each)
Q4_NMAX = 15


def _seq_sum(terms: np.ndarray) -> np.ndarray:
    """sum over axis 0, one element after the other like a C loop (numpy's sum is pairwise)."""
    acc = terms[0].copy()
    for i in range(1, terms.shape[0]):
        acc += terms[i]
    return acc


def make_qkx2_quants(x: np.ndarray, w: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """ggml's make_qkx2_quants(32, 15, x, w, L, &the_min, Laux, -1.0f, 0.1f, 20, false) for every column of x.

    x, w: [32, n] (element-major). Returns (scale [n], the_min [n], L [32, n] in 0..15): a min-offset fit
    chosen among 21 trial scales by weighted least squares, every float32 step in the C order."""
    mn = np.minimum(x.min(axis=0), F(0.0))
    mx = x.max(axis=0)
    sum_w = _seq_sum(w)
    sum_x = _seq_sum(w * x)
    flat = mx == mn  # every value equal (and >= 0): levels 0, scale 0
    span = np.where(flat, F(1.0), mx - mn)
    iscale = F(Q4_NMAX) / span
    scale = F(1.0) / iscale
    levels = np.clip(_nearest_int(iscale * (x - mn)), 0, Q4_NMAX)
    diff = (scale * levels.astype(F) + mn) - x
    best = _seq_sum(w * (diff * diff))
    for step in range(21):
        # the C loop keeps using `min`, which an accepted trial replaces: span and offsets follow it
        span = np.where(flat, F(1.0), mx - mn)
        iscale = ((F(-1.0) + F(0.1) * F(step)) + F(Q4_NMAX)) / span
        laux = np.clip(_nearest_int(iscale * (x - mn)), 0, Q4_NMAX)
        lf = laux.astype(F)
        wl = w * lf
        sum_l, sum_l2, sum_xl = _seq_sum(wl), _seq_sum(wl * lf), _seq_sum(wl * x)
        det = sum_w * sum_l2 - sum_l * sum_l
        ok = det > 0
        det = np.where(ok, det, F(1.0))
        this_scale = (sum_w * sum_xl - sum_x * sum_l) / det
        this_min = (sum_l2 * sum_x - sum_l * sum_xl) / det
        pos = this_min > 0
        this_min = np.where(pos, F(0.0), this_min)
        this_scale = np.where(pos, sum_xl / np.where(sum_l2 != 0, sum_l2, F(1.0)), this_scale)
        diff = (this_scale * lf + this_min) - x
        cur = _seq_sum(w * (diff * diff))
        better = ok & (cur < best) & ~flat
        if better.any():
            levels[:, better] = laux[:, better]
            best = np.where(better, cur, best)
            scale = np.where(better, this_scale, scale)
            mn = np.where(better, this_min, mn)
    scale = np.where(flat, F(0.0), scale)
    levels[:, flat] = 0
    return scale.astype(F), (-mn).astype(F), levels


class Q4K:
    """Q4_K: super-blocks of 256 values = 8 sub-blocks of 32 with 4-bit levels, a 6-bit scale and min per
    sub-block and f16 d / dmin per super-block (144 bytes)."""

    @staticmethod
    def quantize_blocks(x: np.ndarray) -> np.ndarray:
        """x [nb, 256] float32 -> [nb, 144] uint8."""
        with np.errstate(over="ignore", invalid="ignore", divide="ignore"):
            return Q4K._quantize_blocks(x)

    @staticmethod
    def _quantize_blocks(x: np.ndarray) -> np.ndarray:
        nb = x.shape[0]
        n_sub = QK_K // Q4_SUB
        sub = np.ascontiguousarray(x.reshape(nb * n_sub, Q4_SUB).T)  # [32, nb * 8]
        av_x = np.sqrt(_seq_sum(sub * sub) / F(32.0))
        w = av_x + np.abs(sub)
        scales, mins, levels = make_qkx2_quants(sub, w)
        scales, mins = scales.reshape(nb, n_sub), mins.reshape(nb, n_sub)
        levels = levels.T.reshape(nb, n_sub, Q4_SUB)

        # max over sub-blocks, starting from 0 (scale > max_scale, strictly, as in C)
        max_scale = np.maximum(scales.max(axis=1), F(0.0))
        max_min = np.maximum(mins.max(axis=1), F(0.0))
        inv_scale = np.where(max_scale > 0, F(63.0) / np.where(max_scale > 0, max_scale, F(1.0)), F(0.0))
        inv_min = np.where(max_min > 0, F(63.0) / np.where(max_min > 0, max_min, F(1.0)), F(0.0))
        # uint8_t ls = nearest_int(...): the int is truncated to 8 bits before MIN(63, ls)
        ls = np.minimum(_nearest_int(inv_scale[:, None] * scales) & 0xFF, 63).astype(np.uint8)
        lm = np.minimum(_nearest_int(inv_min[:, None] * mins) & 0xFF, 63).astype(np.uint8)
        packed = np.zeros((nb, 12), dtype=np.uint8)
        packed[:, 0:4] = ls[:, :4]
        packed[:, 4:8] = lm[:, :4]
        packed[:, 8:12] = (ls[:, 4:] & 0xF) | ((lm[:, 4:] & 0xF) << 4)
        packed[:, 0:4] |= (ls[:, 4:] >> 4) << 6
        packed[:, 4:8] |= (lm[:, 4:] >> 4) << 6
        d16 = (max_scale / F(63.0)).astype(np.float16)
        dmin16 = (max_min / F(63.0)).astype(np.float16)

        # levels again from the rounded scales; a sub-block whose scale rounds to 0 keeps make_qkx2_quants' levels
        d = d16.astype(F)[:, None] * ls.astype(F)
        dm = dmin16.astype(F)[:, None] * lm.astype(F)
        nz = d != 0
        xs = x.reshape(nb, n_sub, Q4_SUB)
        q = np.clip(_nearest_int((xs + dm[:, :, None]) / np.where(nz, d, F(1.0))[:, :, None]), 0, Q4_NMAX)
        lv = np.where(nz[:, :, None], q, levels).astype(np.uint8).reshape(nb, QK_K // 64, 2, 32)
        qs = (lv[:, :, 0] | (lv[:, :, 1] << 4)).reshape(nb, QK_K // 2)
        head = np.stack([d16, dmin16], axis=1).view(np.uint8)
        return np.concatenate([head, packed, qs], axis=1)

    @classmethod
    def quantize(cls, x: np.ndarray, blocks_per_chunk: int = 1024) -> np.ndarray:
        """The whole array: shape (..., n) -> (..., n // 256 * 144) uint8."""
        x = np.asarray(x)
        if x.shape[-1] % QK_K:
            raise ValueError(f"Q4_K needs rows whose length is a multiple of {QK_K}, got {x.shape[-1]}")
        flat = x.reshape(-1, QK_K).astype(F)
        if not np.isfinite(flat).all():
            raise ValueError("Q4_K input has NaN or infinite values")
        parts = [cls.quantize_blocks(flat[b:b + blocks_per_chunk]) for b in range(0, flat.shape[0], blocks_per_chunk)]
        data = np.concatenate(parts) if parts else np.zeros((0, Q4_K_BLOCK_BYTES), np.uint8)
        return data.reshape(*x.shape[:-1], x.shape[-1] // QK_K * Q4_K_BLOCK_BYTES)
