"""The ggml-level tests of I2_S, TL1, TL2 and the op guard (test_i2s_ggml.py, test_tl_ggml.py, test_bitnet_ops.py)
again, against ggml libraries built with AddressSanitizer + UndefinedBehaviorSanitizer: any out-of-bounds read of
weights, activations or work buffers, or any undefined shift, aborts the run with a report.

The sanitized libraries are ggml-base and ggml-cpu only (what those tests load through ctypes), built from the same
patched source, kernels and generated header as the main build, into <build>/asan.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from bitnet_gguf import paths
from bitnet_gguf.setup import build, kernel_gen

from .conftest import GGML_BUILD_ENV, REPO_ROOT

SANITIZE = "-fsanitize=address,undefined -fno-sanitize-recover=all -fno-omit-frame-pointer"
GGML_TESTS = ["tests/test_i2s_ggml.py", "tests/test_tl_ggml.py", "tests/test_bitnet_ops.py"]


def _libasan() -> str:
    """gcc's ASan runtime: it must be the first library of the (uninstrumented) Python process."""
    path = subprocess.run(["gcc", "-print-file-name=libasan.so"], capture_output=True, text=True, check=True).stdout.strip()
    assert os.path.isabs(path) and os.path.exists(path), f"gcc has no libasan ({path}); apt: libasan8 / gcc"
    return path


@pytest.fixture(scope="module")
def asan_build(build_dir: Path) -> Path:
    out = build_dir / "asan"
    args = build.cmake_args(paths.load_pin(), "gcc", "g++", False, paths.source_dir(), kernel_gen.generated_dir(build_dir))
    args += ["-DCMAKE_BUILD_TYPE=RelWithDebInfo", f"-DCMAKE_C_FLAGS={SANITIZE}", f"-DCMAKE_CXX_FLAGS={SANITIZE}",
             "-DLLAMA_BUILD_TESTS=OFF", "-DGGML_OPENMP=ON"]
    env = build.ccache_env()
    with open(out.with_suffix(".log"), "w") as log:
        for cmd in (["cmake", "-B", str(out), *args],
                    ["cmake", "--build", str(out), "-j", "2", "--target", "ggml-base", "ggml-cpu"]):
            r = subprocess.run(cmd, stdout=log, stderr=subprocess.STDOUT, env=env)
            assert r.returncode == 0, f"{' '.join(cmd[:3])} failed: see {log.name}"
    assert (out / "bin" / "libggml-cpu.so").exists()
    return out


def test_ggml_level_tests_under_asan_ubsan(asan_build: Path) -> None:
    env = dict(os.environ, **{GGML_BUILD_ENV: str(asan_build), "LD_PRELOAD": _libasan(),
                              # Python itself "leaks" by design at exit; the kernels' buffers are checked by ASan
                              "ASAN_OPTIONS": "detect_leaks=0:abort_on_error=1",
                              "UBSAN_OPTIONS": "print_stacktrace=1:halt_on_error=1"})
    r = subprocess.run([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "-x", *GGML_TESTS],
                       capture_output=True, text=True, cwd=REPO_ROOT, env=env, timeout=1800)
    out = r.stdout + r.stderr
    assert "AddressSanitizer" not in out and "runtime error:" not in out, out[-5000:]
    assert r.returncode == 0, out[-5000:]
    m = re.search(r"(\d+) passed", out)
    assert m and int(m[1]) >= 190 and " failed" not in out and "skipped" not in out, out[-2000:]
