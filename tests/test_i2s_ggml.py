"""I2_S inside ggml (through the built shared libraries) against the numpy reference of docs/formats.md §2-3."""

from __future__ import annotations

import numpy as np
import pytest

from bitnet_gguf.formats.constants import GGML_TYPE_I2_S
from bitnet_gguf.formats.quants import I2S, ternarize

from .ggml_ctypes import Ggml
from .i2s_reference import i2s_matmul, quantize_activations


def _build_kernels() -> list[str]:
    """Every I2_S kernel the build compiled (each is run by name below); a test run that starts without a build
    (the build_dir fixture makes it) checks the generic kernel and the default."""
    from bitnet_gguf.errors import BitnetError
    from bitnet_gguf.inspect.kernel_choice import kernel_choice

    from .conftest import ggml_build_dir

    try:
        return kernel_choice(ggml_build_dir()).i2s_kernels
    except BitnetError:
        return ["generic"]


BUILD_KERNELS = _build_kernels()


def random_weight(rng: np.random.Generator, m: int, k: int, ternary: bool) -> np.ndarray:
    if ternary:  # what an F32 GGUF of a ternarized model holds: s * {-1, 0, 1}
        return rng.integers(-1, 2, size=(m, k)).astype(np.float32) * np.float32(0.0371)
    return rng.standard_normal((m, k), dtype=np.float32)


@pytest.mark.parametrize("ternary", [True, False])
@pytest.mark.parametrize("m,k", [(4, 128), (64, 256), (4, 8640), (17, 2560)])
def test_quantize_dequantize_bit_exact(ggml: Ggml, m: int, k: int, ternary: bool) -> None:
    rng = np.random.default_rng(m * 1000 + k)
    w = random_weight(rng, m, k, ternary)
    got = ggml.quantize(GGML_TYPE_I2_S, w)
    want = I2S.quantize(w)
    assert got.size == m * k // 4 + 32
    assert np.array_equal(got, want)
    t, scale = ternarize(w)
    if ternary:
        assert scale == np.float32(0.0371)
    assert np.array_equal(ggml.dequantize(GGML_TYPE_I2_S, got, m * k), t.reshape(-1).astype(np.float32) * np.float32(scale))
    assert np.array_equal(I2S.dequantize(got, m * k), ggml.dequantize(GGML_TYPE_I2_S, got, m * k))


def test_code_3_reads_as_zero(ggml: Ggml) -> None:
    data = I2S.pack(np.ones((1, 128), dtype=np.int8), 2.0)
    data[:4] = 0xFF  # elements 0..3, 32..35, 64..67, 96..99 -> code 3
    y = ggml.dequantize(GGML_TYPE_I2_S, data, 128)
    zero = [e for e in range(128) if e % 32 < 4]
    assert np.all(y[zero] == 0) and np.all(np.delete(y, zero) == 2.0)


@pytest.mark.parametrize("kernel", ["default", *BUILD_KERNELS])
@pytest.mark.parametrize("threads", [1, 2])
# n >= 16 takes the packed form where the kernel has one: whole groups of 16, a ragged rest, several tiles
@pytest.mark.parametrize("m,k,n", [(64, 256, 1), (33, 512, 7), (6, 8640, 2), (130, 2560, 18), (640, 2560, 1),
                                   (80, 6912, 16), (200, 1536, 150)])
def test_mat_mul_matches_reference(ggml: Ggml, m: int, k: int, n: int, threads: int, kernel: str,
                                   monkeypatch: pytest.MonkeyPatch) -> None:
    if kernel == "default":
        monkeypatch.delenv("BITNET_I2S_KERNEL", raising=False)
    else:
        monkeypatch.setenv("BITNET_I2S_KERNEL", kernel)
    # the dispatch reads the variable once per process: make it read it again, and check it took
    active = ggml.reload_kernel()
    assert active == (BUILD_KERNELS[0] if kernel == "default" else kernel)
    rng = np.random.default_rng(7 + m + k + n)
    data = I2S.quantize(random_weight(rng, m, k, True))
    x = rng.standard_normal((n, k), dtype=np.float32) * 3
    x[0, :5] = [300.0, -300.0, 0.0, 1e-3, -299.9]  # absmax row with values at the clamp edges
    dot, y_ref = i2s_matmul(data, k, m, x)
    y = ggml.mul_mat(GGML_TYPE_I2_S, data, k, m, x, threads=threads)
    # same float operations on the same integers -> identical bits; recover the integers as a second check
    assert np.array_equal(y, y_ref)
    _, sa = quantize_activations(x)
    sw = I2S.unpack(data, m * k)[1]
    assert np.array_equal(np.rint(y.astype(np.float64) * sa[:, None] / sw).astype(np.int64), dot)
    monkeypatch.undo()
    ggml.reload_kernel()  # later tests get the default kernel back


# up to 4 columns every thread quantizes them itself and rows go out in chunks from a counter kept in the node
# (kernels/ggml-cpu/bitnet-rows.h): the same graph computed again, with other thread counts, must give the same bits
@pytest.mark.parametrize("n", [1, 2, 4, 5])
def test_mat_mul_graph_computed_again(ggml: Ggml, n: int) -> None:
    m, k = 1000, 2560  # 16 chunks of 64 rows, the last one ragged
    rng = np.random.default_rng(11 + n)
    data = I2S.quantize(random_weight(rng, m, k, True))
    x = rng.standard_normal((n, k), dtype=np.float32)
    _, y_ref = i2s_matmul(data, k, m, x)
    threads = [2, 2, 1, 4, 3, 2, 17]  # 17 threads: more threads than chunks
    for t, y in zip(threads, ggml.mul_mat_runs(GGML_TYPE_I2_S, data, k, m, x, threads), strict=True):
        assert np.array_equal(y, y_ref), f"{t} threads"


def test_get_rows(ggml: Ggml) -> None:
    rng = np.random.default_rng(3)
    m, k = 12, 8640  # odd rows start in the middle of a 128-block
    data = I2S.quantize(random_weight(rng, m, k, True))
    rows = np.array([0, 1, 10, 5, 5], dtype=np.int32)
    got = ggml.get_rows(GGML_TYPE_I2_S, data, k, m, rows)
    assert np.array_equal(got, I2S.dequantize(data, m * k).reshape(m, k)[rows])
