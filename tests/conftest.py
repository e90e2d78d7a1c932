"""Shared fixtures: one llama.cpp build per test run, and small synthetic models."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from bitnet_gguf import paths
from bitnet_gguf.synthetic.gguf_model import write_synthetic_gguf

from .ggml_ctypes import Ggml

REPO_ROOT = Path(__file__).resolve().parent.parent
# tinyshakespeare (public domain): what models/tiny-shakespeare was trained on; the quality tests read it
TINYSHAKESPEARE = REPO_ROOT / "tests" / "data" / "tinyshakespeare.txt"


@pytest.fixture(scope="session")
def build_dir() -> Path:
    """The patched llama.cpp build; built once (python setup_env.py) if the test run starts without one."""
    bdir = paths.build_dir()
    if not (bdir / "bin" / "llama-quantize").exists():
        subprocess.run([sys.executable, str(REPO_ROOT / "setup_env.py"), "--build-dir", str(bdir)], check=True)
    return bdir


@pytest.fixture(scope="session")
def bin_dir(build_dir: Path) -> Path:
    return build_dir / "bin"


@pytest.fixture(scope="session")
def ggml(bin_dir: Path) -> Ggml:
    """The built ggml libraries through ctypes."""
    return Ggml(bin_dir)


@pytest.fixture(scope="session")
def vocab_gguf(build_dir: Path) -> Path:
    return paths.vocab_gguf("ggml-vocab-llama-bpe.gguf")


@pytest.fixture(scope="session")
def models_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("models")


@pytest.fixture(scope="session")
def tiny_f32(models_dir: Path, vocab_gguf: Path) -> Path:
    """A random ternary bitnet-b1.58 model stored as F32 (what bitnet.cpp's converter writes before llama-quantize)."""
    return write_synthetic_gguf(models_dir / "tiny-f32.gguf", "bitnet-b1.58", "tiny", "f32", vocab_gguf, seed=1)


@pytest.fixture(scope="session")
def tiny_i2s(models_dir: Path, vocab_gguf: Path) -> Path:
    """The same model as tiny_f32, packed to I2_S in numpy (seed 1 gives the same weights)."""
    return write_synthetic_gguf(models_dir / "tiny-i2_s.gguf", "bitnet-b1.58", "tiny", "i2_s", vocab_gguf, seed=1)


def run_tool(bin_dir: Path, tool: str, *args: str, timeout: int = 300) -> subprocess.CompletedProcess[str]:
    return subprocess.run([str(bin_dir / tool), *args], capture_output=True, text=True, timeout=timeout)


@pytest.fixture(scope="session")
def tiny_llama_i2s(models_dir: Path, vocab_gguf: Path) -> Path:
    """A random ternary `llama` I2_S model (the Llama3/Falcon3 1.58-bit family). Its separate output matrix makes
    greedy text varied, where tiny_i2s (tied embeddings) just repeats the last prompt token."""
    return write_synthetic_gguf(models_dir / "tiny-llama-i2_s.gguf", "llama", "tiny", "i2_s", vocab_gguf, seed=2)
