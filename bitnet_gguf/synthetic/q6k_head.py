"""Random Q6_K blocks for the token embedding / lm_head of synthetic models.

Q6_K is the product's default head type (docs/bench/README.md). Quantizing a random float head with the numpy
encoder (formats/kquants.py) takes minutes at 70B (1 G values); blocks of random bytes with a small positive f16
scale are valid Q6_K, cost nothing to make, and a kernel reads them exactly as it reads a quantized head.
"""

from __future__ import annotations

from collections.abc import Iterator

import gguf
import numpy as np

from ..formats.gguf_write import OutTensor, StreamedTensor, row_blocks
from ..formats.kquants import Q6_K_BLOCK_BYTES, Q6_K_D_AT, Q6_K_SCALES_AT, QK_K


def random_q6_k(rng: np.random.Generator, rows: int, cols: int) -> np.ndarray:
    """[rows, cols / 256 * 210] uint8: random levels, scales in [1, 127], d = 2^-10 (weights of order 1)."""
    if cols % QK_K:
        raise ValueError(f"Q6_K rows hold whole blocks of {QK_K} values, got {cols}")
    blocks = rng.integers(0, 256, size=(rows * (cols // QK_K), Q6_K_BLOCK_BYTES), dtype=np.uint8)
    blocks[:, Q6_K_SCALES_AT:Q6_K_D_AT] = rng.integers(1, 128, size=(blocks.shape[0], QK_K // 16), dtype=np.uint8)
    blocks[:, Q6_K_D_AT:] = np.frombuffer(np.float16(2.0**-10).tobytes(), dtype=np.uint8)
    return blocks.reshape(rows, -1)


def q6_k_tensor(name: str, rows: int, cols: int, rng: np.random.Generator) -> OutTensor:
    """A [rows, cols] Q6_K tensor of random blocks, made in row chunks when it is written."""
    row_bytes = cols // QK_K * Q6_K_BLOCK_BYTES

    def chunks() -> Iterator[np.ndarray]:
        for start, stop in row_blocks(rows, row_bytes):
            yield random_q6_k(rng, stop - start, cols)

    nbytes = rows * row_bytes
    return OutTensor(name, (rows, cols), int(gguf.GGMLQuantizationType.Q6_K), nbytes, StreamedTensor(nbytes, chunks, name))
