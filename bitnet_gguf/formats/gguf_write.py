"""GGUF writing helpers shared by the converter and the synthetic-model generator."""

from __future__ import annotations

import struct
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import gguf
import numpy as np

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
