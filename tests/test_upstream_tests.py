"""llama.cpp's own tests, built from our patched source, pass: test-gguf (GGUF write/read round trips over random
types and handcrafted broken files) and test-quantize-fns (every type's quantize/dequantize/dot error bounds,
I2_S included by patch 0012)."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from .conftest import run_tool


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_test_gguf(bin_dir: Path, seed: int) -> None:
    r = run_tool(bin_dir, "test-gguf", str(seed), timeout=600)
    out = r.stdout + r.stderr
    assert r.returncode == 0, out[-3000:]
    m = re.search(r"(\d+)/(\d+) tests passed", out)
    assert m and m[1] == m[2] and int(m[2]) > 50, out[-3000:]
    assert "\x1b[1;31mFAIL" not in out


def test_test_quantize_fns(bin_dir: Path) -> None:
    r = run_tool(bin_dir, "test-quantize-fns", "-v", timeout=600)
    out = r.stdout + r.stderr
    assert r.returncode == 0 and "0 tests failed" in out, out[-3000:]
    for check in ("absolute quantization error", "reference implementation error", "dot product error"):
        assert re.search(rf" i2_s {check}: +ok ", out), (check, out[-3000:])
