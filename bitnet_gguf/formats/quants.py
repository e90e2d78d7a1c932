"""numpy implementations of the ternary formats (docs/formats.md), in the style of gguf-py's quants.py.

I2_S (ggml type 36): 2-bit codes (0 -> -1, 1 -> 0, 2 -> +1), blocks of 128 elements in 32 bytes where
element e of a block sits in byte e % 32 at bit shift 6 - 2 * (e // 32); after the n/4 code bytes a
32-byte tail whose first 4 bytes are the little-endian f32 per-tensor scale.
"""

from __future__ import annotations

import numpy as np

from .constants import (
    I2_S_TAIL_BYTES,
    QK_I2_S,
    QK_TQ,
    TL1_TILE_ROWS,
    TL2_CHUNK_GROUPS,
    TL2_TILE_ROWS,
    TQ1_0_BLOCK_BYTES,
    TQ2_0_BLOCK_BYTES,
)


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


def _check_ternary(t: np.ndarray, what: str) -> None:
    if t.size and (t.min() < -1 or t.max() > 1):
        raise I2SFormatError(f"{what} values must be in {{-1, 0, 1}}")


def _scale_tail(scale: float) -> np.ndarray:
    """The 32-byte tail every ternary format here ends with: the f32 per-tensor scale, then zeros."""
    tail = np.zeros(I2_S_TAIL_BYTES, dtype=np.uint8)
    tail[:4] = np.frombuffer(np.float32(scale).astype("<f4").tobytes(), dtype=np.uint8)
    return tail


def _read_tail(data: np.ndarray, body: int, what: str) -> float:
    """The scale of data whose codes take `body` bytes, after checking the whole size."""
    if data.size != body + I2_S_TAIL_BYTES:
        raise I2SFormatError(f"{what} must be {body + I2_S_TAIL_BYTES} bytes, got {data.size}")
    return float(data[body:body + 4].view("<f4")[0])


_I2S_PACK_CHUNK = QK_I2_S << 15  # 4 M weights, whole 128-weight blocks


class I2S:
    """Whole-tensor quantize/dequantize of I2_S (the scale is per tensor, so there is no per-row form)."""

    @staticmethod
    def pack(t: np.ndarray, scale: float) -> np.ndarray:
        """Pack ternary values t (any shape, row-major, values in {-1,0,1}) with their scale."""
        flat = np.asarray(t).reshape(-1)
        n = flat.size
        if n % QK_I2_S != 0:
            raise I2SFormatError(f"I2_S needs a multiple of {QK_I2_S} elements, got {n}")
        _check_ternary(flat, "I2_S")
        out = np.empty(n // 4 + I2_S_TAIL_BYTES, dtype=np.uint8)
        shifts = np.array([6, 4, 2, 0], dtype=np.uint8).reshape(1, 4, 1)
        # whole blocks at a time: the temporaries stay small (a 70B FFN matrix has 201 M weights)
        for start in range(0, n, _I2S_PACK_CHUNK):
            part = flat[start:start + _I2S_PACK_CHUNK]
            codes = (part.astype(np.int16) + 1).astype(np.uint8).reshape(-1, 4, 32)  # [block, group, byte]
            out[start // 4:(start + part.size) // 4] = np.bitwise_or.reduce(codes << shifts, axis=1).reshape(-1)
        out[n // 4:] = _scale_tail(scale)
        return out

    @staticmethod
    def quantize(w: np.ndarray) -> np.ndarray:
        t, scale = ternarize(w)
        return I2S.pack(t, scale)

    @staticmethod
    def unpack(data: np.ndarray, n_elements: int) -> tuple[np.ndarray, float]:
        """Return (ternary values as int8 of n_elements, scale). Code 3 reads as 0."""
        data = np.asarray(data, dtype=np.uint8).reshape(-1)
        scale = _read_tail(data, n_elements // 4, f"I2_S data of {n_elements} elements")
        if n_elements % QK_I2_S != 0:
            raise I2SFormatError(f"I2_S needs a multiple of {QK_I2_S} elements, got {n_elements}")
        q = data[: n_elements // 4].reshape(-1, 1, 32)
        shifts = np.array([6, 4, 2, 0], dtype=np.uint8).reshape(1, 4, 1)
        codes = ((q >> shifts) & 3).reshape(-1)
        values = np.array([-1, 0, 1, 0], dtype=np.int8)[codes]
        return values, scale

    @staticmethod
    def dequantize(data: np.ndarray, n_elements: int) -> np.ndarray:
        t, scale = I2S.unpack(data, n_elements)
        return t.astype(np.float32) * np.float32(scale)


# ---- lookup-table layouts (docs/formats.md §5) ------------------------------------------------------------
# Both keep I2_S's per-tensor scale in the same 32-byte tail; rows are padded to whole tiles and K to whole
# groups with zero weights (a zero weight adds nothing, whatever the activation it meets).


def _padded(t: np.ndarray, rows: int, cols: int) -> np.ndarray:
    t = np.asarray(t)
    if t.ndim != 2:
        raise I2SFormatError(f"a lookup-table layout needs a 2-D weight, got shape {t.shape}")
    _check_ternary(t, "ternary")
    out = np.zeros((rows, cols), dtype=np.int16)
    out[: t.shape[0], : t.shape[1]] = t
    return out


def _up(n: int, m: int) -> int:
    return -(-n // m) * m


class TL1:
    """Pairs of weights along K: index 3*w0 + w1 + 4 (0..8) in 4 bits, tiles of 32 rows.

    For tile T and pair p (weights 2p, 2p+1 of a row) 16 bytes: byte i holds the index of row 32T + i in its low
    nibble and of row 32T + 16 + i in its high nibble. 2 bits per weight.
    """

    @staticmethod
    def nbytes(rows: int, cols: int) -> int:
        return _up(rows, TL1_TILE_ROWS) * _up(cols, 2) // 4 + I2_S_TAIL_BYTES

    @staticmethod
    def pack(t: np.ndarray, scale: float) -> np.ndarray:
        m, k = np.shape(t)
        mp, kp = _up(m, TL1_TILE_ROWS), _up(k, 2)
        w = _padded(t, mp, kp).reshape(mp, kp // 2, 2)
        idx = (3 * w[..., 0] + w[..., 1] + 4).astype(np.uint8)  # [rows, pairs]
        tiles = idx.reshape(mp // TL1_TILE_ROWS, 2, 16, kp // 2)  # [tile, half, i, pair]
        packed = (tiles[:, 0] | (tiles[:, 1] << 4)).transpose(0, 2, 1)  # [tile, pair, i]
        return np.concatenate([packed.reshape(-1), _scale_tail(scale)])

    @staticmethod
    def weights_of(index: np.ndarray) -> np.ndarray:
        """The pair (w0, w1) each index 0..8 stands for, as [..., 2]."""
        index = np.asarray(index, dtype=np.int16)
        return np.stack([index // 3 - 1, index % 3 - 1], axis=-1)

    @staticmethod
    def indices(data: np.ndarray, rows: int, cols: int) -> tuple[np.ndarray, float]:
        """(index [tile, pair, row in tile] as int16, scale): the stored fields, as a kernel reads them."""
        data = np.asarray(data, dtype=np.uint8).reshape(-1)
        mp, kp = _up(rows, TL1_TILE_ROWS), _up(cols, 2)
        scale = _read_tail(data, TL1.nbytes(rows, cols) - I2_S_TAIL_BYTES, "TL1 data")
        b = data[: mp * kp // 4].reshape(mp // TL1_TILE_ROWS, kp // 2, 16)
        idx = np.concatenate([b & 15, b >> 4], axis=2).astype(np.int16)
        if np.any(idx > 8):
            raise I2SFormatError("TL1 index above 8")
        return idx, scale

    @staticmethod
    def unpack(data: np.ndarray, rows: int, cols: int) -> tuple[np.ndarray, float]:
        idx, scale = TL1.indices(data, rows, cols)
        idx = idx.transpose(0, 2, 1).reshape(-1, idx.shape[1])  # [row, pair]
        w = TL1.weights_of(idx).reshape(idx.shape[0], -1)
        return w[:rows, :cols].astype(np.int8), scale


def tl2_lane_rows() -> np.ndarray:
    """Row (within a 64-row tile) of each of the 64 sign bits of a TL2 group: the order in which x86's
    unpack{lo,hi}_epi8 of the looked-up low and high bytes lays out the int16 lanes, so a kernel loads the
    bits straight into mask registers. Bit i < 32 is row 16*(i//8) + i%8, bit 32 + i is row 16*(i//8) + 8 + i%8."""
    i = np.arange(32)
    base = 16 * (i // 8) + i % 8
    return np.concatenate([base, base + 8])


class TL2:
    """Groups of 3 weights along K: v = 9*w0 + 3*w1 + w2 in [-13, 13] as a 4-bit |v| and a sign bit, tiles of
    64 rows, chunks of 8 groups. 5 bits per 3 weights (1.67 bits per weight).

    For tile T and chunk c (groups 8c .. 8c+7) 320 bytes: 4 x 64 index bytes (pair j, row r: |v| of group 8c+2j in
    the low nibble, of group 8c+2j+1 in the high nibble), then 8 x 8 sign bytes (group 8c+g: a little-endian 64-bit
    word whose bit i is set when v < 0 in row tl2_lane_rows()[i]).
    """

    @staticmethod
    def weights_of(v: np.ndarray) -> np.ndarray:
        """The three weights (w0, w1, w2) each signed group value v in [-13, 13] stands for, as [..., 3]."""
        d = np.asarray(v, dtype=np.int16) + 13  # base-3 digits of w + 1
        return np.stack([d // 9 - 1, d // 3 % 3 - 1, d % 3 - 1], axis=-1)

    @staticmethod
    def groups(cols: int) -> int:
        return _up(-(-cols // 3), TL2_CHUNK_GROUPS)

    @staticmethod
    def nbytes(rows: int, cols: int) -> int:
        return _up(rows, TL2_TILE_ROWS) // TL2_TILE_ROWS * TL2.groups(cols) // TL2_CHUNK_GROUPS * 320 + I2_S_TAIL_BYTES

    @staticmethod
    def pack(t: np.ndarray, scale: float) -> np.ndarray:
        m, k = np.shape(t)
        mp, g = _up(m, TL2_TILE_ROWS), TL2.groups(k)
        w = _padded(t, mp, 3 * g).reshape(mp, g, 3)
        v = 9 * w[..., 0] + 3 * w[..., 1] + w[..., 2]  # [rows, groups]
        n_tiles, n_chunks = mp // TL2_TILE_ROWS, g // TL2_CHUNK_GROUPS
        mag = np.abs(v).astype(np.uint8).reshape(n_tiles, TL2_TILE_ROWS, n_chunks, TL2_CHUNK_GROUPS)
        mag = mag.transpose(0, 2, 3, 1)  # [tile, chunk, group, row]
        index = mag[:, :, 0::2] | (mag[:, :, 1::2] << 4)  # [tile, chunk, pair, row]
        neg = (v < 0).reshape(n_tiles, TL2_TILE_ROWS, n_chunks, TL2_CHUNK_GROUPS).transpose(0, 2, 3, 1)
        signs = np.packbits(neg[..., tl2_lane_rows()], axis=-1, bitorder="little")  # [tile, chunk, group, 8]
        chunks = np.concatenate([index.reshape(n_tiles, n_chunks, -1), signs.reshape(n_tiles, n_chunks, -1)], axis=-1)
        return np.concatenate([chunks.reshape(-1), _scale_tail(scale)])

    @staticmethod
    def fields(data: np.ndarray, rows: int, cols: int) -> tuple[np.ndarray, np.ndarray, float]:
        """(|v| [tile, group, row in tile] as int16, negative [same shape] as bool, scale): the stored fields,
        as a kernel reads them."""
        data = np.asarray(data, dtype=np.uint8).reshape(-1)
        mp, g = _up(rows, TL2_TILE_ROWS), TL2.groups(cols)
        scale = _read_tail(data, TL2.nbytes(rows, cols) - I2_S_TAIL_BYTES, "TL2 data")
        n_tiles, n_chunks = mp // TL2_TILE_ROWS, g // TL2_CHUNK_GROUPS
        chunks = data[: n_tiles * n_chunks * 320].reshape(n_tiles, n_chunks, 320)
        index = chunks[..., :256].reshape(n_tiles, n_chunks, 4, TL2_TILE_ROWS)
        mag = np.stack([index & 15, index >> 4], axis=3).reshape(n_tiles, g, TL2_TILE_ROWS).astype(np.int16)
        if np.any(mag > 13):
            raise I2SFormatError("TL2 index above 13")
        bits = np.unpackbits(chunks[..., 256:].reshape(n_tiles, g, 8), axis=-1, bitorder="little")
        neg = np.empty(bits.shape, dtype=bool)
        neg[..., tl2_lane_rows()] = bits == 1
        return mag, neg, scale

    @staticmethod
    def unpack(data: np.ndarray, rows: int, cols: int) -> tuple[np.ndarray, float]:
        mag, neg, scale = TL2.fields(data, rows, cols)
        v = np.where(neg, -mag, mag).transpose(0, 2, 1).reshape(-1, mag.shape[1])  # [row, group]
        w = TL2.weights_of(v).reshape(v.shape[0], -1)
        return w[:rows, :cols].astype(np.int8), scale



# ---- upstream's ternary types TQ1_0 / TQ2_0 (ggml-quants.c, block_tq1_0 / block_tq2_0 in ggml-common.h) -------
# Blocks of 256 values with their own f16 scale d = max|x| of the block; codes are lroundf(x / d) + 1 in {0, 1, 2}.
# Exactness: the same float32 operations as quantize_row_tq*_0_ref (x * (1/d), lroundf), and numpy's f16 rounding is
# ggml's (round to nearest even), so the bytes equal llama-quantize's; tests/test_convert_tq.py compares them.

F32 = np.float32


class TQFormatError(ValueError):
    """A tensor cannot be stored as TQ1_0 / TQ2_0 (no whole 256-element blocks per row)."""


def _lroundf(v: np.ndarray) -> np.ndarray:
    """C's lroundf: round half away from zero (np.rint would round 0.5 to even); v - trunc(v) is exact."""
    t = np.trunc(v)
    return (t + np.where(np.abs(v - t) >= F32(0.5), np.sign(v), F32(0))).astype(np.int32)


def _tq_blocks(x: np.ndarray, what: str) -> tuple[np.ndarray, np.ndarray]:
    """(codes [nb, 256] as uint8 in {0,1,2}, d [nb] as f16) of float values, as quantize_row_tq*_0_ref computes them."""
    x = np.asarray(x, dtype=F32).reshape(-1)
    if x.size % QK_TQ:
        raise TQFormatError(f"{what} needs whole blocks of {QK_TQ} values, got {x.size}")
    x = x.reshape(-1, QK_TQ)
    d = np.abs(x).max(axis=1) if x.size else np.zeros(0, F32)
    with np.errstate(divide="ignore"):
        inv = np.where(d != 0, F32(1.0) / d, F32(0.0)).astype(F32)  # an all-zero block: d = 0, every code 1 (zero)
    codes = (_lroundf(x * inv[:, None]) + 1).astype(np.uint8)
    return codes, d.astype(np.float16)


def _base3(digits: np.ndarray) -> np.ndarray:
    """Trits [..., n] (most significant first) as a byte in TQ1_0's fixed point: ceil(value * 256 / 243)."""
    q = np.zeros(digits.shape[:-1], dtype=np.uint16)
    for i in range(digits.shape[-1]):
        q = q * 3 + digits[..., i]
    return ((q * 256 + 242) // 243).astype(np.uint8)


def _trits(q: np.ndarray, n: int) -> np.ndarray:
    """The inverse of _base3 as ggml's dequantize_row_tq1_0 reads it: trit i = ((uint8)(q * 3^i) * 3) >> 8."""
    pow3 = np.array([1, 3, 9, 27, 81, 243], dtype=np.uint16)[:n]
    shifted = (q[..., None].astype(np.uint16) * pow3) & 0xFF
    return ((shifted * 3) >> 8).astype(np.int8)


class _TQ:
    """What TQ1_0 and TQ2_0 share: per-row block checks, the (t, s) packer and dequantization."""

    block_bytes = 0
    name = ""

    @classmethod
    def nbytes(cls, rows: int, cols: int) -> int:
        if cols % QK_TQ:
            raise TQFormatError(f"{cls.name} needs rows of whole {QK_TQ}-value blocks, got {cols} columns")
        return rows * cols // QK_TQ * cls.block_bytes

    @classmethod
    def quantize(cls, x: np.ndarray) -> np.ndarray:
        """Float values (rows whose length is a multiple of 256) -> bytes, as ggml's quantize_tq*_0."""
        codes, d = _tq_blocks(x, cls.name)
        return cls.encode(codes, d).reshape(-1)

    @classmethod
    def pack(cls, t: np.ndarray, scale: float) -> np.ndarray:
        """Ternary t [rows, cols] with the per-tensor scale s: the bytes llama-quantize writes for the F32 tensor s*t.

        Every block holding a nonzero gets d = f16(s), an all-zero block d = 0; the codes are t + 1 either way."""
        t = np.asarray(t)
        if t.ndim != 2:
            raise TQFormatError(f"{cls.name} packs a 2-D weight, got shape {t.shape}")
        cls.nbytes(*t.shape)
        _check_ternary(t, cls.name)
        return cls.quantize(t.astype(F32) * F32(scale))

    @classmethod
    def encode(cls, codes: np.ndarray, d: np.ndarray) -> np.ndarray:
        raise NotImplementedError

    @classmethod
    def decode(cls, data: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        raise NotImplementedError

    @classmethod
    def dequantize(cls, data: np.ndarray, n_elements: int) -> np.ndarray:
        data = np.asarray(data, dtype=np.uint8).reshape(-1)
        if n_elements % QK_TQ or data.size != n_elements // QK_TQ * cls.block_bytes:
            raise TQFormatError(f"{cls.name} data of {n_elements} values must be "
                                f"{n_elements // QK_TQ * cls.block_bytes} bytes, got {data.size}")
        t, d = cls.decode(data.reshape(-1, cls.block_bytes))
        return (t.astype(F32) * d.astype(F32)[:, None]).reshape(-1)


class TQ2_0(_TQ):
    """2 bits per value: block = qs[64] (byte 32c + m holds values 128c + 32n + m at bits 2n), then f16 d. 2.06 bpw."""

    block_bytes = TQ2_0_BLOCK_BYTES
    name = "TQ2_0"

    @classmethod
    def encode(cls, codes: np.ndarray, d: np.ndarray) -> np.ndarray:
        c = codes.reshape(-1, 2, 4, 32)  # [block, chunk of 128, n, m]
        shifts = (2 * np.arange(4, dtype=np.uint8)).reshape(1, 1, 4, 1)
        qs = np.bitwise_or.reduce(c << shifts, axis=2).astype(np.uint8).reshape(-1, 64)
        return np.concatenate([qs, d.reshape(-1, 1).view(np.uint8)], axis=1)

    @classmethod
    def decode(cls, blocks: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        qs = blocks[:, :64].reshape(-1, 2, 1, 32)
        codes = (qs >> (2 * np.arange(4, dtype=np.uint8)).reshape(1, 1, 4, 1)) & 3
        return codes.reshape(-1, QK_TQ).astype(np.int8) - 1, blocks[:, 64:66].copy().view(np.float16).reshape(-1)


class TQ1_0(_TQ):
    """5 trits per byte (3^5 = 243 < 256) in base-3 fixed point: block = qs[48] then qh[4] then f16 d. 1.69 bpw.

    qs[m] (m < 32) holds values m + 32n, n = 0..4 (the first the most significant trit); qs[32 + m] (m < 16) values
    160 + m + 16n; qh[j] values 240 + j + 4n, n = 0..3, shifted up one trit. A byte is ceil(v * 256 / 243) for the
    base-3 value v, so that multiplying by 3 moves the next trit into the top bits (ggml's dequantization)."""

    block_bytes = TQ1_0_BLOCK_BYTES
    name = "TQ1_0"

    @classmethod
    def encode(cls, codes: np.ndarray, d: np.ndarray) -> np.ndarray:
        c = codes.astype(np.uint16)
        a = _base3(c[:, :160].reshape(-1, 5, 32).transpose(0, 2, 1))  # [block, m, n]
        b = _base3(c[:, 160:240].reshape(-1, 5, 16).transpose(0, 2, 1))
        h = c[:, 240:].reshape(-1, 4, 4).transpose(0, 2, 1)
        qh = _base3(np.concatenate([h, np.zeros_like(h[..., :1])], axis=-1))  # q *= 3: a fifth, zero trit
        return np.concatenate([a, b, qh, d.reshape(-1, 1).view(np.uint8)], axis=1)

    @classmethod
    def decode(cls, blocks: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        a = _trits(blocks[:, :32], 5).transpose(0, 2, 1).reshape(-1, 160)
        b = _trits(blocks[:, 32:48], 5).transpose(0, 2, 1).reshape(-1, 80)
        h = _trits(blocks[:, 48:52], 4).transpose(0, 2, 1).reshape(-1, 16)
        return np.concatenate([a, b, h], axis=1) - 1, blocks[:, 52:54].copy().view(np.float16).reshape(-1)
