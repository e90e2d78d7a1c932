"""Random-weight ternary models written straight to GGUF (for tests and benchmarks; any size, 100B included).

Weights are random ternary with a per-tensor scale, norms are ones, the tokenizer is a real one copied from a
vocab GGUF.
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Iterator
from pathlib import Path

import gguf
import numpy as np
import numpy.typing as npt

from ..errors import check_choice
from ..fileio import atomic_output
from ..formats.architectures import BY_GGUF, GGUF_SUB_NORMS, LAYER_NORMS, projections, sub_norm_sizes
from ..formats.constants import FILE_TYPES
from ..formats.gguf_write import (
    TERNARY_GGUF_TYPES,
    OutTensor,
    add_layout_keys,
    copy_tokenizer,
    float_tensor,
    row_blocks,
    ternary_tensor,
    write_streamed,
)
from .q6k_head import q6_k_tensor
from .shapes import SHAPES, Shape

OUTTYPES = ("f32", "f16", *TERNARY_GGUF_TYPES)


def _random_ternary(rng: np.random.Generator, rows: int, cols: int) -> tuple[np.ndarray, float]:
    # ~1/3 zeros like trained BitNet weights; scale keeps activations O(1) through a layer
    t = rng.integers(-1, 2, size=(rows, cols), dtype=np.int8)
    return t, float(1.0 / np.sqrt(cols))


def _normal_rows(rng: np.random.Generator, rows: int, cols: int, dtype: npt.DTypeLike,
                 divisor: np.floating | None = None) -> Callable[[], Iterator[np.ndarray]]:
    """Standard normal rows (divided by `divisor`) as `dtype`, drawn in row chunks when written. The values equal
    one draw of the whole matrix (a float draw keeps no bits of its own between calls, unlike integer draws), and
    the f64 temporary of the division is a chunk's, not the matrix's."""
    def chunks() -> Iterator[np.ndarray]:
        for start, stop in row_blocks(rows, cols * 4):
            x = rng.standard_normal((stop - start, cols), dtype=np.float32)
            yield (x if divisor is None else x / divisor).astype(dtype)
    return chunks


def _ones(n: int) -> Callable[[], Iterator[np.ndarray]]:
    return lambda: iter([np.ones(n, dtype=np.float32)])


def synthetic_tensors(arch: str, shape: Shape, outtype: str, n_vocab: int, rng: np.random.Generator,
                      embd_type: str | None = None) -> list[OutTensor]:
    """Every tensor of the model in file order, each made when written. They draw from `rng` in that order, so
    they must be written in it (write_streamed does): the bytes then match the seed whatever the model's size."""
    float_dtype = np.float32 if outtype == "f32" else np.float16

    def head(name: str, divisor: np.floating | None) -> OutTensor:
        if embd_type == "q6_k":  # the product's default head type, as random blocks (q6k_head.py)
            return q6_k_tensor(name, n_vocab, shape.hidden, rng)
        dtype = {"f32": np.float32, "f16": np.float16, None: float_dtype}[embd_type]
        return float_tensor(name, (n_vocab, shape.hidden), dtype, _normal_rows(rng, n_vocab, shape.hidden, dtype, divisor))

    out = [head("token_embd.weight", None),
           float_tensor("output_norm.weight", (shape.hidden,), np.float32, _ones(shape.hidden))]
    if not BY_GGUF[arch].sub_norms:  # a ternary Llama has its own lm_head (the bitnet presets are tied)
        out.append(head("output.weight", np.sqrt(shape.hidden)))
    for il in range(shape.layers):
        for gg in LAYER_NORMS.values():
            out.append(float_tensor(f"blk.{il}.{gg}.weight", (shape.hidden,), np.float32, _ones(shape.hidden)))
        if BY_GGUF[arch].sub_norms:
            for gg, size in zip(GGUF_SUB_NORMS, sub_norm_sizes(shape), strict=True):
                out.append(float_tensor(f"blk.{il}.{gg}.weight", (size,), np.float32, _ones(size)))
        for proj in projections(shape):
            name = f"blk.{il}.{proj.gguf}.weight"
            # the whole matrix in one draw: integer draws buffer bits within a call, so chunks would change them
            values = functools.partial(_random_ternary, rng, proj.rows, proj.cols)
            if outtype in TERNARY_GGUF_TYPES:
                out.append(ternary_tensor(name, proj.rows, proj.cols, outtype, values))
            else:
                out.append(float_tensor(name, (proj.rows, proj.cols), float_dtype, _dequantized(values, float_dtype)))
    return out


def _dequantized(values: Callable[[], tuple[np.ndarray, float]], dtype: npt.DTypeLike) -> Callable[[], Iterator[np.ndarray]]:
    def chunks() -> Iterator[np.ndarray]:
        t, scale = values()
        yield (t.astype(np.float32) * np.float32(scale)).astype(dtype)
    return chunks


def write_synthetic_gguf(out: Path, arch: str, size: str, outtype: str, vocab_gguf: Path,
                         seed: int = 0, embd_type: str | None = None, progress: bool = True) -> Path:
    """Write a random ternary model of `size` as a GGUF of `outtype` (f32/f16: float weights, i2_s/tl2: packed).
    Streamed (formats.gguf_write): memory holds the tokenizer and one tensor, whatever the size."""
    check_choice("--arch", arch, BY_GGUF)
    check_choice("--size", size, SHAPES)
    check_choice("--outtype", outtype, OUTTYPES)
    shape = SHAPES[size]

    with atomic_output(out, terminable=True) as tmp:
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
        tensors = synthetic_tensors(arch, shape, outtype, n_vocab, np.random.default_rng(seed), embd_type)
        write_streamed(writer, tensors, Path(out).name, progress)
    return out
