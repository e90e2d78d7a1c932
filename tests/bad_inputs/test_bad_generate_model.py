"""`python -m bitnet_gguf generate-model`: bad flags, bad vocab folders, outputs that cannot be written."""

from __future__ import annotations

import resource
import shutil
from pathlib import Path
from typing import Any

import gguf
import pytest

from bitnet_gguf import paths
from bitnet_gguf.cli import main

from .common import Case, assert_one_line_failure, fill, params, run_in_process, run_subprocess, snapshot

SPM = "ggml-vocab-llama-spm.gguf"
BPE = "ggml-vocab-llama-bpe.gguf"
G = ["generate-model", "--arch", "bitnet", "--size", "tiny"]
OUT = ["--out", "{w}/out"]


def vocab(name: str, data: bytes | None = None, copy_of: str | None = None):
    """A --vocab-dir folder {v} holding `name` with these bytes (or a copy of one of llama.cpp's vocab files)."""
    def make(ctx: dict[str, Any]) -> None:
        v = ctx["v"]
        v.mkdir(exist_ok=True)
        if copy_of:
            shutil.copyfile(paths.vocab_dir() / copy_of, v / name)
        elif data is None:  # a GGUF without tokenizer keys
            w = gguf.GGUFWriter(v / name, "llama")
            w.write_header_to_file()
            w.write_kv_data_to_file()
            w.close()
        else:
            (v / name).write_bytes(data)
    return make


def truncated_vocab(name: str, keep: int):
    def make(ctx: dict[str, Any]) -> None:
        ctx["v"].mkdir(exist_ok=True)
        (ctx["v"] / name).write_bytes((paths.vocab_dir() / name).read_bytes()[:keep])
    return make


def mkfile(rel: str, data: bytes = b"x"):
    return lambda ctx: (ctx["w"] / rel).write_bytes(data)


def mkdir_with_file(rel: str):
    def make(ctx: dict[str, Any]) -> None:
        (ctx["w"] / rel).mkdir()
        (ctx["w"] / rel / "keep.txt").write_text("mine")
    return make


VD = ["--vocab-dir", "{v}"]
CASES = [
    # flags
    Case("no-args", ["generate-model"], "the following arguments are required: --arch, --size, --out"),
    Case("arch-missing", ["generate-model", "--size", "tiny", *OUT], "required: --arch"),
    Case("arch-unknown", ["generate-model", "--arch", "gpt2", "--size", "tiny", *OUT], "argument --arch: invalid choice: 'gpt2'"),
    Case("arch-no-value", ["generate-model", "--size", "tiny", *OUT, "--arch"], "argument --arch: expected one argument"),
    Case("size-unknown", ["generate-model", "--arch", "bitnet", "--size", "5B", *OUT], "argument --size: invalid choice: '5B'"),
    Case("size-no-value", ["generate-model", "--arch", "bitnet", *OUT, "--size"], "argument --size: expected one argument"),
    Case("size-too-big", ["generate-model", "--arch", "bitnet", "--size", "7B", *OUT], "--size 7B would write a"),
    Case("out-missing", G, "required: --out"),
    Case("out-no-value", [*G, "--out"], "argument --out: expected one argument"),
    Case("form-unknown", [*G, *OUT, "--form", "int4"], "argument --form: invalid choice: 'int4'"),
    Case("form-no-value", [*G, *OUT, "--form"], "argument --form: expected one argument"),
    Case("linear-class-unknown", [*G, *OUT, "--form", "packed", "--linear-class", "bitlinear2"],
         "argument --linear-class: invalid choice"),
    Case("seed-negative", [*G, *OUT, "--seed", "-1"], "--seed -1: expected an integer from 0"),
    Case("seed-text", [*G, *OUT, "--seed", "abc"], "argument --seed: invalid int value: 'abc'"),
    Case("seed-float", [*G, *OUT, "--seed", "1.5"], "argument --seed: invalid int value: '1.5'"),
    Case("seed-no-value", [*G, *OUT, "--seed"], "argument --seed: expected one argument"),
    Case("gguf-unknown", [*G, "--out", "{w}/x.gguf", "--gguf", "q4_0"], "argument --gguf: invalid choice: 'q4_0'"),
    Case("gguf-no-value", [*G, "--out", "{w}/x.gguf", "--gguf"], "argument --gguf: expected one argument"),
    Case("unknown-flag", [*G, *OUT, "--fast"], "unrecognized arguments: --fast"),
    Case("vocab-dir-no-value", [*G, *OUT, "--vocab-dir"], "argument --vocab-dir: expected one argument"),
    # outputs
    Case("out-not-empty", [*G, "--out", "{w}/full"], "--out {w}/full: folder exists and is not empty", mkdir_with_file("full")),
    Case("out-is-file", [*G, "--out", "{w}/f"], "--out {w}/f: is a file, expected a new folder", mkfile("f")),
    Case("out-under-file", [*G, "--out", "{w}/f/sub"], "{w}/f is a file, expected a folder", mkfile("f")),
    Case("out-unwritable", [*G, "--out", "/sys/kernel/bitnet-out"], "/sys/kernel"),
    Case("gguf-out-is-folder", [*G, "--gguf", "i2_s", "--out", "{w}/d"], "is a folder, expected a file path",
         lambda c: (c["w"] / "d").mkdir()),
    Case("gguf-out-under-file", [*G, "--gguf", "i2_s", "--out", "{w}/f/x.gguf"], "{w}/f is a file", mkfile("f")),
    Case("gguf-out-unwritable", [*G, "--gguf", "i2_s", "--out", "/sys/kernel/x.gguf"], "/sys/kernel/x.gguf"),
    # vocab folders
    Case("vocab-dir-missing", [*G, *OUT, "--vocab-dir", "{w}/nope"], "{w}/nope/ggml-vocab-llama-spm.gguf: vocab GGUF not found"),
    Case("vocab-dir-is-file", [*G, *OUT, "--vocab-dir", "{w}/f"], "vocab GGUF not found", mkfile("f")),
    Case("vocab-dir-empty", [*G, *OUT, *VD], f"{{v}}/{SPM}: vocab GGUF not found", lambda c: c["v"].mkdir()),
    Case("vocab-not-gguf", [*G, *OUT, *VD], f"{{v}}/{SPM}: not a readable vocab GGUF", vocab(SPM, b"hello, not a gguf\n" * 100)),
    Case("vocab-empty-file", [*G, *OUT, *VD], f"{{v}}/{SPM}: not a readable vocab GGUF", vocab(SPM, b"")),
    Case("vocab-magic-only", [*G, *OUT, *VD], f"{{v}}/{SPM}: not a readable vocab GGUF", vocab(SPM, b"GGUF")),
    Case("vocab-truncated", [*G, *OUT, *VD], f"{{v}}/{SPM}: not a readable vocab GGUF", truncated_vocab(SPM, 300_000)),
    Case("vocab-no-tokens", [*G, *OUT, *VD], f"{{v}}/{SPM}: GGUF without tokenizer.ggml.tokens", vocab(SPM)),
    Case("vocab-wrong-size", [*G, *OUT, *VD], f"{{v}}/{SPM}: no tokenizer.ggml.scores", vocab(SPM, copy_of="ggml-vocab-gpt-2.gguf")),
    Case("vocab-bpe-not-gguf", ["generate-model", "--arch", "llama", "--size", "tiny", *OUT, *VD],
         f"{{v}}/{BPE}: not a readable vocab GGUF", vocab(BPE, b"\x00" * 5000)),
    Case("gguf-vocab-not-gguf", [*G, "--gguf", "i2_s", "--out", "{w}/x.gguf", *VD], f"{{v}}/{BPE}: not a readable vocab GGUF",
         vocab(BPE, b"GGUF\x03\x00\x00\x00" + b"\xff" * 64)),
    Case("gguf-vocab-missing", [*G, "--gguf", "i2_s", "--out", "{w}/x.gguf", "--vocab-dir", "{w}/nope"], "vocab GGUF not found"),
    Case("gguf-vocab-no-tokens", [*G, "--gguf", "f16", "--out", "{w}/x.gguf", *VD], "GGUF without tokenizer.ggml.tokens", vocab(BPE)),
]


@pytest.mark.parametrize("case", params(CASES))
def test_generate_model_bad_input(case: Case, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    ctx: dict[str, Any] = {"w": tmp_path / "w", "v": tmp_path / "vocab"}
    ctx["w"].mkdir()
    (ctx["w"] / "previous.gguf").write_bytes(b"previous")
    if case.make:
        case.make(ctx)
    before = snapshot([tmp_path])
    rc, err = run_in_process(main, [fill(a, ctx) for a in case.argv], capsys)
    expect = [case.expect] if isinstance(case.expect, str) else case.expect
    assert_one_line_failure(rc, err, [fill(e, ctx) for e in expect], before, [tmp_path])


def test_generate_model_full_output(tmp_path: Path) -> None:
    """RLIMIT_FSIZE 1 MB (the checkpoint is 35 MB): one line, and no folder or temporary appears."""
    before = snapshot([tmp_path])
    r = run_subprocess(["-m", "bitnet_gguf", *G, "--out", str(tmp_path / "out")],
                       preexec=lambda: resource.setrlimit(resource.RLIMIT_FSIZE, (1 << 20, 1 << 20)))
    assert_one_line_failure(r.returncode, r.stderr, [f"cannot write {tmp_path / 'out'}", "file size limit"], before, [tmp_path])


def test_generate_model_subprocess_sample(tmp_path: Path) -> None:
    before = snapshot([tmp_path])
    r = run_subprocess(["-m", "bitnet_gguf", *G, "--out", str(tmp_path / "out"), "--seed", "-3"])
    assert_one_line_failure(r.returncode, r.stderr, "--seed -3", before, [tmp_path])
