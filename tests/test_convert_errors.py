"""Bad checkpoints: one line `error: ...` naming the file or tensor, exit 1, and no output file left behind."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest

from bitnet_gguf.formats.safetensors_reader import SafetensorsReader, read_header
from bitnet_gguf.formats.safetensors_writer import TensorSpec, write_safetensors
from bitnet_gguf.synthetic.hf_model import generate_model
from bitnet_gguf.synthetic.shapes import Shape

from .conftest import REPO_ROOT
from .hf_oracle import vocab_dir


@pytest.fixture(scope="module")
def base(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    # the 1bitLLM-style model has the small SentencePiece vocabulary: cheap to copy and convert
    root = tmp_path_factory.mktemp("bad")
    return {
        "master": generate_model("bitnet", "tiny", root / "master", vocab_dir(), seed=11),
        "packed": generate_model("bitnet", "tiny", root / "packed", vocab_dir(), form="packed", seed=11),
    }


def _copy(src: Path, dst: Path) -> Path:
    shutil.copytree(src, dst, ignore=shutil.ignore_patterns("*.gguf"))
    return dst


def _rewrite(d: Path, edit: Callable[[list[TensorSpec]], list[TensorSpec]]) -> None:
    """Rewrite model.safetensors through edit(specs) (raw bytes of each tensor, dtypes/shapes as listed)."""
    reader = SafetensorsReader(d)
    specs = [TensorSpec(r.name, r.dtype, r.shape, (lambda r=r: reader._read_raw(r, 0, r.n_elements)))
             for r in read_header(d / "model.safetensors").values()]
    specs = edit(specs)
    tmp = d / "new.safetensors"
    write_safetensors(tmp, specs)
    tmp.replace(d / "model.safetensors")


def _convert(d: Path, *extra: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "bitnet_gguf", "convert", str(d), "--no-progress", *extra],
                          capture_output=True, text=True, cwd=REPO_ROOT, timeout=300)


def _assert_error(d: Path, *needles: str, extra: tuple[str, ...] = ()) -> str:
    res = _convert(d, *extra)
    assert res.returncode == 1, res.stderr
    lines = res.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: "), res.stderr
    for n in needles:
        assert n in lines[0], lines[0]
    if d.is_dir():
        left = [p.name for p in d.iterdir() if p.suffix in (".gguf", ".tmp") or ".gguf." in p.name]
        assert not left, left
    return lines[0]


def test_no_config(base: dict[str, Path], tmp_path: Path) -> None:
    d = _copy(base["master"], tmp_path / "m")
    (d / "config.json").unlink()
    _assert_error(d, f"{d / 'config.json'}: not found")


def test_not_a_folder(tmp_path: Path) -> None:
    _assert_error(tmp_path / "nope", "nope: not a folder")


def test_unknown_architecture(base: dict[str, Path], tmp_path: Path) -> None:
    d = _copy(base["master"], tmp_path / "m")
    cfg = json.loads((d / "config.json").read_text())
    cfg["architectures"] = ["MistralForCausalLM"]
    (d / "config.json").write_text(json.dumps(cfg))
    _assert_error(d, "config.json", "'MistralForCausalLM' is not supported", "BitNetForCausalLM")


def test_plain_llama_is_refused(base: dict[str, Path], tmp_path: Path) -> None:
    d = _copy(base["master"], tmp_path / "m")
    cfg = json.loads((d / "config.json").read_text())
    cfg["architectures"] = ["LlamaForCausalLM"]
    (d / "config.json").write_text(json.dumps(cfg))
    _assert_error(d, "config.json", "not a ternary model")


def test_missing_tensor(base: dict[str, Path], tmp_path: Path) -> None:
    d = _copy(base["master"], tmp_path / "m")
    _rewrite(d, lambda specs: [s for s in specs if s.name != "model.layers.1.mlp.up_proj.weight"])
    _assert_error(d, "missing tensor model.layers.1.mlp.up_proj.weight", "[512, 256]")


def test_wrong_shape(base: dict[str, Path], tmp_path: Path) -> None:
    d = _copy(base["master"], tmp_path / "m")

    def edit(specs: list[TensorSpec]) -> list[TensorSpec]:
        for s in specs:
            if s.name == "model.layers.0.self_attn.k_proj.weight":
                s.shape = (256, 128)  # same byte count, transposed
        return specs

    _rewrite(d, edit)
    _assert_error(d, "model.safetensors", "tensor model.layers.0.self_attn.k_proj.weight has shape [256, 128], expected [128, 256]")


@pytest.mark.parametrize(("name", "where"), [
    ("model.embed_tokens.weight", "row 5 has NaN or infinite values"),
    ("model.layers.1.mlp.down_proj.weight", "row 5 has NaN or infinite values"),  # a master weight
    ("model.layers.0.input_layernorm.weight", "element 3 is NaN or infinite"),
])
def test_nan_in_float_tensor(base: dict[str, Path], tmp_path: Path, name: str, where: str) -> None:
    d = _copy(base["master"], tmp_path / "m")

    def edit(specs: list[TensorSpec]) -> list[TensorSpec]:
        for s in specs:
            if s.name == name:
                def with_nan(read: Callable[[], np.ndarray] = s.produce, dtype: str = s.dtype,
                             at: int = (5 * s.shape[1] if len(s.shape) == 2 else 0) + 3) -> np.ndarray:
                    raw = np.array(read())
                    raw.reshape(-1)[at] = np.uint16(0x7FC0) if dtype == "BF16" else np.nan  # BF16 travels as raw uint16
                    return raw

                s.produce = with_nan
        return specs

    _rewrite(d, edit)
    _assert_error(d, f"model.safetensors: tensor {name}: {where}")


def test_unexpected_tensor(base: dict[str, Path], tmp_path: Path) -> None:
    d = _copy(base["master"], tmp_path / "m")
    _rewrite(d, lambda specs: [*specs, TensorSpec("model.layers.2.input_layernorm.weight", "F32", (256,),
                                                  lambda: np.ones(256, dtype=np.float32))])
    _assert_error(d, "unexpected tensor model.layers.2.input_layernorm.weight")


@pytest.mark.parametrize("how", ["truncated", "garbage-json", "offsets"])
def test_corrupt_safetensors_header(base: dict[str, Path], tmp_path: Path, how: str) -> None:
    d = _copy(base["master"], tmp_path / "m")
    f = d / "model.safetensors"
    raw = bytearray(f.read_bytes())
    if how == "truncated":
        f.write_bytes(raw[:5])
    elif how == "garbage-json":
        raw[8:16] = b"\xff{{{{{{{"
        f.write_bytes(raw)
    else:
        n = int.from_bytes(raw[:8], "little")
        header = json.loads(raw[8:8 + n])
        header["model.norm.weight"]["data_offsets"][1] += 2
        text = json.dumps(header, separators=(",", ":")).encode()
        text += b" " * (n - len(text)) if len(text) <= n else b""
        assert len(text) == n
        raw[8:8 + n] = text
        f.write_bytes(raw)
    _assert_error(d, f"{f}: corrupt safetensors header")


def test_packed_code_3(base: dict[str, Path], tmp_path: Path) -> None:
    d = _copy(base["packed"], tmp_path / "p")
    rec = SafetensorsReader(d).record("model.layers.1.mlp.down_proj.weight")
    with open(rec.file, "r+b") as fh:
        fh.seek(rec.offset + 7)
        fh.write(bytes([0b01_01_11_01]))  # packed row 0, column 7: bits 3-2 (i = 1) hold row 0 + 1*M/4 = 64
    _assert_error(d, "tensor model.layers.1.mlp.down_proj.weight", "packed code 3 at row 64, column 7")


def test_packed_without_scale(base: dict[str, Path], tmp_path: Path) -> None:
    d = _copy(base["packed"], tmp_path / "p")
    _rewrite(d, lambda specs: [s for s in specs if s.name != "model.layers.0.self_attn.q_proj.weight_scale"])
    _assert_error(d, "missing tensor model.layers.0.self_attn.q_proj.weight_scale")


def test_k_that_i2s_cannot_hold(tmp_path: Path) -> None:
    # hidden 72, 2 heads: attn_q is 72x72 = 5184 elements = 40.5 blocks of 128
    odd = Shape(hidden=72, ffn=128, layers=1, heads=2, kv_heads=2, context=128)
    d = generate_model("bitnet", odd, tmp_path / "odd", vocab_dir(), seed=3)
    _assert_error(d, "tensor model.layers.0.self_attn.q_proj.weight has 5184 elements (72x72)", "multiple of 128")
    # the float outtypes have no block constraint
    assert _convert(d, "--outtype", "f16").returncode == 0
    assert (d / "ggml-model-f16.gguf").is_file()


def test_q6_k_embedding_needs_256_columns(tmp_path: Path) -> None:
    # hidden 128: fine for I2_S, not for Q6_K's 256-blocks; the default then falls back to Q8_0
    d = generate_model("bitnet", Shape(hidden=128, ffn=256, layers=1, heads=2, kv_heads=2, context=128), tmp_path / "h128",
                       vocab_dir(), seed=4)
    _assert_error(d, "tensor model.embed_tokens.weight: 128 columns are not a multiple of Q6_K's block of 256",
                  extra=("--embd-type", "q6_k"))
    res = _convert(d)
    assert res.returncode == 0 and "embedding q8_0" in res.stderr, res.stderr


def test_hidden_act_mismatch(base: dict[str, Path], tmp_path: Path) -> None:
    d = _copy(base["master"], tmp_path / "m")
    cfg = json.loads((d / "config.json").read_text())
    cfg["hidden_act"] = "gelu"
    (d / "config.json").write_text(json.dumps(cfg))
    _assert_error(d, "config.json", "hidden_act 'gelu'", "silu")


def test_existing_output_is_kept_on_failure(base: dict[str, Path], tmp_path: Path) -> None:
    """A failed conversion must not replace (or truncate) a GGUF that is already there."""
    d = _copy(base["packed"], tmp_path / "p")
    out = tmp_path / "keep.gguf"
    out.write_bytes(b"previous")
    rec = SafetensorsReader(d).record("model.layers.1.mlp.gate_proj.weight")
    with open(rec.file, "r+b") as fh:
        fh.seek(rec.offset)
        fh.write(b"\xff")
    res = _convert(d, "--outfile", str(out))
    assert res.returncode == 1 and "packed code 3" in res.stderr
    assert out.read_bytes() == b"previous"
    assert [p.name for p in tmp_path.iterdir() if p.name.startswith(".keep.gguf")] == []


def test_float_projection_in_modules_to_not_convert(base: dict[str, Path], tmp_path: Path) -> None:
    d = _copy(base["packed"], tmp_path / "p")
    cfg = json.loads((d / "config.json").read_text())
    cfg["quantization_config"]["modules_to_not_convert"] = ["lm_head", "model.layers.0.mlp.down_proj"]
    (d / "config.json").write_text(json.dumps(cfg))
    _assert_error(d, "config.json", "model.layers.0.mlp.down_proj is in quantization_config.modules_to_not_convert")
