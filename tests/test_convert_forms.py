"""What the converter writes, checked byte by byte without running a model (no llama.cpp build needed)."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest

from bitnet_gguf.convert import convert
from bitnet_gguf.convert.tensor_plan import default_embd_type, permute_qk
from bitnet_gguf.convert.ternary import pack_rows, unpack_rows
from bitnet_gguf.errors import BitnetError
from bitnet_gguf.formats.constants import GGML_TYPE_I2_S
from bitnet_gguf.formats.kquants import Q6K
from bitnet_gguf.formats.quants import I2S, i2s_nbytes
from bitnet_gguf.formats.safetensors_reader import SafetensorsReader, read_header
from bitnet_gguf.formats.safetensors_writer import TensorSpec, write_safetensors
from bitnet_gguf.synthetic.hf_model import generate_model

from .gguf_read import f32, read_gguf
from .hf_oracle import vocab_dir

HF_TO_GGUF = {"self_attn.q_proj": "attn_q", "self_attn.k_proj": "attn_k", "self_attn.v_proj": "attn_v",
              "self_attn.o_proj": "attn_output", "mlp.gate_proj": "ffn_gate", "mlp.up_proj": "ffn_up", "mlp.down_proj": "ffn_down"}


@pytest.fixture(scope="module")
def ckpts(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    root = tmp_path_factory.mktemp("forms")
    v = vocab_dir()
    return {
        "llama-master": generate_model("llama", "tiny", root / "llama-master", v, seed=5),
        "bitnet-master": generate_model("bitnet", "tiny", root / "bitnet-master", v, seed=6),
        "b158-packed": generate_model("bitnet-b1.58", "tiny", root / "b158-packed", v, form="packed", seed=7),
    }


def _expected_ternary(reader: SafetensorsReader, hf: str, cfg: dict) -> tuple[np.ndarray, float]:
    """The W = s*t that transformers computes for this projection, in HF row order."""
    rec = reader.record(hf)
    if rec.dtype == "U8":
        t = unpack_rows(reader.read(hf), hf)
        ws = float(reader.read(hf.replace(".weight", ".weight_scale"))[0])
        lc = cfg["quantization_config"].get("linear_class", "bitlinear")
        return t, (1.0 / ws if lc == "bitlinear" else ws)
    # master weights: transformers' WeightQuant (integrations/bitnet.py) computed with torch, independently of
    # our numpy ternarizer: scale = 1 / clamp(mean|w|, 1e-5), t = clamp(round(w * scale), -1, 1)
    import torch

    w = torch.from_numpy(np.asarray(reader.read(hf), dtype=np.float32))
    scale = 1.0 / w.abs().mean().clamp(min=1e-5)
    return (w * scale).round().clamp(-1, 1).to(torch.int8).numpy(), float(1.0 / scale)


# (the llama packed/bitlinear form is covered by the oracle test; each Llama-3-vocab conversion costs seconds)
@pytest.mark.parametrize("name", ["llama-master", "bitnet-master", "b158-packed"])
def test_i2s_and_f32_hold_the_same_ternary_weights(ckpts: dict[str, Path], tmp_path: Path, name: str) -> None:
    d = ckpts[name]
    cfg = json.loads((d / "config.json").read_text())
    reader = SafetensorsReader(d)
    kv_i, t_i = read_gguf(convert(d, "i2_s", tmp_path / "m-i2_s.gguf", progress=False).path)
    kv_f, t_f = read_gguf(convert(d, "f32", tmp_path / "m-f32.gguf", progress=False).path)
    assert kv_i["general.file_type"] == 40 and kv_f["general.file_type"] == 0
    for il in range(cfg["num_hidden_layers"]):
        for hf, gg in HF_TO_GGUF.items():
            t, s = _expected_ternary(reader, f"model.layers.{il}.{hf}.weight", cfg)
            if cfg["architectures"][0] == "LlamaForCausalLM" and gg in ("attn_q", "attn_k"):
                t = permute_qk(t, cfg["num_attention_heads"] if gg == "attn_q" else cfg["num_key_value_heads"])
            ti, tf = t_i[f"blk.{il}.{gg}.weight"], t_f[f"blk.{il}.{gg}.weight"]
            assert ti.ggml_type == GGML_TYPE_I2_S and ti.ne == (t.shape[1], t.shape[0])
            assert ti.data is not None
            got_t, got_s = I2S.unpack(ti.data[: i2s_nbytes(t.size)], t.size)
            np.testing.assert_array_equal(got_t.reshape(t.shape), t)
            assert got_s == pytest.approx(s, rel=1e-6)
            np.testing.assert_array_equal(f32(tf), t.astype(np.float32) * np.float32(got_s))
    # float tensors pass through unchanged (bf16 -> f32 is exact); i2_s files get a Q6_K embedding (ggml's bytes)
    np.testing.assert_array_equal(f32(t_f["token_embd.weight"]), reader.read("model.embed_tokens.weight"))
    assert t_i["token_embd.weight"].ggml_type == 14
    np.testing.assert_array_equal(t_i["token_embd.weight"].data, Q6K.quantize(reader.read("model.embed_tokens.weight")).reshape(-1))
    np.testing.assert_array_equal(f32(t_f["output_norm.weight"]), reader.read("model.norm.weight"))
    assert ("output.weight" in t_f) == (not cfg["tie_word_embeddings"])


def test_permutation_matches_llama_cpp_rule() -> None:
    """LlamaModel.permute: each head's rows [a0..a(h/2-1), b0..] become [a0, b0, a1, b1, ...]."""
    w = np.arange(2 * 8 * 3).reshape(16, 3)  # 2 heads of 8 rows
    p = permute_qk(w, 2)
    head0 = w[:8]
    assert [r[0] // 3 for r in p[:8]] == [0, 4, 1, 5, 2, 6, 3, 7]
    np.testing.assert_array_equal(p[1], head0[4])


def test_pack_unpack_round_trip_matches_transformers_layout() -> None:
    rng = np.random.default_rng(0)
    t = rng.integers(-1, 2, size=(16, 5), dtype=np.int8)
    packed = pack_rows(t)
    assert packed.shape == (4, 5)
    # element (r + i*M/4, k) = ((byte >> 2i) & 3) - 1
    for i in range(4):
        np.testing.assert_array_equal(((packed >> (2 * i)) & 3).astype(np.int8) - 1, t[i * 4:(i + 1) * 4])
    np.testing.assert_array_equal(unpack_rows(packed, "x"), t)
    torch = pytest.importorskip("torch")
    pytest.importorskip("transformers")
    import os

    os.environ.setdefault("TORCH_COMPILE_DISABLE", "1")
    from transformers.integrations.bitnet import unpack_weights

    np.testing.assert_array_equal(unpack_weights(torch.from_numpy(packed), dtype=torch.int8).numpy(), t)


@pytest.mark.parametrize(("outtype", "ftype", "ggml"), [("f16", 1, 1), ("bf16", 32, 30)])
def test_float_outtypes(ckpts: dict[str, Path], tmp_path: Path, outtype: str, ftype: int, ggml: int) -> None:
    kv, t = read_gguf(convert(ckpts["bitnet-master"], outtype, tmp_path / "m.gguf", progress=False).path)
    assert kv["general.file_type"] == ftype and kv["general.architecture"] == "bitnet"
    assert t["blk.0.attn_q.weight"].ggml_type == ggml and t["token_embd.weight"].ggml_type == ggml
    assert t["blk.0.attn_norm.weight"].ggml_type == 0


@pytest.mark.parametrize(("embd", "ggml"), [("q8_0", 8), ("f32", 0), ("f16", 1), ("q4_0", 2), ("q6_k", 14)])
def test_embedding_types(ckpts: dict[str, Path], tmp_path: Path, embd: str, ggml: int) -> None:
    import gguf

    d = ckpts["bitnet-master"]  # untied: token_embd and output
    kv, t = read_gguf(convert(d, "i2_s", tmp_path / "m.gguf", embd_type=embd, progress=False).path)
    for name in ("token_embd.weight", "output.weight"):
        assert t[name].ggml_type == ggml
    if embd in ("q8_0", "q6_k"):
        e = t["token_embd.weight"]
        assert e.data is not None
        qtype = gguf.GGMLQuantizationType(ggml)
        block, size = gguf.GGML_QUANT_SIZES[qtype]
        n_bytes = e.ne[1] * e.ne[0] // block * size
        deq = gguf.quants.dequantize(e.data[:n_bytes].reshape(e.ne[1], -1), qtype)
        src = SafetensorsReader(d).read("model.embed_tokens.weight")
        step = np.abs(src).max() / (127 if embd == "q8_0" else 32)  # tests/test_q6k.py: Q6_K stays within 0.75 step
        assert np.abs(deq - src).max() <= step * (0.51 if embd == "q8_0" else 0.75) + 1e-3


def test_embedding_default_follows_the_row_length() -> None:
    assert [default_embd_type("i2_s", n) for n in (2560, 96, 100)] == ["q6_k", "q8_0", "f16"]
    assert default_embd_type("bf16", 2560) == "bf16"


def test_k_quant_embedding_not_supported_yet(ckpts: dict[str, Path], tmp_path: Path) -> None:
    with pytest.raises(BitnetError, match="q5_k is not supported yet"):
        convert(ckpts["bitnet-master"], "i2_s", tmp_path / "m.gguf", embd_type="q5_k", progress=False)
    assert not (tmp_path / "m.gguf").exists()


def test_sharded_checkpoint_gives_the_same_file(ckpts: dict[str, Path], tmp_path: Path) -> None:
    src = ckpts["bitnet-master"]
    d = tmp_path / "sharded"
    d.mkdir()
    for f in src.iterdir():
        if f.suffix != ".gguf" and f.name != "model.safetensors":
            shutil.copy(f, d / f.name)
    recs = list(read_header(src / "model.safetensors").values())
    reader = SafetensorsReader(src)
    half = len(recs) // 2
    weight_map = {}
    for i, part in enumerate((recs[:half], recs[half:])):
        fname = f"model-{i + 1:05d}-of-00002.safetensors"
        specs = [TensorSpec(r.name, r.dtype, r.shape, (lambda r=r: reader._read_raw(r, 0, r.n_elements))) for r in part]
        write_safetensors(d / fname, specs)
        weight_map.update({r.name: fname for r in part})
    (d / "model.safetensors.index.json").write_text(json.dumps({"metadata": {}, "weight_map": weight_map}))
    _, ta = read_gguf(convert(src, "i2_s", tmp_path / "a.gguf", progress=False).path)
    _, tb = read_gguf(convert(d, "i2_s", tmp_path / "b.gguf", progress=False).path)
    assert ta.keys() == tb.keys()
    for k in ta:
        np.testing.assert_array_equal(ta[k].data, tb[k].data)


def test_metadata_and_tokenizer(ckpts: dict[str, Path], tmp_path: Path) -> None:
    kv, t = read_gguf(convert(ckpts["b158-packed"], "i2_s", tmp_path / "m.gguf", progress=False).path)
    assert kv["general.architecture"] == "bitnet-b1.58"
    a = "bitnet-b1.58"
    assert (kv[f"{a}.embedding_length"], kv[f"{a}.block_count"], kv[f"{a}.attention.head_count_kv"]) == (256, 2, 2)
    assert kv[f"{a}.rope.freq_base"] == 500000.0 and kv[f"{a}.rope.dimension_count"] == 64
    assert kv["tokenizer.ggml.model"] == "gpt2" and kv["tokenizer.ggml.pre"] == "llama-bpe"
    assert kv["tokenizer.ggml.bos_token_id"] == 128000 and kv["tokenizer.ggml.eos_token_id"] == 128009
    assert kv["tokenizer.ggml.add_bos_token"] is True
    assert "message['role']" in kv["tokenizer.chat_template"]
    ref, _ = read_gguf(vocab_dir() / "ggml-vocab-llama-bpe.gguf")
    for key in ("tokenizer.ggml.tokens", "tokenizer.ggml.token_type", "tokenizer.ggml.merges"):
        assert kv[key] == ref[key], key
    assert "output.weight" not in t  # tied: llama.cpp reuses token_embd


def test_spm_vocabulary(ckpts: dict[str, Path], tmp_path: Path) -> None:
    kv, _ = read_gguf(convert(ckpts["bitnet-master"], "i2_s", tmp_path / "m.gguf", progress=False).path)
    ref, _ = read_gguf(vocab_dir() / "ggml-vocab-llama-spm.gguf")
    assert kv["tokenizer.ggml.model"] == "llama"
    for key in ("tokenizer.ggml.tokens", "tokenizer.ggml.token_type", "tokenizer.ggml.bos_token_id", "tokenizer.ggml.eos_token_id"):
        assert kv[key] == ref[key], key
    np.testing.assert_allclose(kv["tokenizer.ggml.scores"], ref["tokenizer.ggml.scores"])


def test_tokenizer_pre_override_and_unknown_hash(ckpts: dict[str, Path], tmp_path: Path) -> None:
    d = tmp_path / "odd-pre"
    shutil.copytree(ckpts["b158-packed"], d, ignore=shutil.ignore_patterns("*.gguf"))
    tj = json.loads((d / "tokenizer.json").read_text())
    tj["pre_tokenizer"]["pretokenizers"][0]["pattern"]["Regex"] = r"\s+|\S+"
    (d / "tokenizer.json").write_text(json.dumps(tj))
    with pytest.raises(BitnetError, match=r"tokenizer.json: unknown BPE pre-tokenizer \(chkhsh [0-9a-f]{64}\)"):
        convert(d, "i2_s", progress=False)
    assert not list(d.glob("*.gguf"))
    kv, _ = read_gguf(convert(d, "i2_s", tokenizer_pre="falcon_e", progress=False).path)
    assert kv["tokenizer.ggml.pre"] == "falcon-h1"  # bitnet.cpp's name for the same LLAMA3 pre-tokenizer
