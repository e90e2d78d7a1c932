"""`pip install .` (not editable): the installed package converts outside the clone and knows it has no checkout."""

from __future__ import annotations

import os
import subprocess
import venv
from pathlib import Path

import pytest

from .conftest import REPO_ROOT
from .gguf_read import read_gguf


@pytest.fixture(scope="module")
def installed(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A fresh venv holding a regular (non-editable) install; dependencies come from this interpreter's site-packages."""
    env_dir = tmp_path_factory.mktemp("venv")
    venv.create(env_dir, system_site_packages=True, with_pip=True)
    py = env_dir / "bin" / "python"
    proc = subprocess.run([str(py), "-m", "pip", "install", "--no-deps", "-q", str(REPO_ROOT)],
                          capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stderr[-3000:]
    return env_dir / "bin"


def _run(bin_dir: Path, cwd: Path, *args: str, **env: str) -> subprocess.CompletedProcess[str]:
    clean = {k: v for k, v in os.environ.items() if not k.startswith("BITNET_GGUF_") and k != "PYTHONPATH"}
    return subprocess.run([str(bin_dir / "bitnet-gguf"), *args], capture_output=True, text=True, cwd=cwd,
                          env={**clean, **env}, timeout=300)


def test_installed_package_is_not_the_checkout(installed: Path, tmp_path: Path) -> None:
    code = "import bitnet_gguf, bitnet_gguf.paths as p; print(bitnet_gguf.__file__); print(p.CHECKOUT)"
    proc = subprocess.run([str(installed / "python"), "-c", code], capture_output=True, text=True, cwd=tmp_path, timeout=60)
    where, checkout = proc.stdout.split()
    assert "site-packages" in where and checkout == "None", proc.stdout + proc.stderr


def test_help_and_conversion_outside_the_clone(installed: Path, tmp_path: Path) -> None:
    assert _run(installed, tmp_path, "--help").returncode == 0
    out = tmp_path / "ts.gguf"
    proc = _run(installed, tmp_path, "convert", str(REPO_ROOT / "models" / "tiny-shakespeare"), "--outfile", str(out), "--no-progress")
    assert proc.returncode == 0, proc.stderr
    meta, tensors = read_gguf(out)
    assert meta["general.architecture"] == "bitnet-b1.58" and meta["general.file_type"] == 40
    assert tensors["blk.0.attn_q.weight"].ggml_type == 36


def test_commands_that_need_a_checkout_say_so(installed: Path, tmp_path: Path) -> None:
    proc = _run(installed, tmp_path, "setup")
    assert proc.returncode == 1 and proc.stderr.count("\n") == 1, proc.stderr
    assert "needs a source checkout" in proc.stderr
    proc = _run(installed, tmp_path, "generate-model", "--arch", "llama", "--size", "tiny", "--gguf", "i2_s", "--out", "x.gguf")
    assert proc.returncode == 1 and "BITNET_GGUF_VOCAB_DIR" in proc.stderr and "Traceback" not in proc.stderr, proc.stderr
    proc = _run(installed, tmp_path, "bench", "-m", str(tmp_path / "none.gguf"))
    assert proc.returncode == 1 and "Traceback" not in proc.stderr, proc.stderr


def test_installed_package_uses_an_explicit_build(installed: Path, tmp_path: Path, build_dir: Path, tiny_i2s: Path) -> None:
    proc = subprocess.run([str(installed / "python"), "-c", "import sys; from bitnet_gguf.runtime.inference import main; "
                           "sys.exit(main(['-m', sys.argv[1], '-p', 'hi', '--dry-run']))", str(tiny_i2s)],
                          capture_output=True, text=True, cwd=tmp_path, timeout=60,
                          env={**os.environ, "BITNET_GGUF_BUILD_DIR": str(build_dir)})
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.startswith(str(build_dir / "bin" / "llama-completion")), proc.stdout
