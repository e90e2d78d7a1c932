"""The lookup-table mat-mul as TL kernels compute it, in numpy: tables of exact int16 sums of int8 activations,
looked up by the stored indices, accumulated in int16 within a bounded block, widened to int32 per block.
It must give the same integers as the plain ternary dot product (docs/formats.md §3, §5)."""

from __future__ import annotations

import numpy as np

from bitnet_gguf.formats.quants import TL1, TL2

TL2_BLOCK_GROUPS = 80  # int16 block: 80 groups x 381 (the largest |entry|) = 30480 <= 32767
TL1_BLOCK_PAIRS = 128  # 128 pairs x 254 = 32512


def _int16_block_sums(parts: np.ndarray, block: int) -> np.ndarray:
    """Sum int16 contributions [..., n] in blocks of `block` with int16 wrap-around (as the kernels do), then
    widen; any overflow inside a block would make the result differ from the exact sum."""
    out = np.zeros(parts.shape[:-1], dtype=np.int32)
    for b0 in range(0, parts.shape[-1], block):
        acc = np.zeros(parts.shape[:-1], dtype=np.int16)
        for j in range(b0, min(b0 + block, parts.shape[-1])):
            acc = (acc + parts[..., j]).astype(np.int16)  # wraps like the int16 lanes
        out += acc
    return out


def tl2_tables(q: np.ndarray, groups: int) -> np.ndarray:
    """int16 [groups, 16] per token: entry |v| = the dot of (w0, w1, w2) with 9*w0 + 3*w1 + w2 = |v| and the
    group's three activations (entries 14 and 15 zero)."""
    a = np.zeros(3 * groups, dtype=np.int32)
    a[: q.size] = q
    a = a.reshape(groups, 3)
    e = np.zeros((groups, 16), dtype=np.int32)
    e[:, :14] = a @ TL2.weights_of(np.arange(14)).T.astype(np.int32)
    return e.astype(np.int16)


def tl2_matmul_int(data: np.ndarray, rows: int, cols: int, q: np.ndarray) -> np.ndarray:
    """Integer dot products [n, rows] of TL2 weights with int8 activations q [n, cols], through the tables."""
    g = TL2.groups(cols)
    mag, neg, _ = TL2.fields(data, rows, cols)  # [tile, group, row]
    out = np.empty((q.shape[0], rows), dtype=np.int32)
    for c, qc in enumerate(q):
        e = tl2_tables(qc, g)  # [groups, 16]
        looked = e[np.arange(g)[None, :, None], mag]  # [tile, groups, row]
        parts = np.where(neg, -looked, looked).astype(np.int16).transpose(0, 2, 1)  # [tile, row, groups]
        out[c] = _int16_block_sums(parts, TL2_BLOCK_GROUPS).reshape(-1)[:rows]
    return out


def tl1_matmul_int(data: np.ndarray, rows: int, cols: int, q: np.ndarray) -> np.ndarray:
    """The same for TL1: per pair of activations a 9-entry table indexed by 3*w0 + w1 + 4."""
    pairs = -(-cols // 2)
    idx, _ = TL1.indices(data, rows, cols)  # [tile, pair, row]
    out = np.empty((q.shape[0], rows), dtype=np.int32)
    for c, qc in enumerate(q):
        a = np.zeros(2 * pairs, dtype=np.int32)
        a[:cols] = qc
        a = a.reshape(pairs, 2)
        e = np.zeros((pairs, 16), dtype=np.int32)
        e[:, :9] = a @ TL1.weights_of(np.arange(9)).T.astype(np.int32)
        parts = e.astype(np.int16)[np.arange(pairs)[None, :, None], idx].transpose(0, 2, 1)
        out[c] = _int16_block_sums(parts, TL1_BLOCK_PAIRS).reshape(-1)[:rows]
    return out
