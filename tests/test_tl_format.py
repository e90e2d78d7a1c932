"""TL1 and TL2 layouts (docs/formats.md §5): exact round trips, sizes, pinned bytes, and the lookup-table
arithmetic giving exactly the ternary dot product, int16 blocks included, for every shape and token count."""

from __future__ import annotations

import hashlib

import numpy as np
import pytest

from bitnet_gguf.formats.quants import TL1, TL2, I2SFormatError

from . import tl_reference
from .tl_reference import tl1_matmul_int, tl2_matmul_int

SHAPES = [(64, 3), (64, 24), (1, 1), (70, 50), (100, 2560), (640, 2560), (65, 8640), (128, 6912), (33, 100)]


@pytest.mark.parametrize("rows,cols", SHAPES)
@pytest.mark.parametrize("codec", [TL1, TL2])
def test_round_trip(codec: type, rows: int, cols: int) -> None:
    t = np.random.default_rng(rows * 7 + cols).integers(-1, 2, size=(rows, cols), dtype=np.int8)
    data = codec.pack(t, 0.0375)
    assert data.size == codec.nbytes(rows, cols)
    got, scale = codec.unpack(data, rows, cols)
    assert np.array_equal(got, t) and scale == np.float32(0.0375)


def test_sizes() -> None:
    # 4096 x 4096: 64 tiles x 171 chunks x 320 bytes + tail = 1.67 bits per weight; TL1 2 bits like I2_S
    assert TL2.nbytes(4096, 4096) == 64 * 171 * 320 + 32
    assert abs((TL2.nbytes(4096, 4096) - 32) * 8 / 4096**2 - 5 / 3) < 0.004  # K padded to 1368 groups
    assert TL1.nbytes(2560, 6912) == 2560 * 6912 // 4 + 32
    assert TL2.groups(2560) == 856 and TL2.groups(6912) == 2304 and TL2.groups(8640) == 2880


def test_bytes_pinned() -> None:
    """The layout's bytes for one fixed tensor, as the C prototypes in docs/bench wrote them (which their
    kernels read bit-exactly): a change of layout must be a deliberate change of this test and of §5."""
    t = np.random.default_rng(3).integers(-1, 2, size=(128, 2560), dtype=np.int8)
    assert hashlib.sha256(TL2.pack(t, 1.0)[:-32].tobytes()).hexdigest() == \
        "fab897fca446c1e90aefe09b459a4ad67908c540cf0618731517579b2267c6f8"
    assert hashlib.sha256(TL1.pack(t, 1.0)[:-32].tobytes()).hexdigest() == \
        "8e83fb97e63bf71c0669bc5a65fa20821a9e4b496b076272323560c3c91a03e8"


@pytest.mark.parametrize("rows,cols", [(64, 24), (70, 50), (130, 2560), (65, 8640)])
@pytest.mark.parametrize("n", [1, 2, 7, 8, 33])
def test_lookup_matmul_is_the_ternary_dot(rows: int, cols: int, n: int) -> None:
    rng = np.random.default_rng(rows + cols + n)
    t = rng.integers(-1, 2, size=(rows, cols), dtype=np.int8)
    q = rng.integers(-128, 128, size=(n, cols), dtype=np.int8)
    q[0] = 127  # the int16 blocks' worst case: every entry at its largest
    exact = q.astype(np.int64) @ t.astype(np.int64).T
    assert np.array_equal(tl2_matmul_int(TL2.pack(t, 1.0), rows, cols, q), exact)
    assert np.array_equal(tl1_matmul_int(TL1.pack(t, 1.0), rows, cols, q), exact)


def test_int16_blocks_hold_the_worst_case() -> None:
    """All weights +1 or all -1 against all +-127 activations: every block sum at its bound, still exact.
    (Activations of -128 cannot occur: the quantizer clamps |q| <= 127, docs/formats.md §3.)"""
    cols = 3 * 80 * 3 + 2  # several full TL2 blocks and a ragged end
    for w in (1, -1):
        t = np.full((64, cols), w, dtype=np.int8)
        for a in (127, -127):
            q = np.full((1, cols), a, dtype=np.int8)
            exact = q.astype(np.int64) @ t.astype(np.int64).T
            assert np.array_equal(tl2_matmul_int(TL2.pack(t, 1.0), 64, cols, q), exact)
            assert np.array_equal(tl1_matmul_int(TL1.pack(t, 1.0), 64, cols, q), exact)
    # the check can fail: a block of 100 groups (38100 > 32767) wraps
    t, q = np.ones((64, cols), dtype=np.int8), np.full((1, cols), 127, dtype=np.int8)
    tl_reference.TL2_BLOCK_GROUPS = 100
    try:
        assert not np.array_equal(tl2_matmul_int(TL2.pack(t, 1.0), 64, cols, q), q.astype(np.int64) @ t.astype(np.int64).T)
    finally:
        tl_reference.TL2_BLOCK_GROUPS = 80


def test_malformed_data_is_refused() -> None:
    t = np.zeros((64, 24), dtype=np.int8)
    with pytest.raises(I2SFormatError, match="must be"):
        TL2.unpack(TL2.pack(t, 1.0)[:-1], 64, 24)
    bad = TL2.pack(t, 1.0)
    bad[0] = 0x0E  # |v| = 14 does not exist
    with pytest.raises(I2SFormatError, match="above 13"):
        TL2.unpack(bad, 64, 24)
    with pytest.raises(I2SFormatError, match="-1, 0, 1"):
        TL2.pack(np.full((2, 3), 2, dtype=np.int8), 1.0)
