"""Small checkpoints and GGUFs the bad-input tables copy and damage (made once per test session)."""

from __future__ import annotations

from pathlib import Path

import gguf
import numpy as np
import pytest

from bitnet_gguf.synthetic.hf_model import generate_model

from ..hf_oracle import vocab_dir


@pytest.fixture(scope="session")
def spm_ckpt(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """1bitLLM-style bitnet tiny checkpoint (SentencePiece tokenizer.model, untied lm_head, bf16 master weights)."""
    return generate_model("bitnet", "tiny", tmp_path_factory.mktemp("bad-ckpt") / "spm", vocab_dir(), seed=3)


@pytest.fixture(scope="session")
def packed_ckpt(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return generate_model("bitnet", "tiny", tmp_path_factory.mktemp("bad-ckpt") / "packed", vocab_dir(), form="packed", seed=3)


@pytest.fixture(scope="session")
def bpe_ckpt(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """bitnet-b1.58 tiny checkpoint (Llama-3 byte-level BPE tokenizer.json)."""
    return generate_model("bitnet-b1.58", "tiny", tmp_path_factory.mktemp("bad-ckpt") / "bpe", vocab_dir(), seed=3)


@pytest.fixture(scope="session")
def bad_ggufs(tmp_path_factory: pytest.TempPathFactory, tiny_i2s: Path) -> dict[str, Path]:
    """Broken GGUF files for the runtime entry points (a good one is tiny_i2s)."""
    d = tmp_path_factory.mktemp("bad-gguf")
    data = tiny_i2s.read_bytes()
    files = {
        "empty": b"",
        "text": b"this is not a model\n" * 10,
        "header_cut": data[:64],
        "half": data[: len(data) // 2],
        "tail_cut": data[:-4096],
        "version1": data[:4] + (1).to_bytes(4, "little") + data[8:],
        "random": np.random.default_rng(0).integers(0, 256, 4096, dtype=np.uint8).tobytes(),
        "magic_only": b"GGUF",
    }
    out = {}
    for name, blob in files.items():
        out[name] = d / f"{name}.gguf"
        out[name].write_bytes(blob)
    # bitnet.cpp's TL2 file type on its architecture: refused (its layout belongs to the build that wrote it)
    w = gguf.GGUFWriter(d / "bitnetcpp-tl2.gguf", "bitnet-b1.58")
    w.add_file_type(39)
    w.write_header_to_file()
    w.write_kv_data_to_file()
    w.close()
    out["bitnetcpp_tl2"] = d / "bitnetcpp-tl2.gguf"
    # a tensor of a ggml type that does not exist
    w = gguf.GGUFWriter(d / "badtype.gguf", "llama")
    w.add_tensor_info("token_embd.weight", (4, 32), np.dtype(np.float32), 4 * 32 * 4, raw_dtype=99)  # type: ignore[arg-type]
    w.write_header_to_file()
    w.write_kv_data_to_file()
    w.write_ti_data_to_file()
    w.close()
    out["badtype"] = d / "badtype.gguf"
    return out
