"""numpy implementations of the ternary formats (docs/formats.md), in the style of gguf-py's quants.py.

I2_S (ggml type 36): 2-bit codes (0 -> -1, 1 -> 0, 2 -> +1), blocks of 128 elements in 32 bytes where
element e of a block sits in byte e % 32 at bit shift 6 - 2 * (e // 32); after the n/4 code bytes a
32-byte tail whose first 4 bytes are the little-endian f32 per-tensor scale.
"""

from __future__ import annotations

import numpy as np

from .constants import I2_S_TAIL_BYTES, QK_I2_S


class I2SFormatError(ValueError):
    """A tensor cannot be stored as I2_S, or I2_S bytes are malformed."""


def i2s_nbytes(n_elements: int) -> int:
    return n_elements // 4 + I2_S_TAIL_BYTES


def ternarize(w: np.ndarray) -> tuple[np.ndarray, float]:
    """absmean ternarization (BitNet b1.58): s = max(mean|w|, 1e-5), t = clamp(round(w/s), -1, 1).

    Computed as transformers' BitNet weight_quant does (w * (1/s), round half to even; see absmean_ternarize).
    A tensor that is already s*{-1,0,1} keeps its magnitude exactly (round-tripping f32 GGUFs).
    """
    w = np.asarray(w, dtype=np.float32)
    a = np.abs(w)
    amax = float(a.max()) if a.size else 0.0
    if a.size and bool(np.all((a == 0) | (a >= np.float32(amax) * np.float32(1.0 - 1e-5)))):
        return np.sign(w).astype(np.int8), amax
    return absmean_ternarize(w)


def absmean_ternarize(w: np.ndarray) -> tuple[np.ndarray, float]:
    """transformers' WeightQuant: s = max(mean|w|, 1e-5), t = clamp(round_half_even(w * (1/s)), -1, 1).

    mean|w| is accumulated in float64 and rounded to float32 (the C quantizer does the same, so both agree bit
    for bit); everything after it is float32.
    """
    w = np.asarray(w, dtype=np.float32)
    mean = np.float32(np.abs(w).astype(np.float64).mean()) if w.size else np.float32(0)
    scale = np.float32(max(mean, np.float32(1e-5)))
    inv = np.float32(1.0) / scale
    t = np.clip(np.rint(w * inv), -1, 1).astype(np.int8)
    return t, float(scale)


class I2S:
    """Whole-tensor quantize/dequantize of I2_S (the scale is per tensor, so there is no per-row form)."""

    @staticmethod
    def pack(t: np.ndarray, scale: float) -> np.ndarray:
        """Pack ternary values t (any shape, row-major, values in {-1,0,1}) with their scale."""
        flat = np.asarray(t).reshape(-1)
        n = flat.size
        if n % QK_I2_S != 0:
            raise I2SFormatError(f"I2_S needs a multiple of {QK_I2_S} elements, got {n}")
        if flat.size and (flat.min() < -1 or flat.max() > 1):
            raise I2SFormatError("I2_S values must be in {-1, 0, 1}")
        codes = (flat.astype(np.int16) + 1).astype(np.uint8).reshape(-1, 4, 32)  # [block, group, byte]
        shifts = np.array([6, 4, 2, 0], dtype=np.uint8).reshape(1, 4, 1)
        packed = np.bitwise_or.reduce(codes << shifts, axis=1).astype(np.uint8).reshape(-1)
        tail = np.zeros(I2_S_TAIL_BYTES, dtype=np.uint8)
        tail[:4] = np.frombuffer(np.float32(scale).astype("<f4").tobytes(), dtype=np.uint8)
        return np.concatenate([packed, tail])

    @staticmethod
    def quantize(w: np.ndarray) -> np.ndarray:
        t, scale = ternarize(w)
        return I2S.pack(t, scale)

    @staticmethod
    def unpack(data: np.ndarray, n_elements: int) -> tuple[np.ndarray, float]:
        """Return (ternary values as int8 of n_elements, scale). Code 3 reads as 0."""
        data = np.asarray(data, dtype=np.uint8).reshape(-1)
        if data.size != i2s_nbytes(n_elements):
            raise I2SFormatError(f"I2_S data of {n_elements} elements must be {i2s_nbytes(n_elements)} bytes, got {data.size}")
        if n_elements % QK_I2_S != 0:
            raise I2SFormatError(f"I2_S needs a multiple of {QK_I2_S} elements, got {n_elements}")
        q = data[: n_elements // 4].reshape(-1, 1, 32)
        shifts = np.array([6, 4, 2, 0], dtype=np.uint8).reshape(1, 4, 1)
        codes = ((q >> shifts) & 3).reshape(-1)
        values = np.array([-1, 0, 1, 0], dtype=np.int8)[codes]
        scale = float(data[n_elements // 4 : n_elements // 4 + 4].view("<f4")[0])
        return values, scale

    @staticmethod
    def dequantize(data: np.ndarray, n_elements: int) -> np.ndarray:
        t, scale = I2S.unpack(data, n_elements)
        return t.astype(np.float32) * np.float32(scale)
