"""setup_env.py: bad flags, folders, models and repos, all refused before anything is downloaded or built (the
build folder is always a temporary one, and CC points nowhere, so a case that wrongly passed would stop at the
compiler check instead of building); missing git in a real process."""

from __future__ import annotations

import os
import shutil
import sys
from pathlib import Path
from typing import Any

import pytest

from bitnet_gguf import paths
from bitnet_gguf.setup.setup_env import main

from .common import (
    REPO_ROOT,
    Case,
    assert_one_line_failure,
    fill,
    params,
    replace_bytes,
    run_in_process,
    run_subprocess,
    snapshot,
    truncate,
)
from .test_bad_convert import _added_token, _drop, _retype, _shard, cfg

BASE = ["--build-dir", "{w}/build", "-ld", "{w}/logs"]
MD = [*BASE, "-md", "{m}"]
Q = "model.layers.0.self_attn.q_proj.weight"


def mkfile(rel: str):
    return lambda ctx: (ctx["w"] / rel).write_text("x")


def raw(name: str, data: bytes):
    return lambda ctx: replace_bytes(ctx["m"] / name, data)


CASES = [
    # flags and folders
    Case("log-dir-is-file", [*BASE[:2], "-ld", "{w}/f"], "-ld/--log-dir {w}/f: is a file, expected a folder", mkfile("f")),
    Case("log-dir-under-file", [*BASE[:2], "-ld", "{w}/f/logs"], "-ld/--log-dir {w}/f/logs: {w}/f is a file", mkfile("f")),
    Case("build-dir-is-file", ["--build-dir", "{w}/f", "-ld", "{w}/logs"], "--build-dir {w}/f: is a file, expected a folder",
         mkfile("f")),
    Case("build-dir-under-file", ["--build-dir", "{w}/f/b", "-ld", "{w}/logs"], "--build-dir {w}/f/b: {w}/f is a file",
         mkfile("f")),
    Case("jobs-zero", [*BASE, "-j", "0"], "-j/--jobs 0: expected at least 1"),
    Case("jobs-negative", [*BASE, "-j", "-4"], "-j/--jobs -4: expected at least 1"),
    Case("jobs-text", [*BASE, "-j", "all"], "argument -j/--jobs: invalid int value: 'all'"),
    Case("quant-unknown", [*BASE, "-q", "q4_0"], "argument -q/--quant-type: invalid choice: 'q4_0'"),
    Case("quant-tl1-on-x86", [*MD, "-q", "tl1"], "-q tl1 is the lookup-table layout for arm CPUs"),
    Case("compiler-unknown", [*BASE, "--compiler", "icc"], "argument --compiler: invalid choice: 'icc'"),
    Case("unknown-flag", [*BASE, "--cuda"], "unrecognized arguments: --cuda"),
    Case("md-no-value", [*BASE, "-md"], "argument -md/--model-dir: expected one argument"),
    Case("hr-no-value", [*BASE, "-hr"], "argument -hr/--hf-repo: expected one argument"),
    Case("q-no-value", [*BASE, "-q"], "argument -q/--quant-type: expected one argument"),
    # -md: folders and GGUF files
    Case("md-missing", [*BASE, "-md", "{w}/nope"], "-md {w}/nope: folder not found"),
    Case("md-empty-folder", [*BASE, "-md", "{w}/e"], "-md {w}/e: no Hugging Face checkpoint", lambda c: (c["w"] / "e").mkdir()),
    Case("md-is-file", [*BASE, "-md", "{w}/f"], "-md/--model-dir {w}/f: is a file, expected a checkpoint folder", mkfile("f")),
    Case("md-gguf-missing", [*BASE, "-md", "{w}/x.gguf"], "-md/--model-dir {w}/x.gguf: GGUF file not found"),
    Case("md-gguf-text", [*BASE, "-md", "{text}", "-q", "tl2"], "{text} is not a GGUF file"),
    Case("md-gguf-header-cut", [*BASE, "-md", "{header_cut}", "-q", "tl2"], "{header_cut}: not a readable GGUF file"),
    Case("md-gguf-truncated", [*BASE, "-md", "{half}", "-q", "tl2"], ["-md {half}: tensor", "truncated"]),
    Case("md-gguf-bitnetcpp", [*BASE, "-md", "{bitnetcpp_tl2}", "-q", "tl2"], "{bitnetcpp_tl2} is a bitnet.cpp TL2 file"),
    Case("md-gguf-no-i2s", [*BASE, "-md", "{f32}", "-q", "tl2"], "-md {f32}: no I2_S tensors to convert to tl2"),
    # -md: checkpoints the converter refuses (checked before the build, not after it)
    Case("ckpt-no-config", MD, "-md {m}: no Hugging Face checkpoint", lambda c: (c["m"] / "config.json").unlink()),
    Case("ckpt-config-not-json", MD, "config.json: not valid JSON", raw("config.json", b"{")),
    Case("ckpt-rope-scaling-string", MD, "config.json: rope_scaling must be an object", cfg(rope_scaling="linear")),
    Case("ckpt-unknown-arch", MD, "architecture 'MistralForCausalLM' is not supported", cfg(architectures=["MistralForCausalLM"])),
    Case("ckpt-layers", MD, "missing tensor model.layers.2.", cfg(num_hidden_layers=3)),
    Case("ckpt-vocab-small", MD, "but the model's vocab_size is 100", cfg(vocab_size=100)),
    Case("ckpt-st-truncated", MD, "model.safetensors: corrupt safetensors header", lambda c: truncate(c["m"] / "model.safetensors", 100)),
    Case("ckpt-st-garbage", MD, "model.safetensors: corrupt safetensors header", raw("model.safetensors", b"\xff" * 64)),
    Case("ckpt-tensor-missing", MD, f"missing tensor {Q}", _drop(Q)),
    Case("ckpt-wrong-dtype", MD, f"tensor {Q}: dtype I8", _retype(Q, "I8", "i1")),
    Case("ckpt-shard-missing", MD, "shard model-00002-of-00002.safetensors is missing", _shard()),
    Case("ckpt-spm-corrupt", MD, "tokenizer.model: cannot be read as a SentencePiece model", raw("tokenizer.model", b"junk")),
    Case("ckpt-no-tokenizer", MD, "no tokenizer.model or tokenizer.json", lambda c: (c["m"] / "tokenizer.model").unlink()),
    # -hr
    Case("hr-embedding", [*BASE, "-hr", "microsoft/bitnet-embedding-0.6b", "-md", "{w}/models"], "embedding models are not supported"),
    Case("hr-not-a-repo", [*BASE, "-hr", "BitNet-b1.58-2B-4T", "-md", "{w}/models"], "expected a Hugging Face repo id OWNER/NAME"),
    Case("hr-offline", [*BASE, "-hr", "microsoft/BitNet-b1.58-2B-4T", "-md", "{w}/models"], "HF_HUB_OFFLINE is set",
         env={"HF_HUB_OFFLINE": "1"}),
    Case("hr-target-is-file", [*BASE, "-hr", "1bitLLM/bitnet_b1_58-large", "-md", "{w}"], "{w}/bitnet_b1_58-large is a file",
         mkfile("bitnet_b1_58-large")),
]

BPE_CASES = [
    Case("ckpt-bpe-added-token-no-id", MD, "tokenizer.json: added_tokens[", _added_token({"content": "<y>"})),
    Case("ckpt-bpe-not-json", MD, "tokenizer.json: not a valid tokenizer.json", raw("tokenizer.json", b"[")),
]


@pytest.fixture(scope="module")
def ctx_base(bad_ggufs: dict[str, Path], tiny_f32: Path) -> dict[str, Any]:
    return {**bad_ggufs, "f32": tiny_f32}


def _run(case: Case, ctx: dict[str, Any], src: Path | None, monkeypatch: pytest.MonkeyPatch,
         capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.setenv("CC", "/nonexistent/cc")  # a case that got past the checks must not start a 10-minute build
    monkeypatch.delenv("HF_HUB_OFFLINE", raising=False)
    for k, v in case.env.items():
        monkeypatch.setenv(k, v)
    monkeypatch.chdir(ctx["w"])
    if src is not None:
        shutil.copytree(src, ctx["m"], copy_function=os.link)
    if case.make:
        case.make(ctx)
    before = snapshot([ctx["w"]])
    rc, err = run_in_process(main, [fill(a, ctx) for a in case.argv], capsys)
    expect = [case.expect] if isinstance(case.expect, str) else case.expect
    assert_one_line_failure(rc, err, [fill(e, ctx) for e in expect], before, [ctx["w"]])


@pytest.mark.parametrize("case", params(CASES))
def test_setup_env_bad_input(case: Case, ctx_base: dict[str, Any], spm_ckpt: Path, tmp_path: Path,
                             monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    _run(case, {**ctx_base, "w": tmp_path, "m": tmp_path / "m"}, spm_ckpt, monkeypatch, capsys)


@pytest.mark.parametrize("case", params(BPE_CASES))
def test_setup_env_bad_bpe(case: Case, ctx_base: dict[str, Any], bpe_ckpt: Path, tmp_path: Path,
                           monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    _run(case, {**ctx_base, "w": tmp_path, "m": tmp_path / "m"}, bpe_ckpt, monkeypatch, capsys)


def test_setup_env_without_git(tmp_path: Path) -> None:
    """No git on PATH: one line naming the patch and git; the half-made source folder is removed. (Progress and
    the step's log tail go to stdout; the step's log stays in -ld, outside the watched folder.)"""
    sdist = paths.cache_dir() / paths.load_pin().filename
    assert sdist.is_file(), f"{sdist}: python setup_env.py downloads it (the README's test command runs it first)"
    work = tmp_path / "w"
    work.mkdir()
    before = snapshot([work])
    r = run_subprocess([str(REPO_ROOT / "setup_env.py"), "--source-only", "--source-dir", str(work / "src"),
                        "--build-dir", str(work / "build"), "-ld", str(tmp_path / "logs")],
                       env={"PATH": str(tmp_path / "empty-path"), "CC": sys.executable, "CXX": sys.executable,
                            "PYTHONPATH": str(REPO_ROOT)}, timeout=600)
    assert_one_line_failure(r.returncode, r.stderr, ["git not found on PATH", "patch 0001"], before, [work])


def test_setup_env_subprocess_sample(tmp_path: Path) -> None:
    (tmp_path / "logs").write_text("a file where the log folder should be")
    before = snapshot([tmp_path])
    r = run_subprocess([str(REPO_ROOT / "setup_env.py"), "-ld", str(tmp_path / "logs"), "--build-dir", str(tmp_path / "b")])
    assert_one_line_failure(r.returncode, r.stderr, "-ld/--log-dir", before, [tmp_path])
