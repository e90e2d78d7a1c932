"""Our numpy Q6_K encoder against ggml's (quantize_row_q6_K_ref in the built libggml-base): identical bytes."""

from __future__ import annotations

import gguf
import numpy as np
import pytest

from bitnet_gguf.formats.kquants import Q6_K_BLOCK_BYTES, Q6K, QK_K

from .ggml_ctypes import Ggml

GGML_TYPE_Q6_K = 14


def _cases() -> dict[str, np.ndarray]:
    rng = np.random.default_rng(6)
    mixed = np.concatenate([np.zeros((4, 256)), rng.standard_normal((4, 256)) * 1e-14,
                            rng.standard_normal((4, 256)) * 1e4, rng.standard_normal((4, 256))], axis=1)
    mixed[0, 256 + 16:256 + 32] = 0  # an all-zero sub-block inside a live super-block
    mixed[1, 768:784] = 1e-16  # a sub-block below GROUP_MAX_EPS
    mixed[2, 800] = -1e30  # one huge value: the other sub-blocks' scales round to 0
    return {
        "embedding": rng.standard_normal((96, 2560)) * 0.02,
        "ties": rng.integers(-64, 64, (32, 512)) * 0.25,  # many values land on .5 after scaling
        "ternary": rng.integers(-1, 2, (16, 768)) * 0.0371,
        "zeros": np.zeros((2, 512)),
        "tiny": rng.standard_normal((4, 512)) * 1e-20,
        "spiky": np.where(rng.random((16, 1024)) < 0.01, 1e3, rng.standard_normal((16, 1024)) * 1e-6),
        "one-sign": np.abs(rng.standard_normal((8, 256))),
        "mixed": mixed,
    }


@pytest.mark.parametrize("name", list(_cases()))
def test_bytes_equal_ggml(ggml: Ggml, name: str) -> None:
    x = _cases()[name].astype(np.float32)
    ours = Q6K.quantize(x)
    assert ours.shape == (x.shape[0], x.shape[1] // QK_K * Q6_K_BLOCK_BYTES)
    ref = ggml.quantize(GGML_TYPE_Q6_K, x)
    diff = np.flatnonzero(ours.reshape(-1) != ref)
    assert diff.size == 0, f"{diff.size} bytes differ, first at {diff[:1]}"


def test_chunking_does_not_change_bytes() -> None:
    x = np.random.default_rng(7).standard_normal((40, 512)).astype(np.float32)
    whole = Q6K.quantize(x).reshape(-1)
    assert np.array_equal(np.concatenate(list(Q6K.quantize_chunks(x, blocks_per_chunk=3))), whole)


def test_round_trip_error_is_small() -> None:
    """gguf-py's decoder reads our blocks back within about half of Q6_K's step (max|x| / 32 per 16 values; the
    least-squares scale and the int8/f16 scales add a little)."""
    x = np.random.default_rng(8).standard_normal((64, 1024)).astype(np.float32)
    y = gguf.quants.dequantize(Q6K.quantize(x), gguf.GGMLQuantizationType.Q6_K)
    step = np.abs(x.reshape(-1, 16)).max(axis=1, keepdims=True) / 32
    assert (np.abs(y - x).reshape(-1, 16) <= step * 0.75).all()
    assert np.sqrt(np.mean((y - x) ** 2)) < 0.025 * x.std()


@pytest.mark.parametrize(("x", "msg"), [(np.zeros((2, 100), np.float32), "multiple of 256"),
                                        (np.full((1, 256), np.nan, np.float32), "NaN or infinite")])
def test_bad_input(x: np.ndarray, msg: str) -> None:
    with pytest.raises(ValueError, match=msg):
        Q6K.quantize(x)
