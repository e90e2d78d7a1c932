"""Random-weight ternary models written straight to GGUF (for tests and benchmarks; any size, 100B included).

Weights are random ternary with a per-tensor scale, norms are ones, the tokenizer is a real one copied from a
vocab GGUF.
"""

from __future__ import annotations

from pathlib import Path

import gguf
import numpy as np

from ..errors import check_choice
from ..fileio import atomic_output
from ..formats.architectures import BY_GGUF, GGUF_SUB_NORMS, LAYER_NORMS, projections, sub_norm_sizes
from ..formats.constants import FILE_TYPES
from ..formats.gguf_write import TERNARY_GGUF_TYPES, add_layout_keys, add_ternary_tensor, copy_tokenizer
from .shapes import SHAPES

OUTTYPES = ("f32", "f16", *TERNARY_GGUF_TYPES)


def _random_ternary(rng: np.random.Generator, rows: int, cols: int) -> tuple[np.ndarray, float]:
    # ~1/3 zeros like trained BitNet weights; scale keeps activations O(1) through a layer
    t = rng.integers(-1, 2, size=(rows, cols), dtype=np.int8)
    return t, float(1.0 / np.sqrt(cols))


def write_synthetic_gguf(out: Path, arch: str, size: str, outtype: str, vocab_gguf: Path,
                         seed: int = 0, embd_type: str | None = None) -> Path:
    """Write a random ternary model of `size` as a GGUF of `outtype` (f32/f16: float weights, i2_s/tl2: packed)."""
    check_choice("--arch", arch, BY_GGUF)
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
        writer.add_file_type(FILE_TYPES[outtype])
        add_layout_keys(writer, outtype)

        writer.add_tensor("token_embd.weight", rng.standard_normal((n_vocab, shape.hidden), dtype=np.float32).astype(embd_dtype))
        writer.add_tensor("output_norm.weight", np.ones(shape.hidden, dtype=np.float32))
        if not BY_GGUF[arch].sub_norms:  # a ternary Llama has its own lm_head (the bitnet presets are tied)
            head = rng.standard_normal((n_vocab, shape.hidden), dtype=np.float32) / np.sqrt(shape.hidden)
            writer.add_tensor("output.weight", head.astype(embd_dtype))
        for il in range(shape.layers):
            for gg in LAYER_NORMS.values():
                writer.add_tensor(f"blk.{il}.{gg}.weight", np.ones(shape.hidden, dtype=np.float32))
            if BY_GGUF[arch].sub_norms:
                for gg, size in zip(GGUF_SUB_NORMS, sub_norm_sizes(shape), strict=True):
                    writer.add_tensor(f"blk.{il}.{gg}.weight", np.ones(size, dtype=np.float32))
            for proj in projections(shape):
                t, scale = _random_ternary(rng, proj.rows, proj.cols)
                name = f"blk.{il}.{proj.gguf}.weight"
                if outtype in TERNARY_GGUF_TYPES:
                    add_ternary_tensor(writer, name, t, scale, outtype)
                else:
                    writer.add_tensor(name, (t.astype(np.float32) * np.float32(scale)).astype(float_dtype))
        writer.write_header_to_file()
        writer.write_kv_data_to_file()
        writer.write_tensors_to_file(progress=False)
        writer.close()
    return out
