"""Test-side view of a GGUF: metadata and tensors with their bytes, read with bitnet_gguf.formats.gguf_read (knows I2_S)."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from bitnet_gguf.formats.gguf_read import GGUFFile


@dataclass
class Tensor:
    name: str
    ggml_type: int
    ne: tuple[int, ...]  # ggml order: ne0 (columns) first
    data: np.ndarray  # raw bytes


def read_gguf(path: Path) -> tuple[dict[str, Any], dict[str, Tensor]]:
    f = GGUFFile(path)
    return f.metadata, {n: Tensor(n, e.ggml_type, e.shape, np.array(f.data(n))) for n, e in f.tensors.items()}


def f32(t: Tensor) -> np.ndarray:
    """An F32/F16 tensor as float32 in numpy order (rows, cols)."""
    n = int(np.prod(t.ne))
    dt = {0: np.float32, 1: np.float16}[t.ggml_type]
    return t.data[: n * np.dtype(dt).itemsize].view(dt).astype(np.float32).reshape(tuple(reversed(t.ne)))
