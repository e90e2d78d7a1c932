"""`python -m bitnet_gguf bench` and `bench-suite`: bad models and flags, a failing llama-quantize, results that
cannot be written. Nothing here runs a benchmark: every case is refused before llama-bench starts."""

from __future__ import annotations

import os
import stat
from pathlib import Path
from typing import Any

import pytest

from bitnet_gguf.cli import main

from .common import REPO_ROOT, Case, assert_one_line_failure, fill, params, run_in_process, run_subprocess, snapshot

B = ["bench", "-m", "{good}", "--build-dir", "{build}"]


def model(name: str, *extra: str) -> list[str]:
    return ["bench", "-m", "{" + name + "}", "--build-dir", "{build}", *extra]


BENCH_CASES = [
    Case("no-model", ["bench"], "the following arguments are required: -m/--model"),
    Case("model-no-value", ["bench", "-m"], "argument -m/--model: expected one argument"),
    Case("model-missing", ["bench", "-m", "{w}/nope.gguf"], "-m/--model {w}/nope.gguf: model file not found"),
    Case("model-folder", ["bench", "-m", "{w}"], "-m/--model {w}: is a folder, expected a GGUF file"),
    Case("model-empty", model("empty"), "{empty} is not a GGUF file"),
    Case("model-text", model("text"), "{text} is not a GGUF file"),
    Case("model-random", model("random"), "{random} is not a GGUF file"),
    Case("model-magic-only", model("magic_only"), "{magic_only}: not a readable GGUF file"),
    Case("model-header-cut", model("header_cut"), "{header_cut}: not a readable GGUF file"),
    Case("model-version-1", model("version1"), "{version1}: not a readable GGUF file"),
    Case("model-bitnetcpp-tl2", model("bitnetcpp_tl2"), "{bitnetcpp_tl2} is a bitnet.cpp TL2 file"),
    Case("n-negative", [*B, "-n", "-1"], "-n/--n-token -1: expected at least 0"),
    Case("n-text", [*B, "-n", "lots"], "argument -n/--n-token: invalid int value: 'lots'"),
    Case("p-negative", [*B, "-p", "-128"], "-p/--n-prompt -128: expected at least 0"),
    Case("p-list", [*B, "-p", "128,512"], "argument -p/--n-prompt: invalid int value: '128,512'"),
    Case("t-text", [*B, "-t", "two"], "-t/--threads 'two': expected positive integers separated by commas"),
    Case("t-zero", [*B, "-t", "0"], "-t/--threads '0': expected positive integers"),
    Case("t-empty-item", [*B, "-t", "1,,2"], "-t/--threads '1,,2'"),
    Case("t-negative", [*B, "-t", "-2"], "-t/--threads '-2'"),
    Case("r-zero", [*B, "-r", "0"], "-r/--repetitions 0: expected at least 1"),
    Case("r-text", [*B, "-r", "x"], "argument -r/--repetitions: invalid int value: 'x'"),
    Case("b-zero", [*B, "-b", "0"], "-b/--batch-size 0: expected at least 1"),
    Case("b-text", [*B, "-b", "1k"], "argument -b/--batch-size: invalid int value: '1k'"),
    Case("build-dir-empty", ["bench", "-m", "{good}", "--build-dir", "{w}"], "llama-bench not found in {w}/bin"),
    Case("build-dir-file", ["bench", "-m", "{good}", "--build-dir", "{w}/f"], "llama-bench not found in {w}/f/bin",
         lambda c: (c["w"] / "f").write_text("x")),
    Case("unknown-flag", [*B, "--ngl", "99"], "unrecognized arguments: --ngl 99"),
    Case("flag-no-value", [*B, "-t"], "argument -t/--threads: expected one argument"),
    Case("dev-null", ["bench", "-m", "/dev/null"], "-m/--model /dev/null: model file not found"),
    Case("p-text", [*B, "-p", "long"], "argument -p/--n-prompt: invalid int value: 'long'"),
    Case("p-no-value", [*B, "-p"], "argument -p/--n-prompt: expected one argument"),
    Case("n-float", [*B, "-n", "1.5"], "argument -n/--n-token: invalid int value: '1.5'"),
    Case("r-negative", [*B, "-r", "-3"], "-r/--repetitions -3: expected at least 1"),
    Case("t-float", [*B, "-t", "1.5"], "-t/--threads '1.5'"),
    Case("positional-extra", [*B, "extra"], "unrecognized arguments: extra"),
    Case("build-dir-no-value", ["bench", "-m", "{good}", "--build-dir"], "argument --build-dir: expected one argument"),
    Case("model-symlink-loop", ["bench", "-m", "{w}/loop"], "-m/--model {w}/loop: model file not found",
         lambda c: os.symlink(c["w"] / "loop", c["w"] / "loop")),
    Case("model-dangling-link", ["bench", "-m", "{w}/link"], "-m/--model {w}/link: model file not found",
         lambda c: os.symlink(c["w"] / "gone.gguf", c["w"] / "link")),
    Case("model-truncated-half", model("half"), ["{half}: tensor", "truncated"]),
    Case("model-tail-cut", model("tail_cut"), ["{tail_cut}: tensor", "truncated"]),
    Case("model-bad-tensor-type", model("badtype"), "{badtype}: not a readable GGUF file"),
]


def fake_build(ctx: dict[str, Any], script: str) -> None:
    """A build folder whose llama-quantize is `script` (and a llama-bench that must never run)."""
    b = ctx["w"] / "fakebuild" / "bin"
    b.mkdir(parents=True)
    for name, body in (("llama-quantize", script), ("llama-bench", "#!/bin/sh\necho llama-bench must not run >&2\nexit 99\n")):
        (b / name).write_text(body)
        (b / name).chmod(stat.S_IRWXU)


def prepared_source(ctx: dict[str, Any]) -> None:
    """The suite's tiny-shape source model already in --work-dir (made by an earlier run), so only quantize runs."""
    (ctx["w"] / "work").mkdir()
    os.link(ctx["good"], ctx["w"] / "work" / "bitnet-tiny-shape-i2_s-f32embd.gguf")


def quantize_script(script: str):
    def make(ctx: dict[str, Any]) -> None:
        fake_build(ctx, script)
        prepared_source(ctx)
    return make


S = ["bench-suite", "--shape", "tiny", "--out", "{w}/res", "--work-dir", "{w}/work", "--build-dir", "{build}"]
FAKE = ["bench-suite", "--shape", "tiny", "--out", "{w}/res", "--work-dir", "{w}/work", "--build-dir", "{w}/fakebuild",
        "--types", "TQ2_0,I2_S"]
SUITE_CASES = [
    Case("types-unknown", [*S, "--types", "I2_S,FOO"], "--types I2_S,FOO: FOO is not a type"),
    Case("types-empty-item", [*S, "--types", "I2_S,,TQ2_0"], "an empty name is not a type"),
    Case("types-empty", [*S, "--types", ""], "--types : an empty name is not a type"),
    Case("types-twice", [*S, "--types", "I2_S,i2_s,TQ2_0"], "a type is named twice"),
    Case("baseline-not-in-types", [*S, "--types", "I2_S,TL2", "--baseline", "Q8_0"], "--baseline Q8_0 is not one of --types"),
    Case("head-type-unknown", [*S, "--head-type", "q9_k"], "--head-type q9_k: expected one of"),
    Case("kernels-unknown", [*S, "--rounds", "2", "--kernels", "native,sse9"], "--kernels native,sse9: sse9 is not a kernel"),
    Case("kernels-without-rounds", [*S, "--kernels", "avx2"], "--kernels avx2: forcing kernels needs --rounds 2"),
    Case("rounds-zero", [*S, "--rounds", "0"], "--rounds 0: expected at least 1"),
    Case("rounds-text", [*S, "--rounds", "two"], "argument --rounds: invalid int value: 'two'"),
    Case("repetitions-zero", [*S, "-r", "0"], "-r/--repetitions 0: expected at least 1"),
    Case("threads-text", [*S, "-t", "1,two"], "-t/--threads '1,two'"),
    Case("prompt-list-bad", [*S, "-p", "128;512"], "-p/--n-prompt '128;512'"),
    Case("gen-empty", [*S, "-n", ""], "-n/--n-gen ''"),
    Case("shape-unknown", [*S, "--shape", "5B"], "argument --shape: invalid choice: '5B'"),
    Case("out-is-file", [*S[:5], "--out", "{w}/f"], "--out {w}/f: is a file, expected a folder", lambda c: (c["w"] / "f").write_text("x")),
    Case("out-under-file", [*S[:5], "--out", "{w}/f/res"], "{w}/f is a file, expected a folder", lambda c: (c["w"] / "f").write_text("x")),
    Case("out-unwritable", ["bench-suite", "--shape", "tiny", "--out", "/sys/kernel/res", "--work-dir", "{w}/work"], "/sys/kernel"),
    Case("work-dir-is-file", ["bench-suite", "--shape", "tiny", "--out", "{w}/res", "--work-dir", "{w}/f"],
         "--work-dir {w}/f: is a file, expected a folder", lambda c: (c["w"] / "f").write_text("x")),
    Case("build-dir-empty", ["bench-suite", "--shape", "tiny", "--out", "{w}/res", "--work-dir", "{w}/work", "--build-dir", "{w}"],
         "llama-quantize not found in {w}/bin"),
    Case("unknown-flag", [*S, "--fast"], "unrecognized arguments: --fast"),
    Case("flag-no-value", [*S, "--types"], "argument --types: expected one argument"),
    Case("rounds-negative", [*S, "--rounds", "-1"], "--rounds -1: expected at least 1"),
    Case("rounds-float", [*S, "--rounds", "1.5"], "argument --rounds: invalid int value: '1.5'"),
    Case("repetitions-text", [*S, "-r", "many"], "argument -r/--repetitions: invalid int value: 'many'"),
    Case("head-type-empty", [*S, "--head-type", ""], "--head-type : expected one of"),
    Case("types-misspelt", [*S, "--types", "I2S,TQ2_0"], "I2S is not a type"),
    Case("baseline-empty", [*S, "--baseline", ""], "--baseline is not one of --types"),
    Case("kernels-empty-item", [*S, "--rounds", "2", "--kernels", "native,"], "an empty name is not a kernel"),
    Case("threads-zero", [*S, "-t", "0,1"], "-t/--threads '0,1': expected positive integers"),
    Case("prompt-negative", [*S, "-p", "-5"], "-p/--n-prompt '-5': expected integers >= 0"),
    Case("shape-no-value", [*S, "--shape"], "argument --shape: expected one argument"),
    Case("work-dir-under-file", ["bench-suite", "--shape", "tiny", "--out", "{w}/res", "--work-dir", "{w}/f/work"],
         "{w}/f is a file, expected a folder", lambda c: (c["w"] / "f").write_text("x")),
    Case("build-dir-file", ["bench-suite", "--shape", "tiny", "--out", "{w}/res", "--work-dir", "{w}/work", "--build-dir", "{w}/f"],
         "llama-quantize not found in {w}/f/bin", lambda c: (c["w"] / "f").write_text("x")),
    Case("quantize-not-executable", FAKE, "{w}/fakebuild/bin/llama-quantize: Permission denied",
         lambda c: (quantize_script("#!/bin/sh\nexit 0\n")(c), (c["w"] / "fakebuild" / "bin" / "llama-quantize").chmod(0o644))),
    # llama-quantize fails: with empty stderr (was an IndexError), with a message, killed by a signal
    Case("quantize-fails-silently", FAKE, "llama-quantize to TQ2_0 failed: exit code 3, no message",
         quantize_script("#!/bin/sh\nexit 3\n")),
    Case("quantize-fails-message", FAKE, "llama-quantize to TQ2_0 failed: main: invalid ftype",
         quantize_script("#!/bin/sh\necho 'loading' >&2\necho 'main: invalid ftype' >&2\nexit 1\n")),
    Case("quantize-half-written", FAKE, "llama-quantize to TQ2_0 failed: exit code 1",
         quantize_script('#!/bin/sh\necho partial > "$7"\nexit 1\n')),
    Case("quantize-killed", FAKE, "llama-quantize to TQ2_0 failed: exit code -9", quantize_script("#!/bin/sh\nkill -9 $$\n")),
]


@pytest.fixture(scope="module")
def ctx_base(bad_ggufs: dict[str, Path], tiny_i2s: Path, build_dir: Path) -> dict[str, Any]:
    return {**bad_ggufs, "good": tiny_i2s, "build": build_dir}


def _run(case: Case, ctx: dict[str, Any], capsys: pytest.CaptureFixture[str]) -> None:
    if case.make:
        case.make(ctx)
    (ctx["w"] / "res").mkdir(exist_ok=True)
    (ctx["w"] / "res" / "results.md").write_text("previous results\n")
    before = snapshot([ctx["w"]])
    rc, err = run_in_process(main, [fill(a, ctx) for a in case.argv], capsys)
    expect = [case.expect] if isinstance(case.expect, str) else case.expect
    assert_one_line_failure(rc, err, [fill(e, ctx) for e in expect], before, [ctx["w"]])


@pytest.mark.parametrize("case", params(BENCH_CASES))
def test_bench_bad_input(case: Case, ctx_base: dict[str, Any], tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    _run(case, {**ctx_base, "w": tmp_path}, capsys)


@pytest.mark.parametrize("case", params(SUITE_CASES))
def test_bench_suite_bad_input(case: Case, ctx_base: dict[str, Any], tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    _run(case, {**ctx_base, "w": tmp_path}, capsys)


def test_bench_subprocess_sample(ctx_base: dict[str, Any], tmp_path: Path) -> None:
    before = snapshot([tmp_path])
    r = run_subprocess(["-m", "bitnet_gguf", "bench", "-m", str(ctx_base["text"]), "-t", "2"], cwd=REPO_ROOT)
    assert_one_line_failure(r.returncode, r.stderr, "is not a GGUF file", before, [tmp_path])


def test_bench_suite_subprocess_sample(ctx_base: dict[str, Any], tmp_path: Path) -> None:
    before = snapshot([tmp_path])
    r = run_subprocess(["-m", "bitnet_gguf", "bench-suite", "--types", "I2_S,TQ3_0", "--out", str(tmp_path / "r")])
    assert_one_line_failure(r.returncode, r.stderr, "TQ3_0 is not a type", before, [tmp_path])
