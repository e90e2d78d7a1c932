"""run_inference.py: bad models, bad flags, bad chat templates, a missing build."""

from __future__ import annotations

import socket
from pathlib import Path
from typing import Any

import pytest

from bitnet_gguf.runtime.inference import main

from .common import REPO_ROOT, Case, assert_one_line_failure, fill, params, run_in_process, run_subprocess, snapshot

OK = ["-m", "{good}", "-p", "hi", "-n", "4", "--build-dir", "{build}"]


def _closed_port() -> int:
    """A loopback port nothing listens on (the kernel handed it out, then it was closed)."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def with_model(name: str, *extra: str) -> list[str]:
    return ["-m", "{" + name + "}", "-p", "hi", "-n", "4", "--build-dir", "{build}", *extra]


def template(data: bytes):
    return lambda ctx: (ctx["w"] / "t.jinja").write_bytes(data)


TPL = ["-cnv", "--chat-template", "{w}/t.jinja"]

# shared with run_server.py's table: the same model and template checks run there
MODEL_CASES = [
    Case("model-missing", ["-m", "{w}/gone/ggml-model-i2_s.gguf", "-p", "hi", "--build-dir", "{build}"],
         ["model not found: {w}/gone/ggml-model-i2_s.gguf", "python setup_env.py -md {w}/gone -q i2_s"]),
    Case("model-missing-file", ["-m", "{w}/nope.gguf", "-p", "hi", "--build-dir", "{build}"], "model not found: {w}/nope.gguf"),
    Case("model-folder", ["-m", "{w}", "-p", "hi", "--build-dir", "{build}"], "{w} is a folder, not a GGUF file"),
    Case("model-empty", with_model("empty"), "{empty} is not a GGUF file"),
    Case("model-text", with_model("text"), "{text} is not a GGUF file"),
    Case("model-random", with_model("random"), "{random} is not a GGUF file"),
    Case("model-magic-only", with_model("magic_only"), "{magic_only}: not a readable GGUF file"),
    Case("model-header-cut", with_model("header_cut"), "{header_cut}: not a readable GGUF file"),
    Case("model-version-1", with_model("version1"), "{version1}: not a readable GGUF file (GGUF version 1"),
    Case("model-bitnetcpp-tl2", with_model("bitnetcpp_tl2"), "{bitnetcpp_tl2} is a bitnet.cpp TL2 file"),
    Case("model-dev-null", ["-m", "/dev/null", "-p", "hi", "--build-dir", "{build}"], "/dev/null"),
    Case("template-missing", [*OK, "-cnv", "--chat-template", "{w}/none.jinja"], "unknown chat template '{w}/none.jinja'"),
    Case("template-binary", [*OK, *TPL], "--chat-template {w}/t.jinja: cannot be read as a UTF-8 Jinja file",
         template(b"\x89PNG\r\n\x1a\n\xff\xfe\x00")),
    Case("template-nul", [*OK, *TPL], "--chat-template {w}/t.jinja: expected a Jinja text file, got binary data", template(b"{{ x }}\0")),
    Case("template-empty", [*OK, *TPL], "--chat-template {w}/t.jinja: expected a Jinja text file, got an empty file", template(b"")),
    Case("template-syntax", [*OK, *TPL], "--chat-template {w}/t.jinja: not a valid Jinja template (line 1",
         template(b"{% for m in messages %}{{ m.content }")),
    Case("build-dir-empty", ["-m", "{good}", "-p", "hi", "--build-dir", "{w}"], "not found in {w}/bin: run python setup_env.py"),
    Case("build-dir-file", ["-m", "{good}", "-p", "hi", "--build-dir", "{w}/f"], "not found in {w}/f/bin",
         lambda c: (c["w"] / "f").write_text("x")),
    Case("threads-negative", [*OK, "-t", "-5"], "-t/--threads -5: expected a value between -1 and 4096"),
    Case("threads-huge", [*OK, "-t", "100000"], "-t/--threads 100000: expected a value between -1 and 4096"),
    Case("threads-text", [*OK, "-t", "two"], "argument -t/--threads: invalid int value: 'two'"),
    Case("ctx-negative", [*OK, "-c", "-1"], "-c/--ctx-size -1: expected a value at least 0"),
    Case("ctx-text", [*OK, "-c", "2k"], "argument -c/--ctx-size: invalid int value: '2k'"),
    Case("temp-negative", [*OK, "-temp", "-0.5"], "-temp/--temperature -0.5: expected a value between 0 and"),
    Case("temp-nan", [*OK, "-temp", "nan"], "-temp/--temperature nan"),
    Case("temp-text", [*OK, "-temp", "hot"], "argument -temp/--temperature: invalid float value: 'hot'"),
    Case("unknown-flag", [*OK, "--fast"], "unrecognized arguments: --fast"),
    Case("model-no-value", ["-p", "hi", "-m"], "argument -m/--model: expected one argument"),
]

CASES = [
    *MODEL_CASES,
    Case("prompt-missing", ["-m", "{good}", "--build-dir", "{build}"], "-p/--prompt is required"),
    Case("prompt-no-value", ["-m", "{good}", "-p"], "argument -p/--prompt: expected one argument"),
    Case("n-predict-negative", [*OK, "-n", "-5"], "-n/--n-predict -5: expected a value at least -2"),
    Case("n-predict-float", [*OK, "-n", "1.5"], "argument -n/--n-predict: invalid int value: '1.5'"),
    Case("top-p-high", [*OK, "--top-p", "1.5"], "--top-p 1.5: expected a value between 0 and 1"),
    Case("top-p-negative", [*OK, "--top-p", "-0.1"], "--top-p -0.1: expected a value between 0 and 1"),
    Case("top-k-negative", [*OK, "--top-k", "-1"], "--top-k -1: expected a value at least 0"),
    Case("batch-zero", [*OK, "-b", "0"], "-b/--batch-size 0: expected a value at least 1"),
    Case("batch-text", [*OK, "-b", "big"], "argument -b/--batch-size: invalid int value: 'big'"),
    Case("seed-negative", [*OK, "--seed", "-2"], "--seed -2: expected a value between -1 and"),
    Case("seed-huge", [*OK, "--seed", str(2**40)], f"--seed {2**40}: expected a value between -1 and"),
    Case("repeat-penalty-negative", [*OK, "--repeat-penalty", "-1"], "--repeat-penalty -1.0: expected a value between 0 and"),
    Case("cnv-bad-model", with_model("text", "-cnv"), "{text} is not a GGUF file"),
    # RPC workers (docs/rpc.md): the list is checked, then each worker is asked HELLO, before llama-completion runs
    Case("rpc-empty-entry", [*OK, "--rpc", "127.0.0.1:50052,"], "--rpc '127.0.0.1:50052,': entry 2 is empty"),
    Case("rpc-bad-port", [*OK, "--rpc", "127.0.0.1:50052,10.0.0.2:70000"], "entry 2 ('10.0.0.2:70000'): port '70000' is not a port"),
    Case("rpc-no-port", [*OK, "--rpc", "worker1"], "--rpc 'worker1' is not HOST:PORT"),
    Case("rpc-ipv6", [*OK, "--rpc", "[::1]:50052"], "IPv6 addresses are not supported"),
    Case("rpc-twice", [*OK, "--rpc", "h:1,h:1"], "h:1 is listed twice"),
    Case("rpc-refused", [*OK, "--rpc", "127.0.0.1:{closed_port}"], "RPC worker 127.0.0.1:{closed_port}: connection refused",
         lambda ctx: ctx.update(closed_port=_closed_port())),
    Case("ts-without-rpc", [*OK, "-ts", "1,1"], "-ts/--tensor-split needs --rpc"),
    Case("ts-negative", [*OK, "--rpc", "127.0.0.1:50052", "-ts", "1,-1"], "entry 2 (-1) must be a finite number >= 0"),
    Case("ts-empty-entry", [*OK, "--rpc", "127.0.0.1:50052", "-ts", "1,,1"], "entry 2 is empty"),
    Case("ngl-text", [*OK, "--rpc", "127.0.0.1:50052", "-ngl", "many"], "-ngl/--gpu-layers 'many': expected"),
    Case("rpc-timeout-negative", [*OK, "--rpc", "127.0.0.1:50052", "--rpc-timeout", "-1"], "--rpc-timeout -1.0: expected"),
    # the memory check reads the tensor table before llama-completion starts: an unknown type stops there
    Case("model-bad-tensor-type", with_model("badtype"), "{badtype}: not a readable GGUF file (99 is not a valid"),
    # this one reaches llama-completion, whose first error line becomes ours
    Case("model-truncated-half", with_model("half"), ["llama-completion exited with code", "tensor"]),
]


@pytest.fixture(scope="module")
def ctx_base(bad_ggufs: dict[str, Path], tiny_i2s: Path, build_dir: Path) -> dict[str, Any]:
    return {**bad_ggufs, "good": tiny_i2s, "build": build_dir}


@pytest.mark.parametrize("case", params(CASES))
def test_run_inference_bad_input(case: Case, ctx_base: dict[str, Any], tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    ctx = {**ctx_base, "w": tmp_path}
    if case.make:
        case.make(ctx)
    before = snapshot([tmp_path])
    rc, err = run_in_process(main, [fill(a, ctx) for a in case.argv], capsys)
    expect = [case.expect] if isinstance(case.expect, str) else case.expect
    assert_one_line_failure(rc, err, [fill(e, ctx) for e in expect], before, [tmp_path])


def test_run_inference_subprocess_sample(ctx_base: dict[str, Any], tmp_path: Path) -> None:
    (tmp_path / "t.jinja").write_bytes(b"\xff\xfe\x00binary")
    before = snapshot([tmp_path])
    r = run_subprocess([str(REPO_ROOT / "run_inference.py"), "-m", str(ctx_base["good"]), "-p", "hi", "-cnv",
                        "--chat-template", str(tmp_path / "t.jinja")])
    assert_one_line_failure(r.returncode, r.stderr, "--chat-template", before, [tmp_path])
