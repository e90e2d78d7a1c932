"""Shared fixtures: one llama.cpp build per test run, and small synthetic models."""

from __future__ import annotations

import os
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


# CI sets this: a test that skips (a missing tool, data file or package) fails instead, so a green run has run
# everything the README claims
NO_SKIP_ENV = "BITNET_GGUF_NO_SKIP"


def _no_skip(report: pytest.TestReport | pytest.CollectReport) -> None:
    if report.skipped and os.environ.get(NO_SKIP_ENV) == "1" and not hasattr(report, "wasxfail"):
        reason = report.longrepr[2] if isinstance(report.longrepr, tuple) else str(report.longrepr)
        report.outcome = "failed"
        report.longrepr = f"skipped, which {NO_SKIP_ENV}=1 forbids: {reason}"


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[None]):  # type: ignore[no-untyped-def]
    _no_skip((yield).get_result())


@pytest.hookimpl(hookwrapper=True)
def pytest_make_collect_report(collector: pytest.Collector):  # type: ignore[no-untyped-def]
    _no_skip((yield).get_result())  # module-level skips (importorskip, allow_module_level) happen here


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


# tests/test_sanitized_ggml.py reruns the ggml-level tests against ggml libraries built with ASan + UBSan
GGML_BUILD_ENV = "BITNET_GGUF_TEST_GGML_BUILD"


def ggml_build_dir() -> Path:
    """The build whose ggml libraries the ggml-level tests load (the main build unless $BITNET_GGUF_TEST_GGML_BUILD)."""
    return Path(os.environ[GGML_BUILD_ENV]) if os.environ.get(GGML_BUILD_ENV) else paths.build_dir()


@pytest.fixture(scope="session")
def ggml_lib_dir(build_dir: Path) -> Path:
    return ggml_build_dir() / "bin"


@pytest.fixture(scope="session")
def ggml(ggml_lib_dir: Path) -> Ggml:
    """The built ggml libraries through ctypes."""
    return Ggml(ggml_lib_dir)


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


@pytest.fixture(scope="session")
def tiny_shakespeare_i2s(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The trained default model as I2_S, converted from its committed checkpoint (a fresh clone has no .gguf)."""
    from bitnet_gguf.convert import convert

    out = tmp_path_factory.mktemp("served") / "tiny-shakespeare" / "ggml-model-i2_s.gguf"
    out.parent.mkdir()
    return convert(REPO_ROOT / "models" / "tiny-shakespeare", "i2_s", out, progress=False).path
