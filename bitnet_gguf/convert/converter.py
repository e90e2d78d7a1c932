"""`bitnet-gguf convert`: a Hugging Face BitNet checkpoint folder -> one GGUF file (f32/f16/bf16/i2_s/tl2).

I2_S and TL2 are packed here in numpy (formats.quants), not by a llama-quantize round trip, so conversion needs
no build and never passes through a 4x larger f32 file.
"""

from __future__ import annotations

import sys
import time
from dataclasses import dataclass
from pathlib import Path

import gguf
import numpy as np

from ..errors import BitnetError, check_choice
from ..fileio import atomic_output
from ..formats.constants import FILE_TYPES
from ..formats.gguf_write import add_layout_keys
from ..formats.safetensors_reader import SafetensorsReader
from .checkpoint import ModelConfig, load_config
from .tensor_plan import EMBD_TYPES, NOT_YET_EMBD, OutTensor, TensorPlanner, default_embd_type
from .tokenizer import Vocabulary, load_vocabulary


@dataclass(frozen=True)
class ConvertResult:
    path: Path
    arch: str
    n_tensors: int
    nbytes: int
    seconds: float
    embd_type: str

    def describe(self) -> str:
        return (f"wrote {self.path} ({self.arch}, {self.n_tensors} tensors, embedding {self.embd_type}, "
                f"{self.nbytes / 2**20:.1f} MiB) in {self.seconds:.1f}s")


def default_outfile(model_dir: Path, outtype: str) -> Path:
    return Path(model_dir) / f"ggml-model-{outtype}.gguf"


def check_embd_type(embd_type: str) -> str:
    t = embd_type.lower()
    if t in NOT_YET_EMBD:
        raise BitnetError(f"--embd-type {t} is not supported yet (no numpy encoder); use q6_k or q8_0, "
                          f"or f16 and then llama-quantize --token-embedding-type {t}")
    check_choice("--embd-type", t, EMBD_TYPES)
    return t


def _write_metadata(writer: gguf.GGUFWriter, cfg: ModelConfig, vocab: Vocabulary, outtype: str) -> None:
    writer.add_name(cfg.name)
    writer.add_vocab_size(cfg.vocab)
    writer.add_context_length(cfg.context)
    writer.add_embedding_length(cfg.hidden)
    writer.add_block_count(cfg.layers)
    writer.add_feed_forward_length(cfg.ffn)
    writer.add_head_count(cfg.heads)
    writer.add_head_count_kv(cfg.kv_heads)
    writer.add_rope_freq_base(cfg.rope_theta)
    writer.add_layer_norm_rms_eps(cfg.rms_eps)
    writer.add_rope_dimension_count(cfg.head_dim)
    if cfg.head_dim != cfg.hidden // cfg.heads:
        writer.add_key_length(cfg.head_dim)
        writer.add_value_length(cfg.head_dim)
    if cfg.rope_scaling is not None:
        kind = cfg.rope_scaling.get("rope_type", cfg.rope_scaling.get("type"))
        if kind == "linear":
            writer.add_rope_scaling_type(gguf.RopeScalingType.LINEAR)
            writer.add_rope_scaling_factor(float(cfg.rope_scaling.get("factor", 1.0)))
        elif kind == "llama3" and cfg.arch.gguf_arch != "llama":
            raise BitnetError(f"{cfg.config_path}: llama3 rope scaling is only supported for LlamaForCausalLM")
    writer.add_file_type(FILE_TYPES[outtype])
    add_layout_keys(writer, outtype)
    writer.add_quantization_version(gguf.GGML_QUANT_VERSION)
    vocab.add_to(writer)


def convert(model_dir: Path, outtype: str = "i2_s", outfile: Path | None = None, embd_type: str | None = None,
            tokenizer_pre: str | None = None, progress: bool = True) -> ConvertResult:
    """Convert model_dir; on any error no output file is left behind (atomic rename at the end)."""
    start = time.monotonic()
    check_choice("--outtype", outtype, FILE_TYPES)
    embd = check_embd_type(embd_type) if embd_type else None
    model_dir = Path(model_dir)
    cfg = load_config(model_dir)
    embd = embd or default_embd_type(outtype, cfg.hidden)
    reader = SafetensorsReader(model_dir)
    vocab = load_vocabulary(model_dir, cfg.vocab, tokenizer_pre)
    # plan everything (shapes, types, presence of every tensor) before creating any file
    tensors: list[OutTensor] = TensorPlanner(cfg, reader, outtype, embd).plan()
    out = Path(outfile) if outfile else default_outfile(model_dir, outtype)
    total = sum(t.nbytes for t in tensors)
    with atomic_output(out) as tmp:
        writer = gguf.GGUFWriter(tmp, cfg.arch.gguf_arch)
        _write_metadata(writer, cfg, vocab, outtype)
        for t in tensors:
            # element shape + a non-uint8 dtype: gguf-py then takes the type as given and the shape in elements
            writer.add_tensor_info(t.name, t.shape, np.dtype(np.float32), t.nbytes, raw_dtype=t.qtype)  # type: ignore[arg-type]
        writer.write_header_to_file()
        writer.write_kv_data_to_file()
        writer.write_ti_data_to_file()
        bar = _progress(total, out.name, progress)
        try:
            for t in tensors:
                writer.write_tensor_data(t.data)  # type: ignore[arg-type]
                if bar is not None:
                    bar.update(t.nbytes)
        finally:
            if bar is not None:
                bar.close()
            writer.close()
    return ConvertResult(out, cfg.arch.gguf_arch, len(tensors), out.stat().st_size, time.monotonic() - start, embd)


def _progress(total: int, what: str, enabled: bool):  # -> tqdm | None
    if not enabled:
        return None
    from tqdm import tqdm

    # disable=None: tqdm turns itself off when stderr is not a terminal (logs get the summary line only)
    return tqdm(total=total, unit="B", unit_scale=True, desc=f"writing {what}", file=sys.stderr, leave=False, disable=None)
