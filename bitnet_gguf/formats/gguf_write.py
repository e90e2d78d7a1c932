"""GGUF writing helpers shared by the converter and the synthetic-model generator."""

from __future__ import annotations

import contextlib
import os
import tempfile
from collections.abc import Iterator
from pathlib import Path

import gguf
import numpy as np

from .quants import GGML_TYPE_I2_S, I2S


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
        raise ValueError(f"{vocab_gguf}: no tokenizer.ggml.tokens array")
    return n_vocab


@contextlib.contextmanager
def atomic_output(path: Path) -> Iterator[Path]:
    """Yield a temporary path next to `path`; rename it into place only if the block succeeds."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    os.close(fd)
    umask = os.umask(0)
    os.umask(umask)
    os.chmod(tmp, 0o666 & ~umask)  # mkstemp creates 0600; outputs get the usual permissions
    try:
        yield Path(tmp)
        os.replace(tmp, path)
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)
