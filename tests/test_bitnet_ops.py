"""ggml ops on I2_S/TL1/TL2 tensors (patch 0021, kernels/ggml-cpu/bitnet-ops.c): copies to F32 dequantize the whole
tensor correctly; every op without bitnet code aborts with a message naming the op, the type and the tensor,
instead of reading the bytes as rows of blocks."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest

from bitnet_gguf.formats.constants import GGML_TYPE_I2_S, GGML_TYPE_TL1, GGML_TYPE_TL2
from bitnet_gguf.formats.quants import I2S, TL1, TL2, ternarize

from .conftest import REPO_ROOT
from .ggml_ctypes import Ggml
from .test_i2s_ggml import random_weight

M, K = 70, 8640  # K = 8640: I2_S rows start inside a 128-block; 70 rows: a ragged TL tile


def packed(name: str, seed: int = 5) -> tuple[int, np.ndarray, np.ndarray]:
    """(ggml type, bytes, the float weights they stand for) of a random [M, K] ternary weight."""
    t, scale = ternarize(random_weight(np.random.default_rng(seed), M, K, True))
    data = {"i2_s": lambda: I2S.pack(t.reshape(-1), scale), "tl1": lambda: TL1.pack(t, scale),
            "tl2": lambda: TL2.pack(t, scale)}[name]()
    gtype = {"i2_s": GGML_TYPE_I2_S, "tl1": GGML_TYPE_TL1, "tl2": GGML_TYPE_TL2}[name]
    return gtype, data, t.astype(np.float32) * np.float32(scale)


@pytest.mark.parametrize("op", ["cast", "cpy_to_f32"])
@pytest.mark.parametrize("name", ["i2_s", "tl1", "tl2"])
@pytest.mark.parametrize("threads", [1, 2])
def test_copy_to_f32_dequantizes(ggml: Ggml, name: str, op: str, threads: int) -> None:
    gtype, data, want = packed(name)
    assert np.array_equal(ggml.op_on(gtype, data, K, M, op, threads), want)


# dup and cont keep the type (a bitnet tensor out), view: part of a tensor, cpy_into: F32 quantized by a copy
REFUSED = ["add", "scale", "sum_rows", "cont", "dup", "transpose", "view", "cpy_into"]


@pytest.mark.parametrize("name", ["i2_s", "tl2"])
@pytest.mark.parametrize("op", REFUSED)
def test_other_ops_abort_with_a_clear_message(name: str, op: str, ggml_lib_dir: Path) -> None:
    code = textwrap.dedent(f"""
        from pathlib import Path
        from tests.ggml_ctypes import Ggml
        from tests.test_bitnet_ops import packed, K, M
        ggml = Ggml(Path({str(ggml_lib_dir)!r}))
        gtype, data, _ = packed({name!r})
        ggml.op_on(gtype, data, K, M, {op!r}, 1)
        print("computed")
    """)
    # no gdb backtrace on abort: attaching gdb to a sanitized process takes minutes (test_sanitized_ggml.py)
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=REPO_ROOT, timeout=120,
                       env=dict(os.environ, GGML_NO_BACKTRACE="1"))
    assert r.returncode != 0 and "computed" not in r.stdout
    assert "is not supported: bitnet-gguf computes MUL_MAT" in r.stderr, r.stderr[-2000:]
    assert f" on {name} tensor " in r.stderr, r.stderr[-2000:]
