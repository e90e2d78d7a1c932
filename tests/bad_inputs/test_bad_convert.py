"""`python -m bitnet_gguf convert`: bad checkpoints, bad flags, unwritable and full outputs, kill -9."""

from __future__ import annotations

import os
import resource
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from bitnet_gguf.cli import main

from .common import (
    BF16_INF,
    BF16_NAN,
    PREVIOUS,
    REPO_ROOT,
    Case,
    assert_one_line_failure,
    edit_json,
    fill,
    link_copy,
    params,
    put_previous,
    replace_bytes,
    rewrite_tensors,
    run_in_process,
    run_subprocess,
    snapshot,
    truncate,
)

ST = "model.safetensors"
CFG = "config.json"


def cfg(**keys: Any):
    def make(ctx: dict[str, Any]) -> None:
        edit_json(ctx["m"] / CFG, lambda c: c.update(keys))
    return make


def cfg_drop(key: str):
    return lambda ctx: edit_json(ctx["m"] / CFG, lambda c: c.pop(key))


def raw(name: str, data: bytes):
    return lambda ctx: replace_bytes(ctx["m"] / name, data)


def tensors(edit):
    return lambda ctx: rewrite_tensors(ctx["m"], edit)


def _drop(name: str):
    return tensors(lambda rows: [r for r in rows if r[0] != name])


def _set(name: str, idx: int, value: int):
    def edit(rows: list[list[Any]]) -> None:
        for r in rows:
            if r[0] == name:
                r[3].reshape(-1)[idx] = value
    return tensors(edit)


def _retype(name: str, dtype: str, np_dtype: str):
    def edit(rows: list[list[Any]]) -> None:
        for r in rows:
            if r[0] == name:
                r[1], r[3] = dtype, np.zeros(r[2], dtype=np_dtype)
    return tensors(edit)


def _reshape(name: str, shape: tuple[int, ...]):
    def edit(rows: list[list[Any]]) -> None:
        for r in rows:
            if r[0] == name:
                r[2], r[3] = shape, np.zeros(shape, dtype=r[3].dtype)
    return tensors(edit)


def _shard(missing: bool = True, duplicate: bool = False):
    """Split model.safetensors into two shards with an index; then lose one, or put a tensor in both."""
    def make(ctx: dict[str, Any]) -> None:
        m = ctx["m"]
        from bitnet_gguf.formats.safetensors_reader import read_header

        names = list(read_header(m / ST))
        first = set(names[: len(names) // 2])
        (m / "model-00001-of-00002.safetensors").unlink(missing_ok=True)
        os.link(m / ST, m / "a.safetensors")
        os.link(m / ST, m / "b.safetensors")
        (m / ST).unlink()
        rewrite_tensors(m, lambda rows: [r for r in rows if r[0] in first or (duplicate and r[0] == names[-1])], "a.safetensors")
        rewrite_tensors(m, lambda rows: [r for r in rows if r[0] not in first], "b.safetensors")
        os.rename(m / "a.safetensors", m / "model-00001-of-00002.safetensors")
        os.rename(m / "b.safetensors", m / "model-00002-of-00002.safetensors")
        index = {"weight_map": {n: "model-00001-of-00002.safetensors" if n in first else "model-00002-of-00002.safetensors"
                                for n in names}}
        replace_bytes(m / "model.safetensors.index.json", __import__("json").dumps(index).encode())
        if missing:
            (m / "model-00002-of-00002.safetensors").unlink()
    return make


def _added_token(entry: Any):
    return lambda ctx: edit_json(ctx["m"] / "tokenizer.json", lambda t: t["added_tokens"].append(entry))


def _st_header(header: dict[str, Any], data_bytes: int) -> bytes:
    text = __import__("json").dumps(header).encode()
    return len(text).to_bytes(8, "little") + text + b"\0" * data_bytes


L0 = "model.layers.0."
Q = L0 + "self_attn.q_proj.weight"
DOWN1 = "model.layers.1.mlp.down_proj.weight"
M = ["convert", "{m}", "--no-progress"]

CASES = [
    # config.json
    Case("config-missing", M, "config.json: not found", lambda c: (c["m"] / CFG).unlink()),
    Case("config-not-json", M, "config.json: not valid JSON", raw(CFG, b"{architectures: oops")),
    Case("config-binary", M, "config.json: not valid JSON", raw(CFG, b"\xff\xfe\x00\x01garbage")),
    Case("config-empty", M, "config.json: not valid JSON", raw(CFG, b"")),
    Case("config-list", M, "config.json: expected a JSON object", raw(CFG, b"[1, 2]")),
    Case("config-no-architectures", M, "config.json: missing architectures", cfg_drop("architectures")),
    Case("config-unknown-arch", M, "architecture 'GPT2LMHeadModel' is not supported", cfg(architectures=["GPT2LMHeadModel"])),
    Case("config-arch-not-list", M, "config.json: missing architectures", cfg(architectures="BitnetForCausalLM")),
    Case("config-hidden-string", M, "hidden_size must be a positive integer", cfg(hidden_size="256")),
    Case("config-hidden-negative", M, "hidden_size must be a positive integer, got -256", cfg(hidden_size=-256)),
    Case("config-heads-zero", M, "num_attention_heads must be a positive integer", cfg(num_attention_heads=0)),
    Case("config-kv-heads-mismatch", M, "not a multiple of num_key_value_heads 3", cfg(num_key_value_heads=3)),
    Case("config-hidden-act", M, "hidden_act 'gelu' is not supported", cfg(hidden_act="gelu")),
    Case("config-rope-scaling-string", M, "config.json: rope_scaling must be an object", cfg(rope_scaling="linear")),
    Case("config-rope-scaling-yarn", M, "rope scaling type 'yarn' is not supported", cfg(rope_scaling={"type": "yarn", "factor": 4})),
    Case("config-rope-theta-negative", M, "rope_theta must be a positive number", cfg(rope_theta=-1)),
    Case("config-rms-eps-string", M, "rms_norm_eps must be a positive number", cfg(rms_norm_eps="tiny")),
    Case("config-quant-config-string", M, "quantization_config must be an object", cfg(quantization_config="bitnet")),
    Case("config-quant-method-gptq", M, "quant_method 'gptq' is not supported", cfg(quantization_config={"quant_method": "gptq"})),
    Case("config-vocab-too-small", M, ["tokenizer.model", "vocab_size is 1000"], cfg(vocab_size=1000)),
    Case("config-layers-more", M, "missing tensor model.layers.2.", cfg(num_hidden_layers=3)),
    Case("config-layers-fewer", M, "unexpected tensor model.layers.1.", cfg(num_hidden_layers=1)),
    Case("config-hidden-wrong", M, "tensor model.embed_tokens.weight has shape [32000, 256], expected [32000, 512]",
         cfg(hidden_size=512, num_attention_heads=8, num_key_value_heads=4)),
    # safetensors
    Case("st-truncated-half", M, ["model.safetensors", "corrupt safetensors header"], lambda c: truncate(c["m"] / ST, 17_000_000)),
    Case("st-truncated-8", M, "model.safetensors: corrupt safetensors header", lambda c: truncate(c["m"] / ST, 4)),
    Case("st-empty", M, "model.safetensors: corrupt safetensors header", raw(ST, b"")),
    Case("st-header-huge", M, "header length", raw(ST, (1 << 40).to_bytes(8, "little") + b"{}")),
    Case("st-header-not-json", M, "not valid JSON", raw(ST, (10).to_bytes(8, "little") + b"{not json}")),
    Case("st-bad-dtype-name", M, "tensor x has dtype F8_E9M9",
         raw(ST, _st_header({"x": {"dtype": "F8_E9M9", "shape": [1], "data_offsets": [0, 1]}}, 1))),
    Case("st-offsets-outside", M, "tensor x: offsets 0..4000",
         raw(ST, _st_header({"x": {"dtype": "F32", "shape": [1000], "data_offsets": [0, 4000]}}, 8))),
    Case("st-tensor-missing", M, "missing tensor " + Q, _drop(Q)),
    Case("st-norm-missing", M, "missing tensor model.norm.weight", _drop("model.norm.weight")),
    Case("st-wrong-shape", M, f"tensor {Q} has shape [128, 256], expected [256, 256]", _reshape(Q, (128, 256))),
    Case("st-norm-wrong-dtype", M, "tensor model.norm.weight has dtype I32, expected a float type",
         _retype("model.norm.weight", "I32", "<i4")),
    Case("st-proj-wrong-dtype", M, f"tensor {Q}: dtype I8, expected a float master weight or packed U8", _retype(Q, "I8", "i1")),
    Case("st-nan-embedding", [*M, "--embd-type", "f32"], "tensor model.embed_tokens.weight: row 0 has NaN",
         _set("model.embed_tokens.weight", 5, BF16_NAN)),
    Case("st-nan-norm", [*M, "--embd-type", "f32"], "tensor model.norm.weight: element 7 is NaN",
         _set("model.norm.weight", 7, BF16_NAN)),
    Case("st-inf-projection", [*M, "--embd-type", "f32"], f"tensor {DOWN1}: row 1 has NaN or infinite",
         _set(DOWN1, 512 + 3, BF16_INF)),
    Case("st-only-bin", M, "found pytorch_model.bin", lambda c: ((c["m"] / ST).unlink(), raw("pytorch_model.bin", b"x")(c))),
    Case("st-shard-missing", M, "shard model-00002-of-00002.safetensors is missing", _shard()),
    Case("st-shard-duplicate", M, "is also in model-00001-of-00002.safetensors", _shard(missing=False, duplicate=True)),
    Case("st-index-not-json", M, "model.safetensors.index.json: not a valid safetensors index",
         raw("model.safetensors.index.json", b"{oops")),
    Case("st-index-no-weight-map", M, "not a valid safetensors index", raw("model.safetensors.index.json", b"{}")),
    # tokenizer
    Case("tok-none", M, "no tokenizer.model or tokenizer.json", lambda c: (c["m"] / "tokenizer.model").unlink()),
    Case("tok-spm-corrupt", M, "tokenizer.model: cannot be read as a SentencePiece model",
         raw("tokenizer.model", b"\x0a\xff\xff garbage")),
    Case("tok-spm-empty", M, "tokenizer.model: cannot be read as a SentencePiece model", raw("tokenizer.model", b"")),
    # flags
    Case("flag-outtype", [*M, "--outtype", "q4_0"], "argument --outtype: invalid choice: 'q4_0'"),
    Case("flag-embd-not-yet", [*M, "--embd-type", "q5_k"], "--embd-type q5_k is not supported yet"),
    Case("flag-embd-unknown", [*M, "--embd-type", "f8"], "--embd-type 'f8' unknown"),
    Case("flag-unknown", [*M, "--fast"], "unrecognized arguments: --fast"),
    Case("flag-no-model-dir", ["convert"], "the following arguments are required: model_dir"),
    Case("flag-stock-unsupported", [*M, "--outtype", "tq2_0"], "--outtype tq2_0: BitnetForCausalLM"),
    Case("dir-missing", ["convert", "{m}/nope", "--no-progress"], "nope: not a folder"),
    Case("dir-is-file", ["convert", "{m}/config.json", "--no-progress"], "config.json: not a folder"),
    # outputs
    Case("outfile-under-file", [*M, "--outfile", "{m}/config.json/x.gguf"], ["--outfile", "config.json is a file, expected a folder"]),
    Case("outfile-is-folder", [*M, "--outfile", "{m}"], ["--outfile", "is a folder, expected a file path"]),
    Case("outfile-unwritable", [*M, "--outfile", "/sys/kernel/x.gguf"], ["/sys/kernel/x.gguf"]),
    Case("outfile-is-checkpoint", [*M, "--outfile", "{m}/model.safetensors"], "--outfile", ),
]


@pytest.mark.parametrize("case", params(CASES))
def test_convert_bad_input(case: Case, spm_ckpt: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    m = link_copy(spm_ckpt, tmp_path / "m")
    ctx: dict[str, Any] = {"m": m}
    if case.make:
        case.make(ctx)
    put_previous(m, "ggml-model-i2_s.gguf")
    before = snapshot([m])
    rc, err = run_in_process(main, [fill(a, ctx) for a in case.argv], capsys)
    assert_one_line_failure(rc, err, [fill(e, ctx) for e in ([case.expect] if isinstance(case.expect, str) else case.expect)],
                            before, [m])


PACKED = "model.layers.0.self_attn.q_proj"
PACKED_CASES = [
    Case("packed-code-3", M, f"tensor {PACKED}.weight: packed code 3", _set(PACKED + ".weight", 10, 0xFF)),
    Case("packed-scale-missing", M, f"missing tensor {PACKED}.weight_scale", _drop(PACKED + ".weight_scale")),
    Case("packed-scale-zero", M, f"tensor {PACKED}.weight_scale: weight_scale must be a positive finite number",
         _set(PACKED + ".weight_scale", 0, 0)),
    Case("packed-no-quant-config", M, "no offline bitnet quantization_config", cfg_drop("quantization_config")),
    Case("packed-rows", M, f"tensor {PACKED}.weight has shape [32, 256], expected packed shape [64, 256]",
         _reshape(PACKED + ".weight", (32, 256))),
]


def _damaged_checkpoint_fails(case: Case, ckpt: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """Copy the checkpoint, damage it as the case says, convert: one line, nothing written."""
    m = link_copy(ckpt, tmp_path / "m")
    ctx: dict[str, Any] = {"m": m}
    assert case.make
    case.make(ctx)
    before = snapshot([m])
    rc, err = run_in_process(main, [fill(a, ctx) for a in case.argv], capsys)
    assert_one_line_failure(rc, err, fill(str(case.expect), ctx), before, [m])


@pytest.mark.parametrize("case", params(PACKED_CASES))
def test_convert_bad_packed(case: Case, packed_ckpt: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    _damaged_checkpoint_fails(case, packed_ckpt, tmp_path, capsys)


BPE_CASES = [
    Case("bpe-added-token-no-id", M, "tokenizer.json: added_tokens[", _added_token({"content": "<x>", "special": True})),
    Case("bpe-added-token-string-id", M, "needs an integer id", _added_token({"id": "7", "content": "<x>"})),
    Case("bpe-added-token-not-object", M, "added_tokens[", _added_token("<x>")),
    Case("bpe-not-json", M, "tokenizer.json: not a valid tokenizer.json", raw("tokenizer.json", b"{\"model\":")),
    Case("bpe-wordpiece", M, "only byte-level BPE tokenizers are supported",
         lambda c: edit_json(c["m"] / "tokenizer.json", lambda t: t["model"].update(type="WordPiece"))),
    Case("bpe-no-merges", [*M, "--tokenizer-pre", "llama-bpe"], "tokenizer.json: BPE tokenizer without merges",
         lambda c: edit_json(c["m"] / "tokenizer.json", lambda t: t["model"].update(merges=[]))),
]


@pytest.mark.parametrize("case", params(BPE_CASES))
def test_convert_bad_bpe(case: Case, bpe_ckpt: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    _damaged_checkpoint_fails(case, bpe_ckpt, tmp_path, capsys)


# --- where the process matters: the file size limit, kill -9, and one end-to-end sample ----------------------

def _limit_fsize(nbytes: int):
    return lambda: resource.setrlimit(resource.RLIMIT_FSIZE, (nbytes, nbytes))


def test_convert_full_output_rlimit_fsize(spm_ckpt: Path, tmp_path: Path) -> None:
    """A 2 MB file size limit (a full disk, as far as the writer can tell): one line, previous GGUF intact."""
    m = link_copy(spm_ckpt, tmp_path / "m")
    put_previous(m, "ggml-model-i2_s.gguf")
    before = snapshot([m])
    r = run_subprocess(["-m", "bitnet_gguf", "convert", str(m), "--no-progress", "--embd-type", "f16"],
                       preexec=_limit_fsize(2 << 20))
    assert_one_line_failure(r.returncode, r.stderr, ["cannot write", "ggml-model-i2_s.gguf", "file size limit"], before, [m])


def test_convert_subprocess_sample(spm_ckpt: Path, tmp_path: Path) -> None:
    """The same table's kind of failure end to end: `python -m bitnet_gguf convert` as a user runs it."""
    m = link_copy(spm_ckpt, tmp_path / "m")
    edit_json(m / CFG, lambda c: c.update(rope_scaling="linear"))
    before = snapshot([m])
    r = run_subprocess(["-m", "bitnet_gguf", "convert", str(m), "--no-progress"])
    assert_one_line_failure(r.returncode, r.stderr, "rope_scaling must be an object", before, [m])


def test_convert_kill_9_midway(spm_ckpt: Path, tmp_path: Path) -> None:
    """SIGKILL while the GGUF is being written: the previous GGUF stays; the dead writer's temporary is removed by
    the next run (a killed process cannot clean up after itself), which then fails cleanly on a bad flag."""
    m = link_copy(spm_ckpt, tmp_path / "m")
    prev = put_previous(m, "ggml-model-i2_s.gguf")
    env = dict(os.environ, PYTHONPATH=str(REPO_ROOT))
    proc = subprocess.Popen([sys.executable, "-m", "bitnet_gguf", "convert", str(m), "--no-progress"], env=env,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline and not any(p.name.endswith(".tmp") and p.stat().st_size > 0 for p in m.iterdir()):
        assert proc.poll() is None, "conversion ended before it could be killed"
        time.sleep(0.05)
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    assert prev.read_bytes() == PREVIOUS
    left = [p for p in m.iterdir() if p.name.endswith(".tmp")]
    assert left, "expected the killed writer's temporary"
    # the next run of the same output removes it, whatever its own outcome
    before = snapshot([m])
    r = run_subprocess(["-m", "bitnet_gguf", "convert", str(m), "--no-progress", "--embd-type", "q3_k"])
    assert r.returncode == 1 and "--embd-type q3_k" in r.stderr
    r = run_subprocess(["-m", "bitnet_gguf", "convert", str(m), "--no-progress", "--embd-type", "f16"],
                       preexec=_limit_fsize(1 << 20))
    after = snapshot([m])
    assert set(after) == set(before) - {str(p) for p in left}, "stale temporary not removed"
    assert prev.read_bytes() == PREVIOUS
    assert "Traceback" not in r.stderr and r.returncode == 1
