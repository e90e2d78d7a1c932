"""The TL kernel generator (bitnet_gguf/setup/kernel_gen.py): deterministic output, tables that agree with the
format's numpy definition, the model shapes it specializes for, and no rewrite (no rebuild) when nothing changed."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np

from bitnet_gguf.formats.quants import TL2, tl2_lane_rows
from bitnet_gguf.setup import kernel_gen
from bitnet_gguf.synthetic.shapes import SHAPES

from .conftest import REPO_ROOT


def test_output_is_deterministic_and_sorted() -> None:
    a = kernel_gen.render([6912, 2560, 2560], kernel_gen.TunedParams(gemv_prefetch=2048))
    b = kernel_gen.render([2560, 6912], kernel_gen.TunedParams(gemv_prefetch=2048))
    assert a == b and "#define BITNET_TL2_SHAPES(X) X(2560) X(6912)" in a and "#define BITNET_TL2_GEMV_PREFETCH 2048" in a
    assert kernel_gen.render([2560]) != a


def test_tables_agree_with_the_format() -> None:
    m = np.arange(64) % 16
    digits = kernel_gen._digits(m)
    want = TL2.weights_of(np.minimum(m, 13))
    want[m > 13] = 0
    assert np.array_equal(digits, want)
    dec = kernel_gen._decode_tables()
    assert np.array_equal(dec[0].T.astype(int) - 1, want) and np.array_equal(1 - dec[1].T.astype(int), want)
    # every output lane of both kernels maps to a distinct row of the tile
    for rows in (kernel_gen._gemv_rows(), kernel_gen._gemm_rows()):
        assert sorted(rows.tolist()) == list(range(64))
    assert np.array_equal(kernel_gen._gemv_rows()[:16], tl2_lane_rows()[0:32:2])


def test_emit_writes_once(tmp_path: Path) -> None:
    gen = kernel_gen.emit(tmp_path, [2560])
    header = gen / kernel_gen.HEADER
    os.utime(header, (1, 1))
    kernel_gen.emit(tmp_path, [2560])
    assert header.stat().st_mtime == 1  # same text: untouched, so make rebuilds nothing
    assert kernel_gen.recorded_k_values(tmp_path) == [2560]
    kernel_gen.emit(tmp_path, [2560, 8640])
    assert header.stat().st_mtime != 1 and kernel_gen.recorded_k_values(tmp_path) == [2560, 8640]


def test_model_k_values(tiny_i2s: Path) -> None:
    """From a checkpoint folder's config and from a GGUF's ternary tensors: every projection's K."""
    assert kernel_gen.model_k_values(REPO_ROOT / "models" / "tiny-shakespeare") == [256, 768]
    shape = SHAPES["tiny"]
    assert kernel_gen.model_k_values(tiny_i2s) == sorted({shape.hidden, shape.ffn})
