"""Random-weight ternary models written straight to GGUF (for tests and benchmarks).

Shapes follow bitnet.cpp's presets plus the exact BitNet-b1.58-2B-4T shape. Weights are random
ternary with a per-tensor scale, norms are ones, the tokenizer is a real one copied from a vocab GGUF.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import gguf
import numpy as np

from .errors import check_choice
from .gguf_io import add_i2s_tensor, atomic_output, copy_tokenizer
from .quants import LLAMA_FTYPE_I2_S_IN_FILES


@dataclass(frozen=True)
class Shape:
    hidden: int
    ffn: int
    layers: int
    heads: int
    kv_heads: int
    context: int = 4096
    rope_theta: float = 500000.0
    rms_eps: float = 1e-5

    @property
    def head_dim(self) -> int:
        return self.hidden // self.heads


SHAPES: dict[str, Shape] = {
    "tiny": Shape(hidden=256, ffn=512, layers=2, heads=4, kv_heads=2, context=512),
    "2B-4T": Shape(hidden=2560, ffn=6912, layers=30, heads=20, kv_heads=5),
    # bitnet.cpp's generate-dummy-bitnet-model.py presets (kv heads = heads)
    "125M": Shape(768, 3072, 11, 12, 12),
    "350M": Shape(1024, 3072, 24, 16, 16),
    "700M": Shape(1536, 4096, 24, 16, 16),
    "1B": Shape(2048, 3584, 24, 32, 32),
    "1.5B": Shape(1536, 9216, 28, 32, 32),
    "2.7B": Shape(3072, 7680, 24, 32, 32),
    "3.8B": Shape(3840, 8192, 24, 32, 32),
    "7B": Shape(4096, 12032, 32, 32, 32),
    "13B": Shape(5120, 13824, 40, 40, 40),
    "30B": Shape(6656, 16384, 60, 52, 52),
    "70B": Shape(8192, 24576, 80, 64, 64),
    "100B": Shape(8192, 45568, 72, 64, 64),
}

ARCHS = ("bitnet-b1.58", "bitnet-25", "bitnet", "llama")
OUTTYPES = ("f32", "f16", "i2_s")


def _projections(shape: Shape) -> list[tuple[str, int, int]]:
    """(gguf name suffix, rows, cols) of the ternary projections of one layer."""
    h, f, d = shape.hidden, shape.ffn, shape.head_dim
    return [
        ("attn_q", shape.heads * d, h),
        ("attn_k", shape.kv_heads * d, h),
        ("attn_v", shape.kv_heads * d, h),
        ("attn_output", h, shape.heads * d),
        ("ffn_gate", f, h),
        ("ffn_up", f, h),
        ("ffn_down", h, f),
    ]


def _random_ternary(rng: np.random.Generator, rows: int, cols: int) -> tuple[np.ndarray, float]:
    # ~1/3 zeros like trained BitNet weights; scale keeps activations O(1) through a layer
    t = rng.integers(-1, 2, size=(rows, cols), dtype=np.int8)
    return t, float(1.0 / np.sqrt(cols))


def write_synthetic_gguf(out: Path, arch: str, size: str, outtype: str, vocab_gguf: Path,
                         seed: int = 0, embd_type: str | None = None) -> Path:
    """Write a random ternary model of `size` as a GGUF of `outtype` (f32: float weights, i2_s: packed)."""
    check_choice("--arch", arch, ARCHS)
    check_choice("--size", size, SHAPES)
    check_choice("--outtype", outtype, OUTTYPES)
    shape = SHAPES[size]
    rng = np.random.default_rng(seed)
    float_dtype = np.float32 if outtype == "f32" else np.float16
    embd_dtype = {"f32": np.float32, "f16": np.float16, None: float_dtype}[embd_type]

    with atomic_output(out) as tmp:
        writer = gguf.GGUFWriter(tmp, arch)
        writer.add_name(f"synthetic-{arch}-{size}")
        n_vocab = copy_tokenizer(writer, vocab_gguf)
        writer.add_context_length(shape.context)
        writer.add_embedding_length(shape.hidden)
        writer.add_block_count(shape.layers)
        writer.add_feed_forward_length(shape.ffn)
        writer.add_head_count(shape.heads)
        writer.add_head_count_kv(shape.kv_heads)
        writer.add_rope_freq_base(shape.rope_theta)
        writer.add_layer_norm_rms_eps(shape.rms_eps)
        writer.add_rope_dimension_count(shape.head_dim)
        writer.add_vocab_size(n_vocab)
        writer.add_file_type({"f32": 0, "f16": 1, "i2_s": LLAMA_FTYPE_I2_S_IN_FILES}[outtype])

        writer.add_tensor("token_embd.weight", rng.standard_normal((n_vocab, shape.hidden), dtype=np.float32).astype(embd_dtype))
        writer.add_tensor("output_norm.weight", np.ones(shape.hidden, dtype=np.float32))
        if arch == "llama":
            head = rng.standard_normal((n_vocab, shape.hidden), dtype=np.float32) / np.sqrt(shape.hidden)
            writer.add_tensor("output.weight", head.astype(embd_dtype))
        for il in range(shape.layers):
            writer.add_tensor(f"blk.{il}.attn_norm.weight", np.ones(shape.hidden, dtype=np.float32))
            writer.add_tensor(f"blk.{il}.ffn_norm.weight", np.ones(shape.hidden, dtype=np.float32))
            if arch != "llama":
                writer.add_tensor(f"blk.{il}.attn_sub_norm.weight", np.ones(shape.heads * shape.head_dim, dtype=np.float32))
                writer.add_tensor(f"blk.{il}.ffn_sub_norm.weight", np.ones(shape.ffn, dtype=np.float32))
            for name, rows, cols in _projections(shape):
                t, scale = _random_ternary(rng, rows, cols)
                if outtype == "i2_s":
                    add_i2s_tensor(writer, f"blk.{il}.{name}.weight", t, scale)
                else:
                    writer.add_tensor(f"blk.{il}.{name}.weight", (t.astype(np.float32) * np.float32(scale)).astype(float_dtype))
        writer.write_header_to_file()
        writer.write_kv_data_to_file()
        writer.write_tensors_to_file(progress=False)
        writer.close()
    return out
