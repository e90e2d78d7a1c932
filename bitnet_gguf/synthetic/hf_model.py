"""`bitnet-gguf generate-model`: random-weight Hugging Face checkpoints that transformers and the converter load.

Shapes are shapes.py's presets. Weights come from a fixed seed; the tokenizer is a real one rebuilt from a
llama.cpp vocab GGUF (Llama-3 BPE for bitnet-b1.58 and llama, SentencePiece for 1bitLLM-style bitnet).
Forms (docs/formats.md §4):
- master: bf16 master weights, ternarized by whoever loads them (absmean);
- packed: uint8 [M/4, K] + weight_scale with quantization_config quant_method "bitnet".
Norm weights are random around 1 (not all ones) so a norm mapped to the wrong place changes the logits.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ..convert.ternary import pack_rows
from ..errors import BitnetError, check_choice
from ..fileio import atomic_output
from ..formats.architectures import BY_GGUF, LAYER_NORMS, Architecture, projections, sub_norm_sizes
from ..formats.safetensors_writer import TensorSpec, f32_to_bf16, write_safetensors
from ..paths import vocab_gguf
from .shapes import SHAPES, Shape
from .tokenizer_files import cached_tokenizer, write_llama3_tokenizer, write_spm_tokenizer

FORMS = ("master", "packed")
LINEAR_CLASSES = ("bitlinear", "autobitlinear")
# bf16 bytes above which an HF checkpoint is not worth writing here (7B is 14 GB): use --gguf instead
MAX_HF_BYTES = 8 << 30
# master projections ~ N(0, PROJ_STD / sqrt(K)): each layer's output (std ~2) then outweighs the embedding in the
# residual stream, so the logits depend on every layer (with std 1/sqrt(K) a tied model just echoes its input)
PROJ_STD = 3.0


@dataclass(frozen=True)
class CheckpointStyle:
    """What a synthetic checkpoint copies from the real checkpoints of its architecture."""

    tied: bool
    tokenizer: str  # "llama3" or "spm"
    default_linear_class: str


# 2B-4T (tied, autobitlinear), 1bitLLM (untied, SPM), HF1BitLLM Llama3 (untied, bitlinear)
STYLES = {
    "bitnet-b1.58": CheckpointStyle(True, "llama3", "autobitlinear"),
    "bitnet": CheckpointStyle(False, "spm", "bitlinear"),
    "llama": CheckpointStyle(False, "llama3", "bitlinear"),
}
HF_ARCHS = tuple(STYLES)
VOCAB_GGUFS = {"llama3": "ggml-vocab-llama-bpe.gguf", "spm": "ggml-vocab-llama-spm.gguf"}
BOS_EOS = {"llama3": (128000, 128009), "spm": (1, 2)}


def _config(arch: Architecture, style: CheckpointStyle, shape: Shape, vocab: int, form: str, linear_class: str) -> dict:
    bos, eos = BOS_EOS[style.tokenizer]
    cfg: dict = {
        "architectures": [arch.hf_arch],
        "model_type": arch.model_type,
        "hidden_size": shape.hidden,
        "intermediate_size": shape.ffn,
        "num_hidden_layers": shape.layers,
        "num_attention_heads": shape.heads,
        "num_key_value_heads": shape.kv_heads,
        "hidden_act": arch.activation,
        "max_position_embeddings": shape.context,
        "rms_norm_eps": shape.rms_eps,
        "rope_theta": shape.rope_theta,
        "vocab_size": vocab,
        "bos_token_id": bos,
        "eos_token_id": eos,
        "tie_word_embeddings": style.tied,
        "attention_bias": False,
        "torch_dtype": "bfloat16",
    }
    if form == "packed":
        cfg["quantization_config"] = {"quant_method": "bitnet", "linear_class": linear_class, "quantization_mode": "offline"}
    elif not arch.always_ternary:
        # a Llama is only ternary if it says so: master weights quantized at run time (QAT form)
        cfg["quantization_config"] = {"quant_method": "bitnet", "linear_class": "autobitlinear", "quantization_mode": "online"}
    return cfg


def _specs(arch: Architecture, tied: bool, shape: Shape, vocab: int, form: str, linear_class: str, seed: int) -> list[TensorSpec]:
    rng = np.random.default_rng(seed)
    h = shape.hidden

    def normal(rows: int, cols: int, std: float) -> Callable[[], np.ndarray]:
        return lambda: f32_to_bf16(rng.standard_normal((rows, cols), dtype=np.float32) * np.float32(std))

    def norm(size: int) -> Callable[[], np.ndarray]:
        return lambda: f32_to_bf16(rng.uniform(0.8, 1.2, size).astype(np.float32))

    specs = [TensorSpec("model.embed_tokens.weight", "BF16", (vocab, h), normal(vocab, h, 1.0))]
    for il in range(shape.layers):
        p = f"model.layers.{il}."
        for hf in LAYER_NORMS:
            specs.append(TensorSpec(f"{p}{hf}.weight", "BF16", (h,), norm(h)))
        if arch.sub_norms:
            for names, size in zip(arch.sub_norms, sub_norm_sizes(shape), strict=True):
                specs.append(TensorSpec(f"{p}{names[0]}.weight", "BF16", (size,), norm(size)))
        for proj in projections(shape):
            rows, cols = proj.rows, proj.cols
            if form == "master":
                specs.append(TensorSpec(f"{p}{proj.hf}.weight", "BF16", (rows, cols), normal(rows, cols, PROJ_STD * cols ** -0.5)))
            else:
                specs.extend(_packed(rng, f"{p}{proj.hf}", rows, cols, linear_class))
    specs.append(TensorSpec("model.norm.weight", "BF16", (h,), norm(h)))
    if not tied:
        specs.append(TensorSpec("lm_head.weight", "BF16", (vocab, h), normal(vocab, h, 1.0)))
    return specs


def _packed(rng: np.random.Generator, prefix: str, rows: int, cols: int, linear_class: str) -> list[TensorSpec]:
    # one draw per projection for both tensors, so weight and scale stay consistent whatever the file order
    state: dict[str, np.ndarray] = {}

    def weight() -> np.ndarray:
        t = rng.integers(-1, 2, size=(rows, cols), dtype=np.int8)
        s = np.float32(PROJ_STD * 0.8 * cols ** -0.5)  # absmean of the matching master weight
        # weight_scale as transformers reads it: AutoBitLinear multiplies by it, BitLinear divides by it
        state["ws"] = f32_to_bf16(np.array([s if linear_class == "autobitlinear" else 1.0 / s], dtype=np.float32))
        return pack_rows(t)

    return [TensorSpec(f"{prefix}.weight", "U8", (rows // 4, cols), weight),
            TensorSpec(f"{prefix}.weight_scale", "BF16", (1,), lambda: state.pop("ws"))]


def estimate_bytes(shape: Shape, vocab: int, tied: bool) -> int:
    per_layer = sum(p.rows * p.cols for p in projections(shape))
    return 2 * (shape.layers * per_layer + vocab * shape.hidden * (1 if tied else 2))


def generate_model(arch: str, size: str | Shape, out: Path, vocab_dir: Path | None = None, form: str = "master", seed: int = 0,
                   linear_class: str | None = None, force: bool = False) -> Path:
    """Write config.json, tokenizer files and model.safetensors into out (a new folder).

    size is a preset name of shapes.SHAPES, or a Shape (tests use odd shapes); vocab_dir holds llama.cpp's vocab
    GGUFs (default: paths.vocab_dir()).
    """
    check_choice("--arch", arch, HF_ARCHS)
    if isinstance(size, str):
        check_choice("--size", size, SHAPES)
    check_choice("--form", form, FORMS)
    style = STYLES[arch]
    linear_class = linear_class or style.default_linear_class
    check_choice("--linear-class", linear_class, LINEAR_CLASSES)
    shape = SHAPES[size] if isinstance(size, str) else size
    vocab_file = vocab_gguf(VOCAB_GGUFS[style.tokenizer], vocab_dir)
    vocab = 128256 if style.tokenizer == "llama3" else 32000
    need = estimate_bytes(shape, vocab, style.tied)
    if need > MAX_HF_BYTES and not force:
        raise BitnetError(f"--size {size} would write a {need / 2**30:.1f} GiB bf16 checkpoint; "
                          "write the GGUF directly with --gguf OUTTYPE (or pass --force)")
    out = Path(out)
    if out.exists() and not out.is_dir():
        raise BitnetError(f"--out {out}: is a file, expected a new folder")
    if out.is_dir() and any(out.iterdir()):
        raise BitnetError(f"--out {out}: folder exists and is not empty")
    # the whole folder is written under a temporary name and renamed at the end: a failure (or kill) never leaves
    # half a checkpoint that looks complete
    with atomic_output(out, directory=True) as tmp:
        n_tok = cached_tokenizer(write_llama3_tokenizer if style.tokenizer == "llama3" else write_spm_tokenizer, vocab_file, tmp)
        if n_tok != vocab:
            raise BitnetError(f"{vocab_file}: {n_tok} tokens, expected {vocab}")
        facts = BY_GGUF[arch]
        (tmp / "config.json").write_text(json.dumps(_config(facts, style, shape, vocab, form, linear_class), indent=2) + "\n")
        bos, eos = BOS_EOS[style.tokenizer]
        (tmp / "generation_config.json").write_text(json.dumps(
            {"bos_token_id": bos, "eos_token_id": eos, "do_sample": False}, indent=2) + "\n")
        write_safetensors(tmp / "model.safetensors", _specs(facts, style.tied, shape, vocab, form, linear_class, seed))
    return out
