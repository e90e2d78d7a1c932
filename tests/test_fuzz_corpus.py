"""Replay the committed fuzz corpus (tests/fuzz/, docs/reliability.md "Fuzzing") against the loaders.

- Every GGUF input (tests/fuzz/corpus/gguf and py-gguf) goes through the libFuzzer binary of
  tests/fuzz/fuzz_gguf.c built with ASan + UBSan (cached in <build>/fuzz): gguf_init_from_file_ptr, then ggml's row
  validation of each tensor (our I2_S/TL1/TL2 checks included). libFuzzer runs files given as arguments once and
  exits non-zero on a sanitizer report or abort.
- The same GGUF inputs, and the safetensors ones, go through our Python readers: each parses or raises a one-line
  BitnetError (bitnet_gguf.tools.fuzz_py.check_input).
- The llama target's inputs (tests/fuzz/corpus/llama: crashers of llama's loader, fixed by patches/) are loaded by
  our build's llama-completion: each must be refused with an error, not abort the process (the sanitized llama
  fuzzer takes ~20 minutes to build, so it runs by hand: docs/reliability.md).

Without clang the C replay skips, except under CI (env CI set), where it fails: .ci/run installs clang.
"""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

import pytest

from bitnet_gguf.tools import fuzz
from bitnet_gguf.tools.fuzz_py import check_input

FUZZ = Path(__file__).resolve().parent / "fuzz"
CORPUS = FUZZ / "corpus"
GGUF_INPUTS = sorted(p for d in ("gguf", "py-gguf") for p in (CORPUS / d).glob("*") if p.is_file())
SAFETENSORS_INPUTS = sorted(p for p in (CORPUS / "py-safetensors").glob("*") if p.is_file())
LLAMA_INPUTS = sorted((CORPUS / "llama").glob("*.gguf"))


def _ids(paths: list[Path]) -> list[str]:
    return [f"{p.parent.name}/{p.name}" for p in paths]


@pytest.fixture(scope="module")
def fuzz_gguf() -> Path:
    if shutil.which("clang") is None or shutil.which("clang++") is None:
        if os.environ.get("CI"):
            pytest.fail("clang is missing: the fuzz-corpus replay needs clang with libFuzzer (.ci/run installs it)")
        pytest.skip("clang is missing (apt-get install clang libclang-rt-dev)")
    return fuzz.build_fuzzer("gguf", jobs=int(os.environ.get("BITNET_GGUF_FUZZ_JOBS", "2")))


def _replay(binary: Path, inputs: list[Path], env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run([str(binary), "-runs=1", *map(str, inputs)], capture_output=True, text=True, env=env, timeout=600)


def test_corpus_is_small() -> None:
    """The committed corpus stays a few KB per input (minimised crashers, hand-written regression cases)."""
    assert GGUF_INPUTS and SAFETENSORS_INPUTS
    big = [f"{p}: {p.stat().st_size} bytes" for p in [*GGUF_INPUTS, *SAFETENSORS_INPUTS, *LLAMA_INPUTS] if p.stat().st_size > 8192]
    assert not big, big


def test_c_gguf_loader_replays_corpus(fuzz_gguf: Path) -> None:
    proc = _replay(fuzz_gguf, GGUF_INPUTS, fuzz.sanitizer_env())
    report = proc.stdout + proc.stderr
    assert proc.returncode == 0, f"{fuzz.c_signature(report)}\n{report[-4000:]}"
    assert report.count("Executed ") == len(GGUF_INPUTS), report[-4000:]  # one line per input run


@pytest.mark.parametrize("path", LLAMA_INPUTS, ids=_ids(LLAMA_INPUTS))
def test_llama_loader_refuses_llama_corpus(bin_dir: Path, path: Path) -> None:
    proc = subprocess.run([str(bin_dir / "llama-completion"), "-m", str(path), "-n", "1", "-p", "x", "-no-cnv"],
                          capture_output=True, text=True, timeout=120, stdin=subprocess.DEVNULL)
    assert proc.returncode == 1, proc.stderr[-3000:]  # a refusal: not a signal (abort is -6, SIGFPE -8)
    assert "failed to load model" in proc.stderr


@pytest.mark.parametrize("path", GGUF_INPUTS, ids=_ids(GGUF_INPUTS))
def test_python_gguf_reader_keeps_contract(path: Path, tmp_path: Path) -> None:
    check_input("py-gguf", path.read_bytes(), tmp_path)


@pytest.mark.parametrize("path", SAFETENSORS_INPUTS, ids=_ids(SAFETENSORS_INPUTS))
def test_python_safetensors_reader_keeps_contract(path: Path, tmp_path: Path) -> None:
    check_input("py-safetensors", path.read_bytes(), tmp_path)
