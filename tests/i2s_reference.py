"""The I2_S mat-mul as docs/formats.md §3 defines it, in numpy: what the kernels are checked against."""

from __future__ import annotations

import numpy as np

from bitnet_gguf.formats.quants import I2S


def quantize_activations(x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Per-token int8 absmax over the last axis: returns (q int8, scale float32 per row)."""
    x = np.asarray(x, dtype=np.float32)
    amax = np.abs(x).max(axis=-1, keepdims=True)
    s = (np.float32(127.0) / np.maximum(amax, np.float32(1e-5))).astype(np.float32)
    q = np.clip(np.rint(x * s), -128, 127).astype(np.int8)
    return q, s[..., 0]


def i2s_matmul(data: np.ndarray, k: int, m: int, x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Weight [m rows, k cols] as I2_S bytes, x [n, k] float.

    Returns (integer dot products [n, m] as int64, float outputs [n, m]) with y = dot / s_a * s_w in float32.
    """
    t, sw = I2S.unpack(data, m * k)
    return ternary_matmul(t.reshape(m, k), sw, x)


def ternary_matmul(t: np.ndarray, sw: float, x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The same for ternary weights t [m, k] with per-tensor scale sw (what every bitnet type stores)."""
    m, k = t.shape
    q, sa = quantize_activations(x)
    dot = q.astype(np.int64) @ t.reshape(m, k).astype(np.int64).T
    y = (dot.astype(np.float32) / sa[:, None]) * np.float32(sw)
    return dot, y.astype(np.float32)
