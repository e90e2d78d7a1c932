"""convert --outtype tq1_0|tq2_0: upstream's ternary types for stock llama.cpp (docs/convert.md "Files for stock
llama.cpp"). The numpy codecs equal ggml's bytes, a whole converted file equals llama-quantize's from our f32 file,
the result uses only upstream types and keys, and it generates the I2_S file's greedy text."""

from __future__ import annotations

import subprocess
from pathlib import Path

import gguf
import numpy as np
import pytest

from bitnet_gguf.cli import main as cli_main
from bitnet_gguf.convert import convert
from bitnet_gguf.formats.constants import (
    GGML_TYPE_I2_S,
    GGML_TYPE_TQ1_0,
    GGML_TYPE_TQ2_0,
    LLAMA_FTYPE_TQ1_0,
    LLAMA_FTYPE_TQ2_0,
    UPSTREAM_GGML_TYPES,
)
from bitnet_gguf.formats.gguf_read import GGUFFile
from bitnet_gguf.formats.kquants import Q4K
from bitnet_gguf.formats.quants import TQ1_0, TQ2_0, TQFormatError
from bitnet_gguf.formats.stock import stock_llama_cpp_compatible
from bitnet_gguf.synthetic.hf_model import generate_model
from bitnet_gguf.synthetic.shapes import Shape

from .conftest import REPO_ROOT, run_tool
from .ggml_ctypes import Ggml
from .hf_oracle import vocab_dir

CODECS = {"tq1_0": (TQ1_0, GGML_TYPE_TQ1_0, LLAMA_FTYPE_TQ1_0), "tq2_0": (TQ2_0, GGML_TYPE_TQ2_0, LLAMA_FTYPE_TQ2_0)}
Q = gguf.GGMLQuantizationType


def _inputs() -> list[np.ndarray]:
    rng = np.random.default_rng(7)
    s = np.float32(0.0123)
    ternary = (rng.integers(-1, 2, (6, 512)) * s).astype(np.float32)
    ternary[2, :256] = 0  # an all-zero block: d = 0, codes 1
    ties = (np.float32(0.37) * rng.choice(np.array([-1, -0.5, 0, 0.5, 1, 0.49999997, 0.50000006], np.float32),
                                          (4, 512))).astype(np.float32)  # lroundf rounds halves away from zero
    return [rng.standard_normal((8, 768)).astype(np.float32), ternary, ties, np.zeros((1, 256), np.float32)]


@pytest.mark.parametrize("qt", ["tq1_0", "tq2_0"])
def test_numpy_codec_equals_ggml(ggml: Ggml, qt: str) -> None:
    codec, gtype, _ = CODECS[qt]
    for x in _inputs():
        ours = codec.quantize(x)
        assert np.array_equal(ours, ggml.quantize(gtype, x))
        assert np.array_equal(codec.dequantize(ours, x.size), ggml.dequantize(gtype, ours, x.size))
        # the installed gguf-py has its own implementation: a third opinion on the same bytes
        assert np.array_equal(ours, gguf.quants.quantize(x, Q(gtype)).reshape(-1))


@pytest.mark.parametrize("qt", ["tq1_0", "tq2_0"])
def test_pack_keeps_the_ternary_values(qt: str) -> None:
    """pack(t, s): every block with a nonzero gets d = f16(s), an all-zero block 0; t comes back exactly."""
    codec = CODECS[qt][0]
    rng = np.random.default_rng(3)
    t = rng.integers(-1, 2, (4, 512)).astype(np.int8)
    t[1, 256:] = 0
    s = 0.0123456
    data = codec.pack(t, s)
    assert data.size == codec.nbytes(4, 512) == 4 * 2 * codec.block_bytes
    values, d = codec.decode(data.reshape(-1, codec.block_bytes))
    assert np.array_equal(values.reshape(4, 512), t)
    assert np.array_equal(d, np.array([np.float16(s)] * 3 + [0] + [np.float16(s)] * 4, dtype=np.float16))
    # the f16 scale's relative error is at most 2^-11 (half an f16 ulp); here 2.3e-4
    assert abs(float(np.float16(s)) - s) / s < 2.0 ** -11
    with pytest.raises(TQFormatError, match="256"):
        codec.nbytes(4, 384)


def test_q4k_equals_ggml(ggml: Ggml) -> None:
    """Q4_K, llama-quantize's token_embd type for TQ files, is encoded in numpy byte for byte as ggml does."""
    rng = np.random.default_rng(11)
    for x in (rng.standard_normal((300, 512)).astype(np.float32), (rng.standard_normal((64, 256)) ** 3).astype(np.float32),
              np.abs(rng.standard_normal((16, 256))).astype(np.float32), np.zeros((2, 256), np.float32),
              np.full((2, 256), 0.5, np.float32)):
        assert np.array_equal(Q4K.quantize(x).reshape(-1), ggml.quantize(int(Q.Q4_K), x))


# ---- whole files ----------------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def llama_files(tmp_path_factory: pytest.TempPathFactory, bin_dir: Path) -> dict[str, Path]:
    """A random untied `llama` (Falcon3/Llama3-1.58 family) checkpoint converted to f32, i2_s, tq1_0, tq2_0 (default
    embeddings: llama-quantize's), tq*-q6k (the I2_S file's Q6_K embedding), and llama-quantize's TQ files."""
    d = tmp_path_factory.mktemp("tq")
    ckpt = generate_model("llama", "tiny", d / "llama", vocab_dir(), seed=2)
    files = {q: convert(ckpt, q, d / f"{q}.gguf", progress=False).path for q in ("f32", "i2_s", "tq1_0", "tq2_0")}
    for q in ("tq1_0", "tq2_0"):
        files[f"{q}-q6k"] = convert(ckpt, q, d / f"{q}-q6k.gguf", embd_type="q6_k", progress=False).path
        out = d / f"lq-{q}.gguf"
        proc = run_tool(bin_dir, "llama-quantize", str(files["f32"]), str(out), q.upper(), "2")
        assert proc.returncode == 0, proc.stderr[-2000:]
        files[f"lq-{q}"] = out
    return files


@pytest.mark.parametrize("qt", ["tq1_0", "tq2_0"])
def test_whole_file_equals_llama_quantize(llama_files: dict[str, Path], qt: str) -> None:
    """Same bytes, header to end: tensor and key order, Q4_K token_embd, Q6_K output, TQ projections."""
    assert llama_files[qt].read_bytes() == llama_files[f"lq-{qt}"].read_bytes()


@pytest.mark.parametrize("qt", ["tq1_0", "tq2_0"])
def test_only_upstream_types_and_keys(llama_files: dict[str, Path], qt: str) -> None:
    g = GGUFFile(llama_files[qt])
    meta, types = g.metadata, {name: t.ggml_type for name, t in g.tensors.items()}
    assert meta["general.file_type"] == CODECS[qt][2] and meta["general.architecture"] == "llama"
    assert not [k for k in meta if k.startswith("bitnet.")]
    assert set(types.values()) <= UPSTREAM_GGML_TYPES
    assert types["token_embd.weight"] == Q.Q4_K and types["output.weight"] == Q.Q6_K
    assert types["blk.0.ffn_down.weight"] == CODECS[qt][1]
    ok, why = stock_llama_cpp_compatible(meta, types)
    assert ok, why


@pytest.mark.parametrize("qt", ["tq1_0", "tq2_0"])
def test_embd_type_changes_only_the_embedding(llama_files: dict[str, Path], qt: str) -> None:
    a, b = GGUFFile(llama_files[qt]), GGUFFile(llama_files[f"{qt}-q6k"])
    assert a.tensors.keys() == b.tensors.keys()
    for name in a.tensors:
        if name != "token_embd.weight":
            assert np.array_equal(a.data(name), b.data(name)), name
    assert b.tensors["token_embd.weight"].ggml_type == Q.Q6_K


def _greedy(bin_dir: Path, path: Path) -> bytes:
    # bytes: a random model's tokens need not join into valid UTF-8
    proc = subprocess.run([str(bin_dir / "llama-completion"), "-m", str(path), "-p", "The quick brown fox", "-n", "32",
                           "--temp", "0", "-t", "2", "-no-cnv"], capture_output=True, timeout=120)
    assert proc.returncode == 0, proc.stderr[-2000:]
    return proc.stdout


@pytest.mark.parametrize("qt", ["tq1_0", "tq2_0"])
def test_greedy_text_equals_i2s(bin_dir: Path, llama_files: dict[str, Path], qt: str) -> None:
    """With the I2_S file's Q6_K embedding the TQ file generates the same 32 greedy tokens (f16 block scales and
    Q8_K activations aside, the weights are the same). The default Q4_K token_embd changes the inputs themselves,
    and on this random model that changes the text after the first token (docs/convert.md)."""
    want = _greedy(bin_dir, llama_files["i2_s"])
    assert len(want.split()) > 5
    assert _greedy(bin_dir, llama_files[f"{qt}-q6k"]) == want


# ---- refusals ---------------------------------------------------------------------------------------------------


def test_2b4t_refused_in_one_line(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "ts.gguf"
    rc = cli_main(["convert", str(REPO_ROOT / "models" / "tiny-shakespeare"), "--outtype", "tq1_0", "--outfile", str(out)])
    err = capsys.readouterr().err
    assert rc == 1 and not out.exists() and not list(tmp_path.iterdir())
    assert err.count("\n") == 1 and err.startswith("error: --outtype tq1_0: BitNetForCausalLM (`bitnet-b1.58`)")
    assert "SiLU" in err and "squared ReLU" in err


def test_untied_bitnet_refused(tmp_path: Path) -> None:
    """1bitLLM-style `bitnet` with its own lm_head: upstream's bitnet graph has no output tensor."""
    from bitnet_gguf.errors import BitnetError

    ckpt = generate_model("bitnet", "tiny", tmp_path / "bitnet", vocab_dir(), seed=4)
    with pytest.raises(BitnetError, match="no separate lm_head"):
        convert(ckpt, "tq2_0", tmp_path / "b.gguf", progress=False)
    assert not (tmp_path / "b.gguf").exists()


def test_rows_not_a_multiple_of_256_refused(tmp_path: Path) -> None:
    from bitnet_gguf.errors import BitnetError

    shape = Shape(hidden=384, ffn=512, layers=1, heads=3, kv_heads=1, context=128)
    ckpt = generate_model("llama", shape, tmp_path / "h384", vocab_dir(), seed=5)
    with pytest.raises(BitnetError, match="rows of 384 values, TQ1_0 needs a multiple of 256"):
        convert(ckpt, "tq1_0", tmp_path / "h.gguf", progress=False)
    assert not (tmp_path / "h.gguf").exists()


# ---- the stock-compatibility rule (`info` uses it) --------------------------------------------------------------


def test_stock_llama_cpp_compatible() -> None:
    tq = {"token_embd.weight": int(Q.Q4_K), "output.weight": int(Q.Q6_K), "blk.0.attn_q.weight": GGML_TYPE_TQ2_0,
          "blk.0.attn_norm.weight": int(Q.F32)}
    assert stock_llama_cpp_compatible({"general.architecture": "llama"}, tq)[0]
    ok, why = stock_llama_cpp_compatible({"general.architecture": "llama"}, {**tq, "blk.0.attn_q.weight": GGML_TYPE_I2_S})
    assert not ok and "I2_S" in why
    ok, why = stock_llama_cpp_compatible({"general.architecture": "bitnet-b1.58"}, tq)
    assert not ok and "SiLU" in why
    assert not stock_llama_cpp_compatible({"general.architecture": "bitnet-25"}, tq)[0]
    ok, why = stock_llama_cpp_compatible({"general.architecture": "bitnet"}, tq)
    assert not ok and "lm_head" in why
    tied = {k: v for k, v in tq.items() if k != "output.weight"}
    assert stock_llama_cpp_compatible({"general.architecture": "bitnet"}, tied)[0]
    assert not stock_llama_cpp_compatible({"general.architecture": "llama"}, {**tq, "x.weight": 43})[0]
    assert not stock_llama_cpp_compatible({"general.architecture": "llama", "tokenizer.ggml.pre": "falcon_e"}, tq)[0]
    ok, why = stock_llama_cpp_compatible({"general.architecture": "qwen2"}, tq)
    assert ok and "not one of this project's" in why
