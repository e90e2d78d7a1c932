"""TL1 and TL2 inside ggml (the built shared libraries): their bytes against numpy's (docs/formats.md §5), and
their mat-mul, through both the lookup (one token) and the decode (several tokens) kernels, bit-exact against the
ternary reference of §3, i.e. equal to I2_S's results for the same weights."""

from __future__ import annotations

import numpy as np
import pytest

from bitnet_gguf.formats.constants import GGML_TYPE_I2_S, GGML_TYPE_TL1, GGML_TYPE_TL2
from bitnet_gguf.formats.quants import I2S, TL1, TL2, ternarize

from .ggml_ctypes import Ggml
from .i2s_reference import ternary_matmul
from .test_i2s_ggml import random_weight

TYPES = {"tl1": (GGML_TYPE_TL1, TL1), "tl2": (GGML_TYPE_TL2, TL2)}


@pytest.fixture(params=["default", "generic"])
def kernel(request: pytest.FixtureRequest, ggml: Ggml, monkeypatch: pytest.MonkeyPatch) -> str:
    """The TL kernels follow BITNET_I2S_KERNEL: the build's fastest, then the portable reference."""
    if request.param == "default":
        monkeypatch.delenv("BITNET_I2S_KERNEL", raising=False)
    else:
        monkeypatch.setenv("BITNET_I2S_KERNEL", request.param)
    active = ggml.reload_kernel()
    assert request.param in ("default", active)
    yield request.param
    monkeypatch.undo()
    ggml.reload_kernel()


@pytest.mark.parametrize("name", TYPES)
@pytest.mark.parametrize("ternary", [True, False])
@pytest.mark.parametrize("m,k", [(1, 3), (70, 100), (64, 2560), (33, 8641)])
def test_quantize_bytes_equal_numpy(ggml: Ggml, name: str, m: int, k: int, ternary: bool) -> None:
    gtype, fmt = TYPES[name]
    w = random_weight(np.random.default_rng(m + k), m, k, ternary)
    t, scale = ternarize(w)
    assert np.array_equal(ggml.quantize(gtype, w), fmt.pack(t, scale))


# N = 1 takes the lookup kernels, N > 1 the decode kernels (in calls of at most 128 columns); ragged tiles,
# K not a multiple of a group, K = 8640 (bitnet_b1_58-3B)
SHAPES = [(64, 96, 1), (70, 100, 1), (130, 8640, 1), (64, 2560, 2), (70, 100, 7), (200, 2560, 8), (130, 8640, 33),
          (33, 301, 512)]


@pytest.mark.parametrize("name", TYPES)
@pytest.mark.parametrize("threads", [1, 2])
@pytest.mark.parametrize("m,k,n", SHAPES)
def test_mat_mul_bit_exact(ggml: Ggml, kernel: str, name: str, m: int, k: int, n: int, threads: int) -> None:
    gtype, fmt = TYPES[name]
    rng = np.random.default_rng(m * 7 + k + n)
    t = rng.integers(-1, 2, size=(m, k), dtype=np.int8)
    scale = 0.0371
    x = rng.standard_normal((n, k), dtype=np.float32) * 3
    x[0, :5] = [300.0, -300.0, 0.0, 1e-3, -299.9]  # absmax row with values at the clamp edges
    _, want = ternary_matmul(t, scale, x)
    got = ggml.mul_mat(gtype, fmt.pack(t, scale), k, m, x, threads=threads)
    assert np.array_equal(got, want)
    if m * k % 128 == 0:  # the same weights as I2_S give the same floats
        assert np.array_equal(got, ggml.mul_mat(GGML_TYPE_I2_S, I2S.pack(t, scale), k, m, x, threads=threads))


# one column: rows go out in chunks of 256 from a counter kept in the node (kernels/ggml-cpu/bitnet-rows.h); the
# same graph computed again, with other thread counts, gives the same bits
@pytest.mark.parametrize("name", TYPES)
def test_gemv_graph_computed_again(ggml: Ggml, kernel: str, name: str) -> None:
    gtype, fmt = TYPES[name]
    m, k = 1000, 2560  # 4 chunks, the last one ragged
    rng = np.random.default_rng(5)
    t = rng.integers(-1, 2, size=(m, k), dtype=np.int8)
    x = rng.standard_normal((1, k), dtype=np.float32)
    _, want = ternary_matmul(t, 0.0371, x)
    threads = [2, 1, 4, 3, 2, 9]  # 9 threads: more threads than chunks
    for th, got in zip(threads, ggml.mul_mat_runs(gtype, fmt.pack(t, 0.0371), k, m, x, threads), strict=True):
        assert np.array_equal(got, want), f"{th} threads"


@pytest.mark.parametrize("name", TYPES)
@pytest.mark.parametrize("n", [1, 3])
def test_worst_case_int16_blocks(ggml: Ggml, kernel: str, name: str, n: int) -> None:
    """All weights ±1 against activations that all quantize to ±127: every int16 block of the lookup kernels
    reaches its bound (TL1: 128 pairs x 254, TL2: 80 groups x 381) and must not wrap."""
    gtype, fmt = TYPES[name]
    m, k = 70, 8640
    t = np.ones((m, k), dtype=np.int8)
    t[1::2] = -1
    x = np.ones((n, k), dtype=np.float32)
    x[1:, ::2] = -1.0
    dot, want = ternary_matmul(t, 1.0, x)
    assert np.abs(dot).max() == 127 * k or n > 1
    assert np.array_equal(ggml.mul_mat(gtype, fmt.pack(t, 1.0), k, m, x, threads=2), want)


def test_out_of_range_indices_read_as_zero_weights(ggml: Ggml, kernel: str) -> None:
    """Indices no writer produces (TL1 9..15, TL2 14..15) read as zero weights in every kernel, and
    ggml_validate_row_data (llama.cpp --check-tensors) refuses them."""
    m, k = 64, 96
    rng = np.random.default_rng(5)
    t = rng.integers(-1, 2, size=(m, k), dtype=np.int8)
    x = rng.standard_normal((2, k), dtype=np.float32)
    # byte 0: TL1 pair 0 of rows 0 (index 9) and 16 (index 15); TL2 groups 0 and 1 of row 0 (15 and 14)
    for gtype, fmt, bad_byte, zeroed in ((GGML_TYPE_TL1, TL1, 0xF9, [(0, 0), (0, 1), (16, 0), (16, 1)]),
                                         (GGML_TYPE_TL2, TL2, 0xEF, [(0, c) for c in range(6)])):
        data = fmt.pack(t, 0.5)
        assert ggml.validate(gtype, data)
        data[0] = bad_byte
        assert not ggml.validate(gtype, data)
        t0 = t.copy()
        for r, c in zeroed:
            t0[r, c] = 0
        for n in (1, 2):
            assert np.array_equal(ggml.mul_mat(gtype, data, k, m, x[:n]), ternary_matmul(t0, 0.5, x[:n])[1]), (gtype, n)

