"""`bitnet-gguf convert`: a Hugging Face BitNet checkpoint folder -> one GGUF file (f32/f16/bf16/i2_s/tl1/tl2, and
upstream's tq1_0/tq2_0 for stock llama.cpp).

The ternary types are packed here in numpy (formats.quants), not by a llama-quantize round trip, so conversion needs
no build and never passes through a 4x larger f32 file. tq1_0/tq2_0 files are laid out as llama-quantize writes them
from our f32 file (tensor and key order, embedding types), so the two are the same bytes.
"""

from __future__ import annotations

import re
import time
from dataclasses import dataclass
from pathlib import Path

import gguf

from ..errors import BitnetError, check_choice
from ..fileio import atomic_output, check_output_path
from ..formats.architectures import NO_OUTPUT_TENSOR_REASON, STOCK_NO_OUTPUT_TENSOR
from ..formats.constants import FILE_TYPES, STOCK_TERNARY_TYPES
from ..formats.gguf_write import OutTensor, add_layout_keys, write_streamed
from ..formats.safetensors_reader import SafetensorsReader
from .checkpoint import ModelConfig, load_config
from .tensor_plan import EMBD_TYPES, NOT_YET_EMBD, TensorPlanner, default_embd_type, stock_embd_types
from .tokenizer import Vocabulary, load_vocabulary

# bump when the same checkpoint and options would give different bytes (a fix, a new key): setup_env.py then
# converts its GGUFs again instead of keeping ones from an older converter (its stamp holds this number)
CONVERTER_VERSION = 2
CHECKPOINT_GLOBS = ("config.json", "*.safetensors", "model.safetensors.index.json", "tokenizer.json", "tokenizer.model",
                    "tokenizer_config.json", "special_tokens_map.json", "generation_config.json")


def conversion_inputs(model_dir: Path, outtype: str, embd_type: str | None = None,
                      tokenizer_pre: str | None = None) -> dict[str, object]:
    """What a converted GGUF depends on: converter version, options, and the checkpoint files (name, size,
    mtime); setup_env.py reconverts when this differs from the GGUF's stamp."""
    from ..fileio import fingerprint

    files = {p for g in CHECKPOINT_GLOBS for p in Path(model_dir).glob(g) if p.is_file()}
    return {"converter": CONVERTER_VERSION, "outtype": outtype, "embd_type": embd_type, "tokenizer_pre": tokenizer_pre,
            "files": fingerprint(files)}


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
    if outtype in STOCK_TERNARY_TYPES:
        # llama-quantize copies every key, then sets these two again, which moves them to the end
        vocab.add_to(writer)
        writer.add_quantization_version(gguf.GGML_QUANT_VERSION)
        writer.add_file_type(FILE_TYPES[outtype])
        return
    writer.add_file_type(FILE_TYPES[outtype])
    add_layout_keys(writer, outtype)
    writer.add_quantization_version(gguf.GGML_QUANT_VERSION)
    vocab.add_to(writer)


def _loader_order(t: OutTensor) -> tuple[int, str]:
    """llama.cpp's weight_name_comparer (the order llama-quantize writes): by layer (global tensors first), then name."""
    m = re.match(r"blk\.(\d+)\.", t.name)
    return (int(m.group(1)) if m else -1, t.name)


def check_stock(cfg: ModelConfig, has_lm_head: bool, outtype: str) -> None:
    """tq1_0/tq2_0 promise a file stock llama.cpp runs right: refuse, in one line, a model it would not."""
    why = cfg.arch.not_in_stock
    if why is None and cfg.arch.gguf_arch in STOCK_NO_OUTPUT_TENSOR and has_lm_head and not cfg.tied:
        why = NO_OUTPUT_TENSOR_REASON
    if why is not None:
        raise BitnetError(f"--outtype {outtype}: {cfg.arch.hf_arch} (`{cfg.arch.gguf_arch}`) cannot be written for stock "
                          f"llama.cpp: {why}; use --outtype i2_s and this project's build")


def plan_conversion(model_dir: Path, outtype: str = "i2_s", embd_type: str | None = None,
                    tokenizer_pre: str | None = None) -> tuple[ModelConfig, Vocabulary, list[OutTensor], str]:
    """Every check that needs no tensor data: config, tokenizer, each tensor's presence, shape and dtype.
    (setup_env.py runs this before its build, so a bad checkpoint is refused in seconds, not after 10 minutes.)"""
    check_choice("--outtype", outtype, FILE_TYPES)
    embd = check_embd_type(embd_type) if embd_type else None
    model_dir = Path(model_dir)
    cfg = load_config(model_dir)
    reader = SafetensorsReader(model_dir)
    output_embd = None
    if outtype in STOCK_TERNARY_TYPES:
        check_stock(cfg, "lm_head.weight" in reader, outtype)
        if embd is None:
            embd, output_embd = stock_embd_types(cfg.hidden, cfg.tied or "lm_head.weight" not in reader)
    embd = embd or default_embd_type(outtype, cfg.hidden)
    vocab = load_vocabulary(model_dir, cfg.vocab, tokenizer_pre)
    tensors: list[OutTensor] = TensorPlanner(cfg, reader, outtype, embd, output_embd).plan()
    if outtype in STOCK_TERNARY_TYPES:
        tensors.sort(key=_loader_order)
    return cfg, vocab, tensors, embd


def convert(model_dir: Path, outtype: str = "i2_s", outfile: Path | None = None, embd_type: str | None = None,
            tokenizer_pre: str | None = None, progress: bool = True) -> ConvertResult:
    """Convert model_dir; on any error no output file is left behind (atomic rename at the end)."""
    start = time.monotonic()
    model_dir = Path(model_dir)
    if not model_dir.is_dir():
        raise BitnetError(f"{model_dir}: not a folder")
    out = Path(outfile) if outfile else default_outfile(model_dir, outtype)
    check_output_path(out, "--outfile")
    if out.is_file() and model_dir.is_dir() and any(out.resolve() == p.resolve() for p in model_dir.iterdir()
                                                     if not p.name.endswith(".gguf")):
        raise BitnetError(f"--outfile {out}: is a file of the checkpoint itself, expected a new .gguf path")
    # plan everything (shapes, types, presence of every tensor) before creating any file
    cfg, vocab, tensors, embd = plan_conversion(model_dir, outtype, embd_type, tokenizer_pre)
    with atomic_output(out, terminable=True) as tmp:
        writer = gguf.GGUFWriter(tmp, cfg.arch.gguf_arch)
        _write_metadata(writer, cfg, vocab, outtype)
        write_streamed(writer, tensors, out.name, progress)
    return ConvertResult(out, cfg.arch.gguf_arch, len(tensors), out.stat().st_size, time.monotonic() - start, embd)

