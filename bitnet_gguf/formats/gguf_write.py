"""GGUF writing helpers shared by the converter and the synthetic-model generator."""

from __future__ import annotations

from pathlib import Path

import gguf
import numpy as np

from ..errors import BitnetError
from .constants import GGML_TYPE_I2_S
from .quants import I2S


class _RawType(int):
    """A ggml type id gguf-py does not know (its enum has no I2_S); the writer only packs it as uint32."""

    def __new__(cls, value: int, name: str) -> _RawType:
        obj = super().__new__(cls, value)
        obj.name = name  # type: ignore[attr-defined]
        return obj


I2_S_RAW = _RawType(GGML_TYPE_I2_S, "I2_S")


def add_i2s_tensor(writer: gguf.GGUFWriter, name: str, weight_t: np.ndarray, scale: float) -> None:
    """Add a 2-D ternary weight (numpy shape [rows, cols], values in {-1,0,1}) as an I2_S tensor."""
    packed = I2S.pack(weight_t, scale)
    # int8 view: gguf-py treats uint8 data as bytes of a known quant type and would reshape it
    writer.add_tensor(name, packed.view(np.int8), raw_shape=list(weight_t.shape), raw_dtype=I2_S_RAW)  # type: ignore[arg-type]


def copy_tokenizer(writer: gguf.GGUFWriter, vocab_gguf: Path) -> int:
    """Copy every tokenizer.* key of a vocab GGUF into writer; returns the vocabulary size."""
    reader = gguf.GGUFReader(vocab_gguf)
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
