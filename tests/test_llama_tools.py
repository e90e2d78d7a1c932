"""llama.cpp tools of our build on I2_S files: quantize (deterministic), load, generate; upstream types still work."""

from __future__ import annotations

import re
import subprocess
from pathlib import Path

import numpy as np
import pytest

from bitnet_gguf.formats.constants import GGML_TYPE_I2_S
from bitnet_gguf.formats.gguf_read import GGUFFile
from bitnet_gguf.formats.kquants import Q6K
from bitnet_gguf.synthetic.gguf_model import write_synthetic_gguf

from .conftest import run_tool

GEN_ARGS = ("-n", "12", "-t", "2", "--temp", "0", "-no-cnv", "--no-warmup", "-v")


def generate(bin_dir: Path, model: Path, prompt: str = "The quick brown fox") -> subprocess.CompletedProcess[str]:
    return run_tool(bin_dir, "llama-completion", "-m", str(model), "-p", prompt, *GEN_ARGS)


def file_type_line(log: str) -> str:
    m = re.search(r"print_info: file type\s+=\s+(.*)", log)
    assert m, log[-2000:]
    return m.group(1).strip()


def n_generated(log: str) -> int:
    m = re.search(r"eval time =\s+[\d.]+ ms /\s+(\d+) runs", log)
    assert m, log[-2000:]
    return int(m.group(1))


@pytest.fixture(scope="module")
def quantized(bin_dir: Path, tiny_f32: Path, tmp_path_factory: pytest.TempPathFactory) -> dict[int, Path]:
    out = tmp_path_factory.mktemp("quantized")
    files = {}
    for threads in (1, 2):
        files[threads] = out / f"i2_s-t{threads}.gguf"
        proc = run_tool(bin_dir, "llama-quantize", str(tiny_f32), str(files[threads]), "I2_S", str(threads))
        assert proc.returncode == 0, proc.stderr[-2000:]
    return files


def test_quantize_is_thread_independent(quantized: dict[int, Path]) -> None:
    assert quantized[1].read_bytes() == quantized[2].read_bytes()


def test_quantized_bytes_match_numpy_packing(quantized: dict[int, Path], tiny_i2s: Path, tiny_f32: Path) -> None:
    ours, ref = GGUFFile(quantized[2]), GGUFFile(tiny_i2s)
    assert ours.metadata["general.file_type"] == 40  # bitnet.cpp's id for I2_S files
    i2s = [n for n, t in ref.tensors.items() if t.ggml_type == GGML_TYPE_I2_S]
    assert len(i2s) == 14
    for name in i2s:
        assert ours.tensors[name].ggml_type == GGML_TYPE_I2_S
        assert np.array_equal(ours.data(name), ref.data(name)), name
    # Q6_K by default (tied lm_head; docs/bench/README.md), and the converter's numpy encoder writes the same bytes
    embd = ours.tensors["token_embd.weight"]
    assert embd.ggml_type == 14
    src = GGUFFile(tiny_f32)
    x = np.asarray(src.data("token_embd.weight")).view(np.float32).reshape(embd.shape[1], embd.shape[0])
    assert np.array_equal(ours.data("token_embd.weight"), Q6K.quantize(x).reshape(-1))


def test_generate_from_quantized_i2s(bin_dir: Path, quantized: dict[int, Path]) -> None:
    proc = generate(bin_dir, quantized[1])
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert file_type_line(proc.stderr) == "I2_S - 2 bpw ternary"
    assert "type i2_s:   14 tensors" in proc.stderr
    assert n_generated(proc.stderr) == 11  # 12 tokens: the first comes from the prompt pass
    assert proc.stdout.startswith("The quick brown fox")


def test_llama_cli_generates(bin_dir: Path, quantized: dict[int, Path]) -> None:
    proc = subprocess.run([str(bin_dir / "llama-cli"), "-m", str(quantized[1]), "-p", "Hello", "-n", "8", "-t", "2",
                           "--temp", "0", "-st", "--simple-io", "--no-warmup"],
                          capture_output=True, text=True, timeout=300, stdin=subprocess.DEVNULL)
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert "Hello" in proc.stdout


def test_numpy_i2s_file_generates_same_tokens(bin_dir: Path, tiny_f32: Path, tiny_i2s: Path, tmp_path: Path) -> None:
    """A file packed by Python and one made by llama-quantize (with the same F16 embedding) generate the same text."""
    assert GGUFFile(tiny_i2s).tensors["token_embd.weight"].ggml_type == 1  # F16
    same = tmp_path / "i2_s-f16-embd.gguf"
    proc = run_tool(bin_dir, "llama-quantize", "--token-embedding-type", "f16", str(tiny_f32), str(same), "I2_S", "2")
    assert proc.returncode == 0, proc.stderr[-2000:]
    a, b = generate(bin_dir, tiny_i2s), generate(bin_dir, same)
    assert a.returncode == 0 and b.returncode == 0
    assert n_generated(a.stderr) == 11 and a.stdout == b.stdout


@pytest.mark.parametrize("qtype", ["TQ2_0", "TQ1_0", "Q8_0", "Q4_0", "Q6_K", "Q1_0", "Q2_0", "MXFP4_MOE"])
def test_upstream_types_still_work(bin_dir: Path, tiny_f32: Path, tmp_path: Path, qtype: str) -> None:
    out = tmp_path / f"{qtype}.gguf"
    proc = run_tool(bin_dir, "llama-quantize", str(tiny_f32), str(out), qtype, "2")
    assert proc.returncode == 0, proc.stderr[-2000:]
    gen = generate(bin_dir, out)
    assert gen.returncode == 0, gen.stderr[-2000:]
    assert n_generated(gen.stderr) == 11
    if qtype == "Q1_0":  # ftype 40 without I2_S tensors is still upstream's Q1_0
        assert file_type_line(gen.stderr) == "Q1_0"


@pytest.mark.parametrize("arch", ["bitnet", "bitnet-25"])
def test_other_bitnet_architectures_load(bin_dir: Path, vocab_gguf: Path, tmp_path: Path, arch: str) -> None:
    model = write_synthetic_gguf(tmp_path / f"{arch}.gguf", arch, "tiny", "i2_s", vocab_gguf, seed=2)
    gen = generate(bin_dir, model)
    assert gen.returncode == 0, gen.stderr[-2000:]
    assert f"general.architecture str              = {arch}" in gen.stderr


def test_partial_block_tensor_is_refused(bin_dir: Path, tiny_i2s: Path, tmp_path: Path) -> None:
    """A tensor whose element count is not a multiple of 128 cannot be I2_S: the loader says so."""
    bad = tmp_path / "bad.gguf"
    raw = bytearray(tiny_i2s.read_bytes())
    f = GGUFFile(tiny_i2s)
    # reshape blk.0.attn_k from [256, 128] to [260, 127] in the tensor table: 33020 elements, not whole 128-blocks
    name = b"blk.0.attn_k.weight"
    pos = raw.index(name) + len(name)
    n_dims = int.from_bytes(raw[pos:pos + 4], "little")
    assert n_dims == 2 and f.tensors["blk.0.attn_k.weight"].shape == (256, 128)
    raw[pos + 4:pos + 12] = (260).to_bytes(8, "little")
    raw[pos + 12:pos + 20] = (127).to_bytes(8, "little")
    bad.write_bytes(bytes(raw))
    gen = generate(bin_dir, bad)
    assert gen.returncode != 0
    assert "tensor 'blk.0.attn_k.weight' of type i2_s has 33020 elements, not a multiple of 128" in gen.stderr
