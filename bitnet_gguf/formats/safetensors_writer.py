"""Write a .safetensors file tensor by tensor (header first, then each tensor's bytes as it is produced).

Used by the synthetic checkpoint generator: a 2B-4T-shaped bf16 checkpoint is 4.8 GB, which we never want
in memory at once, and numpy has no bfloat16 for safetensors' own numpy writer.
"""

from __future__ import annotations

import json
import math
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from .safetensors_reader import DTYPES


@dataclass
class TensorSpec:
    name: str
    dtype: str  # safetensors spelling
    shape: tuple[int, ...]
    produce: Callable[[], np.ndarray]  # called once, in file order; must return exactly nbytes of data

    @property
    def nbytes(self) -> int:
        return math.prod(self.shape) * DTYPES[self.dtype].itemsize


def f32_to_bf16(x: np.ndarray) -> np.ndarray:
    """float32 -> bfloat16 bits (uint16), round to nearest even (what torch's .to(bfloat16) does for finite values)."""
    u = np.ascontiguousarray(x, dtype=np.float32).view(np.uint32)
    rounded = (u + np.uint32(0x7FFF) + ((u >> np.uint32(16)) & np.uint32(1))) >> np.uint32(16)
    return rounded.astype(np.uint16)


def write_safetensors(path: Path, specs: list[TensorSpec], metadata: dict[str, str] | None = None) -> None:
    header: dict[str, object] = {"__metadata__": metadata or {"format": "pt"}}
    offset = 0
    for s in specs:
        header[s.name] = {"dtype": s.dtype, "shape": list(s.shape), "data_offsets": [offset, offset + s.nbytes]}
        offset += s.nbytes
    text = json.dumps(header, separators=(",", ":")).encode()
    text += b" " * (-len(text) % 8)  # the data section starts 8-byte aligned, as safetensors writes it
    with open(path, "wb") as fh:
        fh.write(len(text).to_bytes(8, "little"))
        fh.write(text)
        for s in specs:
            data = np.ascontiguousarray(s.produce())
            if data.nbytes != s.nbytes:
                raise AssertionError(f"{s.name}: produced {data.nbytes} bytes, declared {s.nbytes}")
            data.tofile(fh)
