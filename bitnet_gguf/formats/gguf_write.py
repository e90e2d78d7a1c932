"""GGUF writing helpers shared by the converter and the synthetic-model generator.

Both write streamed: every tensor is declared first (name, shape, type, size: the header and tensor table), then
each tensor's bytes are made and written one tensor (or one row chunk) at a time, so memory holds the largest
tensor at most, whatever the model's size (a 70B model held whole needed over 22 GB).
"""

from __future__ import annotations

import math
import struct
import sys
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO

import gguf
import numpy as np
import numpy.typing as npt

from ..errors import BitnetError, one_line
from .constants import (
    GGML_TYPE_I2_S,
    GGML_TYPE_TL1,
    GGML_TYPE_TL2,
    GGML_TYPE_TQ1_0,
    GGML_TYPE_TQ2_0,
    TL1_LAYOUT,
    TL1_LAYOUT_KEY,
    TL2_LAYOUT,
    TL2_LAYOUT_KEY,
)
from .quants import I2S, TL1, TL2, TQ1_0, TQ2_0, i2s_nbytes


class _RawType(int):
    """A ggml type id gguf-py does not know (its enum has no I2_S); the writer only packs it as uint32."""

    def __new__(cls, value: int, name: str) -> _RawType:
        obj = super().__new__(cls, value)
        obj.name = name  # type: ignore[attr-defined]
        return obj


@dataclass(frozen=True)
class TernaryType:
    """A packed ternary weight type as the writers use it: its ggml id, packer, size and file-level keys."""

    raw: _RawType
    pack: Callable[[np.ndarray, float], np.ndarray]  # (ternary [rows, cols], scale) -> bytes
    nbytes: Callable[[int, int], int]  # (rows, cols) -> bytes
    layout: dict[str, str]  # metadata a reader checks before trusting the bytes


TERNARY_GGUF_TYPES: dict[str, TernaryType] = {
    "i2_s": TernaryType(_RawType(GGML_TYPE_I2_S, "I2_S"), I2S.pack, lambda r, c: i2s_nbytes(r * c), {}),
    "tl1": TernaryType(_RawType(GGML_TYPE_TL1, "TL1"), TL1.pack, TL1.nbytes, {TL1_LAYOUT_KEY: TL1_LAYOUT}),
    "tl2": TernaryType(_RawType(GGML_TYPE_TL2, "TL2"), TL2.pack, TL2.nbytes, {TL2_LAYOUT_KEY: TL2_LAYOUT}),
    # upstream's types: per-block f16 scales instead of our per-tensor f32 one, no keys of ours (stock llama.cpp)
    "tq1_0": TernaryType(_RawType(GGML_TYPE_TQ1_0, "TQ1_0"), TQ1_0.pack, TQ1_0.nbytes, {}),
    "tq2_0": TernaryType(_RawType(GGML_TYPE_TQ2_0, "TQ2_0"), TQ2_0.pack, TQ2_0.nbytes, {}),
}


# float tensors are produced (drawn, read, quantized) in row chunks of about this size
CHUNK_BYTES = 32 << 20


def row_blocks(rows: int, row_bytes: int) -> Iterator[tuple[int, int]]:
    """[start, stop) row ranges of about CHUNK_BYTES each (at least one row)."""
    step = max(1, CHUNK_BYTES // max(1, row_bytes))
    for start in range(0, rows, step):
        yield start, min(rows, start + step)


class StreamedTensor:
    """What GGUFWriter.write_tensor_data needs from an array (nbytes, tofile) with bytes produced in chunks."""

    def __init__(self, nbytes: int, chunks: Callable[[], Iterator[bytes | np.ndarray]], name: str) -> None:
        self.nbytes = nbytes
        self._chunks = chunks
        self.name = name

    def tofile(self, fp: BinaryIO) -> None:
        written = 0
        for chunk in self._chunks():
            # a view, not tobytes(): no second copy of a chunk that may be a whole tensor
            data = memoryview(np.ascontiguousarray(chunk)).cast("B") if isinstance(chunk, np.ndarray) else memoryview(chunk)
            fp.write(data)
            written += data.nbytes
        if written != self.nbytes:  # a planning bug, never a user error: the header already promised nbytes
            raise AssertionError(f"{self.name}: wrote {written} bytes, planned {self.nbytes}")


@dataclass
class OutTensor:
    """One tensor of a file being written: what its header entry says, and how to make its bytes when written."""

    name: str
    shape: tuple[int, ...]  # numpy order: (rows, cols)
    qtype: int  # ggml type id
    nbytes: int
    data: StreamedTensor


def float_tensor(name: str, shape: tuple[int, ...], dtype: npt.DTypeLike,
                 chunks: Callable[[], Iterator[np.ndarray]]) -> OutTensor:
    """An F32 or F16 tensor whose values `chunks` yields (in row order, already of `dtype`) when it is written."""
    dt = np.dtype(dtype)
    qtype = {np.dtype(np.float32): gguf.GGMLQuantizationType.F32, np.dtype(np.float16): gguf.GGMLQuantizationType.F16}[dt]
    nbytes = math.prod(shape) * dt.itemsize
    return OutTensor(name, shape, int(qtype), nbytes, StreamedTensor(nbytes, chunks, name))


def ternary_tensor(name: str, rows: int, cols: int, qtype: str, values: Callable[[], tuple[np.ndarray, float]]) -> OutTensor:
    """A 2-D ternary weight packed as `qtype`; `values` gives (ternary int8 [rows, cols], scale) when it is written."""
    tt = TERNARY_GGUF_TYPES[qtype]
    nbytes = tt.nbytes(rows, cols)
    return OutTensor(name, (rows, cols), int(tt.raw), nbytes, StreamedTensor(nbytes, lambda: iter([tt.pack(*values())]), name))


def write_streamed(writer: gguf.GGUFWriter, tensors: Sequence[OutTensor], what: str, progress: bool = True) -> None:
    """Write the file of `writer` (its keys already added): header, keys and tensor table, then the tensors' bytes
    one tensor at a time, in order (a tensor's bytes may depend on the ones made before it: a shared RNG).
    The padding between tensors is gguf-py's own, so the bytes equal an in-memory GGUFWriter's."""
    for t in tensors:
        # element shape + a non-uint8 dtype: gguf-py then takes the type as given and the shape in elements
        writer.add_tensor_info(t.name, t.shape, np.dtype(np.float32), t.nbytes, raw_dtype=t.qtype)  # type: ignore[arg-type]
    writer.write_header_to_file()
    writer.write_kv_data_to_file()
    writer.write_ti_data_to_file()
    bar = progress_bar(sum(t.nbytes for t in tensors), what, progress)
    try:
        for t in tensors:
            writer.write_tensor_data(t.data)  # type: ignore[arg-type]
            if bar is not None:
                bar.update(t.nbytes)
    finally:
        if bar is not None:
            bar.close()
        writer.close()


def progress_bar(total: int, what: str, enabled: bool):  # -> tqdm | None
    if not enabled:
        return None
    from tqdm import tqdm

    # disable=None: tqdm turns itself off when stderr is not a terminal (logs get the summary line only)
    return tqdm(total=total, unit="B", unit_scale=True, desc=f"writing {what}", file=sys.stderr, leave=False, disable=None)


def add_layout_keys(writer: gguf.GGUFWriter, qtype: str) -> None:
    """The metadata a file with `qtype` weights must carry (docs/formats.md §5); nothing for float types."""
    if qtype in TERNARY_GGUF_TYPES:
        for key, value in TERNARY_GGUF_TYPES[qtype].layout.items():
            writer.add_string(key, value)


def add_ternary_tensor(writer: gguf.GGUFWriter, name: str, weight_t: np.ndarray, scale: float, qtype: str = "i2_s") -> None:
    """Add a 2-D ternary weight (numpy shape [rows, cols], values in {-1,0,1}) packed as `qtype`."""
    tt = TERNARY_GGUF_TYPES[qtype]
    packed = tt.pack(weight_t, scale)
    # int8 view: gguf-py treats uint8 data as bytes of a known quant type and would reshape it
    writer.add_tensor(name, packed.view(np.int8), raw_shape=list(weight_t.shape), raw_dtype=tt.raw)  # type: ignore[arg-type]


def open_vocab_gguf(path: Path) -> gguf.GGUFReader:
    """gguf-py's reader on a llama.cpp vocab GGUF; a file that is not one is one line naming it."""
    try:
        reader = gguf.GGUFReader(path)
    except (OSError, ValueError, IndexError, KeyError, TypeError, struct.error) as e:
        raise BitnetError(f"{path}: not a readable vocab GGUF ({one_line(e) or type(e).__name__}); "
                          "expected llama.cpp's ggml-vocab-*.gguf (--vocab-dir / $BITNET_GGUF_VOCAB_DIR)") from None
    if "tokenizer.ggml.tokens" not in reader.fields:
        raise BitnetError(f"{path}: GGUF without tokenizer.ggml.tokens, expected llama.cpp's ggml-vocab-*.gguf")
    return reader


def copy_tokenizer(writer: gguf.GGUFWriter, vocab_gguf: Path) -> int:
    """Copy every tokenizer.* key of a vocab GGUF into writer; returns the vocabulary size."""
    reader = open_vocab_gguf(vocab_gguf)
    n_vocab = 0
    for key, field in reader.fields.items():
        if not key.startswith("tokenizer."):
            continue
        value = field.contents()
        vtype = field.types[0]
        sub_type = field.types[1] if vtype == gguf.GGUFValueType.ARRAY else None
        writer.add_key_value(key, value, vtype, sub_type=sub_type)
        if key == "tokenizer.ggml.tokens":
            n_vocab = len(value)
    if n_vocab == 0:
        raise BitnetError(f"{vocab_gguf}: no tokenizer.ggml.tokens array (not a vocab GGUF)")
    return n_vocab
