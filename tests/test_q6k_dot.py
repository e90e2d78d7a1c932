"""The Q6_K x Q8_K dot product that the build's ggml-cpu calls for Q6_K (kernels/ggml-cpu/q6k-dot.h, patch 0027).

With d = 1 in both blocks every value is an integer and every float step is exact below 2^24, so the kernel must
give the exact integer sum, read against gguf-py's Q6_K decoder; with random d it must stay within float rounding
of the float64 sum. ggml's generic function is checked on the same inputs, so the test reads the format the way
ggml does.
"""

from __future__ import annotations

import ctypes as C
from pathlib import Path

import gguf
import numpy as np
import pytest

from bitnet_gguf.formats.kquants import Q6_K_BLOCK_BYTES, Q6_K_D_AT, Q6_K_SCALES_AT, QK_K

from .ggml_ctypes import Ggml

Q8_K_DTYPE = np.dtype([("d", "<f4"), ("qs", "i1", QK_K), ("bsums", "<i2", QK_K // 16)])
VEC_DOT = C.CFUNCTYPE(None, C.c_int, C.POINTER(C.c_float), C.c_size_t, C.c_void_p, C.c_size_t, C.c_void_p,
                      C.c_size_t, C.c_int)


def q6_k_blocks(rng: np.random.Generator, nb: int, scales: tuple[int, int], d: np.ndarray,
                levels: int | None = None) -> np.ndarray:
    """nb Q6_K blocks: random (or all-`levels`) codes, int8 scales drawn from [lo, hi], the given f16 d per block."""
    b = rng.integers(0, 256, size=(nb, Q6_K_BLOCK_BYTES), dtype=np.uint8)
    if levels is not None:  # every code = levels: nibbles and high bits all alike
        b[:, :QK_K // 2] = (levels & 15) * 17  # ql: both nibbles
        b[:, QK_K // 2:Q6_K_SCALES_AT] = (levels >> 4) * 0x55  # qh: all four 2-bit fields
    b[:, Q6_K_SCALES_AT:Q6_K_D_AT] = rng.integers(scales[0], scales[1] + 1, size=(nb, QK_K // 16)).astype(np.int8).view(np.uint8)
    b[:, Q6_K_D_AT:] = np.asarray(d, np.float16).reshape(nb, 1).view(np.uint8)
    return b


def q8_k_blocks(qs: np.ndarray, d: np.ndarray) -> np.ndarray:
    blocks = np.zeros(qs.shape[0], Q8_K_DTYPE)
    blocks["d"] = d
    blocks["qs"] = qs
    blocks["bsums"] = qs.reshape(-1, QK_K // 16, 16).astype(np.int16).sum(axis=2)
    return blocks


def call(fn: C._CFuncPtr, x: np.ndarray, y: np.ndarray) -> float:
    out = C.c_float()
    fn(y.shape[0] * QK_K, C.byref(out), 0, x.ctypes.data, 0, y.ctypes.data, 0, 1)
    return out.value


@pytest.fixture(scope="module")
def dots(ggml: Ggml) -> dict[str, C._CFuncPtr]:
    """The function ggml-cpu's type table holds for Q6_K, ggml's generic one, and our AVX-512 one where built."""
    out = {"table": VEC_DOT(("bitnet_vec_dot_q6_K_q8_K", ggml.cpu)),
           "ggml generic": VEC_DOT(("ggml_vec_dot_q6_K_q8_K_generic", ggml.cpu))}
    try:
        out["avx512vnni"] = VEC_DOT(("bitnet_vec_dot_q6_K_q8_K_avx512vnni", ggml.cpu))
    except AttributeError:
        pass
    return out


def test_the_fast_kernel_is_built_where_the_cpu_has_it(dots: dict[str, C._CFuncPtr]) -> None:
    flags = set(next(ln for ln in Path("/proc/cpuinfo").read_text().splitlines() if ln.startswith("flags")).split())
    if {"avx512f", "avx512bw", "avx512_vnni"} <= flags:
        assert "avx512vnni" in dots, "a native build on this CPU must contain the AVX-512 Q6_K kernel"


@pytest.mark.parametrize(("case", "nb", "scales", "levels", "qs"), [
    ("random", 4, (-8, 8), None, (-128, 127)),
    ("all scales", 2, (-128, 127), None, (-16, 16)),
    ("extreme codes 0", 1, (-128, -128), 0, (-128, -128)),  # the largest products, all of one sign
    ("extreme codes 63", 1, (127, 127), 63, (127, 127)),
])
def test_exact_integer_sum(dots: dict[str, C._CFuncPtr], case: str, nb: int, scales: tuple[int, int],
                           levels: int | None, qs: tuple[int, int]) -> None:
    rng = np.random.default_rng(sum(map(ord, case)))
    x = q6_k_blocks(rng, nb, scales, np.ones(nb), levels)
    y = q8_k_blocks(rng.integers(qs[0], qs[1] + 1, size=(nb, QK_K)).astype(np.int8), np.ones(nb, np.float32))
    w = gguf.quants.dequantize(x, gguf.GGMLQuantizationType.Q6_K).astype(np.int64)  # scale * (code - 32), exact
    prod = w.reshape(-1) * y["qs"].reshape(-1).astype(np.int64)
    want = int(prod.sum())
    # the float steps are exact, so the result is the integer itself: every partial sum is below 2^24, or (the
    # uniform blocks) a multiple of 2^19 below 2^28
    assert np.abs(prod).sum() < 2**24 or case.startswith("extreme")
    for name, fn in dots.items():
        assert call(fn, x, y) == np.float32(want), f"{name}: {call(fn, x, y)} != {want}"


def test_random_scales_within_rounding(dots: dict[str, C._CFuncPtr]) -> None:
    rng = np.random.default_rng(27)
    for nb in (1, 3, 16, 43):
        d6 = rng.uniform(1e-4, 2e-2, nb).astype(np.float16)
        d8 = rng.uniform(1e-3, 1e-1, nb).astype(np.float32)
        x = q6_k_blocks(rng, nb, (-128, 127), d6)
        y = q8_k_blocks(rng.integers(-128, 128, size=(nb, QK_K)).astype(np.int8), d8)
        w = gguf.quants.dequantize(x, gguf.GGMLQuantizationType.Q6_K).astype(np.float64).reshape(nb, QK_K)
        terms = w * y["qs"].astype(np.float64) * d8.astype(np.float64)[:, None]
        want, size = terms.sum(), np.abs(terms).sum()
        for name, fn in dots.items():
            got = call(fn, x, y)
            assert abs(got - want) <= 1e-6 * size, f"{name}, {nb} blocks: {got} vs {want} (sum of |terms| {size})"


@pytest.mark.parametrize("k", [256, 4096])
@pytest.mark.parametrize("m", [1, 7, 16, 17, 45, 1000])
def test_one_column_rows_are_the_vec_dot_bits(ggml: Ggml, k: int, m: int) -> None:
    """One column goes through the two-stream rows hook (patch 0028), two columns through the table's vec_dot row by
    row: the same blocks in the same order, so the same bits, whatever the tile (odd rows, a row alone)."""
    rng = np.random.default_rng(k + m)
    nb = k // QK_K
    w = q6_k_blocks(rng, m * nb, (-128, 127), rng.uniform(1e-3, 1e-2, m * nb)).reshape(m, -1)
    x = rng.standard_normal((1, k)).astype(np.float32)
    for threads in (1, 2, 3):
        one = ggml.mul_mat(int(gguf.GGMLQuantizationType.Q6_K), w, k, m, x, threads)
        two = ggml.mul_mat(int(gguf.GGMLQuantizationType.Q6_K), w, k, m, np.concatenate([x, x]), threads)
        assert np.array_equal(one[0].view(np.uint32), two[0].view(np.uint32)), f"{threads} threads"
        assert np.array_equal(two[0], two[1])
    wf = gguf.quants.dequantize(w, gguf.GGMLQuantizationType.Q6_K).astype(np.float64)
    want = wf @ x[0].astype(np.float64)
    # within the activations' Q8_K rounding: half a step (max|x| / 127) per element
    assert (np.abs(one[0] - want) <= np.abs(wf).sum(axis=1) * np.abs(x).max() / 254 * 1.01).all()
