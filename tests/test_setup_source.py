"""Source step of setup_env.py: pinned sdist, hash check, patches (issue: patched llama.cpp build)."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from bitnet_gguf.errors import BitnetError
from bitnet_gguf.paths import cache_dir, load_pin, patches_dir
from bitnet_gguf.setup import source

from .conftest import REPO_ROOT

PIN = load_pin()


@pytest.fixture(scope="module")
def sdist() -> Path:
    return source.fetch_sdist(PIN)


def setup_env(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, str(REPO_ROOT / "setup_env.py"), *args], capture_output=True, text=True,
                          env={**os.environ, **(env or {})}, cwd=REPO_ROOT, timeout=600)


def test_patches_apply_on_fresh_unpack(sdist: Path, tmp_path: Path) -> None:
    dest = tmp_path / "llama.cpp"
    assert source.prepare_source(PIN, dest=dest, patches_dir=patches_dir()) is True
    assert "GGML_TYPE_I2_S    = 36" in (dest / "ggml" / "include" / "ggml.h").read_text()
    assert '"bitnet-b1.58"' in (dest / "src" / "llama-arch.cpp").read_text()
    assert len(source.patch_files(patches_dir())) >= 5
    # idempotent: same sdist and patches -> nothing to do
    assert source.prepare_source(PIN, dest=dest, patches_dir=patches_dir()) is False


def test_no_llama_cpp_code_is_committed() -> None:
    tracked = subprocess.run(["git", "ls-files"], cwd=REPO_ROOT, capture_output=True, text=True).stdout.split()
    assert not [f for f in tracked if f.startswith("third_party/llama.cpp/")]
    assert "third_party/pin.json" in tracked


def test_tampered_sdist_stops_with_one_line(sdist: Path, tmp_path: Path) -> None:
    cache = tmp_path / "cache"
    cache.mkdir()
    bad = cache / PIN.filename
    shutil.copyfile(sdist, bad)
    with open(bad, "r+b") as f:
        f.seek(1000)
        byte = f.read(1)
        f.seek(1000)
        f.write(bytes([byte[0] ^ 0xFF]))
    proc = setup_env("--source-dir", str(tmp_path / "src"), "--source-only", "-ld", str(tmp_path / "logs"),
                     env={"BITNET_GGUF_CACHE": str(cache)})
    assert proc.returncode == 1
    errors = [ln for ln in proc.stderr.splitlines() if ln.startswith("error:")]
    assert len(errors) == 1 and "sha256 mismatch" in errors[0] and PIN.sha256 in errors[0], proc.stderr
    assert not (tmp_path / "src").exists()


def test_failing_patch_names_patch_and_file(sdist: Path, tmp_path: Path) -> None:
    patches = tmp_path / "patches"
    shutil.copytree(patches_dir(), patches)
    (patches / "0099-broken.patch").write_text(
        "--- a/src/llama.cpp\n+++ b/src/llama.cpp\n@@ -1,3 +1,3 @@\n-this line is not in llama.cpp\n+x\n y\n z\n"
    )
    proc = setup_env("--source-dir", str(tmp_path / "src"), "--patches-dir", str(patches), "--source-only",
                     "-ld", str(tmp_path / "logs"), env={"BITNET_GGUF_CACHE": str(cache_dir())})
    assert proc.returncode == 1
    errors = [ln for ln in proc.stderr.splitlines() if ln.startswith("error:")]
    assert len(errors) == 1, proc.stderr
    assert "0099-broken.patch" in errors[0] and "src/llama.cpp" in errors[0]
    assert not (tmp_path / "src").exists()  # nothing half-patched left behind


def test_missing_compiler_stops_with_one_line(tmp_path: Path) -> None:
    proc = setup_env("--build-dir", str(tmp_path / "b"), "-ld", str(tmp_path / "logs"), env={"CC": "no-such-cc"})
    assert proc.returncode == 1
    assert proc.stderr.strip().splitlines()[-1] == (
        "error: C compiler 'no-such-cc' not found: install gcc/g++ (or clang) or set CC/CXX"
    )


def test_fetch_raises_on_mismatch(sdist: Path, tmp_path: Path) -> None:
    bad = tmp_path / PIN.filename
    bad.write_bytes(b"not the sdist")
    with pytest.raises(BitnetError, match="sha256 mismatch"):
        source.fetch_sdist(PIN, cache=tmp_path)
