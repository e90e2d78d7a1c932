"""`bitnet-gguf generate-model`: random-weight Hugging Face checkpoints that transformers and the converter load.

Shapes are synthetic.py's presets. Weights come from a fixed seed; the tokenizer is a real one rebuilt from a
llama.cpp vocab GGUF (Llama-3 BPE for bitnet-b1.58 and llama, SentencePiece for 1bitLLM-style bitnet).
Forms (FORMATS.md §4):
- master: bf16 master weights, ternarized by whoever loads them (absmean);
- packed: uint8 [M/4, K] + weight_scale with quantization_config quant_method "bitnet".
Norm weights are random around 1 (not all ones) so a norm mapped to the wrong place changes the logits.
"""

from __future__ import annotations

import json
import shutil
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from .errors import BitnetError, check_choice
from .gguf_io import atomic_output
from .safetensors_writer import TensorSpec, f32_to_bf16, write_safetensors
from .synthetic import SHAPES, Shape
from .tokenizer_files import cached_tokenizer, write_llama3_tokenizer, write_spm_tokenizer

HF_ARCHS = ("bitnet-b1.58", "bitnet", "llama")
FORMS = ("master", "packed")
LINEAR_CLASSES = ("bitlinear", "autobitlinear")
# bf16 bytes above which an HF checkpoint is not worth writing here (7B is 14 GB): use --gguf instead
MAX_HF_BYTES = 8 << 30
# master projections ~ N(0, PROJ_STD / sqrt(K)): each layer's output (std ~2) then outweighs the embedding in the
# residual stream, so the logits depend on every layer (with std 1/sqrt(K) a tied model just echoes its input)
PROJ_STD = 3.0


@dataclass(frozen=True)
class ArchFacts:
    hf_arch: str
    model_type: str
    act: str
    tied: bool
    tokenizer: str  # "llama3" or "spm"
    default_linear_class: str
    sub_norms: tuple[str, str] | None  # HF names of (attention, ffn) sub-norms


# each mirrors the real checkpoints it stands for: 2B-4T (tied, autobitlinear), 1bitLLM (untied, SPM, its own
# sub-norm names), HF1BitLLM Llama3 (untied, bitlinear)
FACTS = {
    "bitnet-b1.58": ArchFacts("BitNetForCausalLM", "bitnet", "relu2", True, "llama3", "autobitlinear",
                              ("self_attn.attn_sub_norm", "mlp.ffn_sub_norm")),
    "bitnet": ArchFacts("BitnetForCausalLM", "llama", "silu", False, "spm", "bitlinear",
                        ("self_attn.inner_attn_ln", "mlp.ffn_layernorm")),
    "llama": ArchFacts("LlamaForCausalLM", "llama", "silu", False, "llama3", "bitlinear", None),
}
BOS_EOS = {"llama3": (128000, 128009), "spm": (1, 2)}


def _bf16(x: np.ndarray) -> np.ndarray:
    return f32_to_bf16(x)


def pack_ternary(t: np.ndarray) -> np.ndarray:
    """int8 [M, K] in {-1,0,1} -> uint8 [M/4, K]: row r + i*M/4 goes to bits 2i of byte row r (transformers' layout)."""
    m = t.shape[0]
    codes = (t.astype(np.int16) + 1).astype(np.uint8).reshape(4, m // 4, t.shape[1])
    out = np.zeros((m // 4, t.shape[1]), dtype=np.uint8)
    for i in range(4):
        out |= codes[i] << np.uint8(2 * i)
    return out


def _config(arch: str, shape: Shape, vocab: int, form: str, linear_class: str) -> dict:
    f = FACTS[arch]
    bos, eos = BOS_EOS[f.tokenizer]
    cfg: dict = {
        "architectures": [f.hf_arch],
        "model_type": f.model_type,
        "hidden_size": shape.hidden,
        "intermediate_size": shape.ffn,
        "num_hidden_layers": shape.layers,
        "num_attention_heads": shape.heads,
        "num_key_value_heads": shape.kv_heads,
        "hidden_act": f.act,
        "max_position_embeddings": shape.context,
        "rms_norm_eps": shape.rms_eps,
        "rope_theta": shape.rope_theta,
        "vocab_size": vocab,
        "bos_token_id": bos,
        "eos_token_id": eos,
        "tie_word_embeddings": f.tied,
        "attention_bias": False,
        "torch_dtype": "bfloat16",
    }
    if form == "packed":
        cfg["quantization_config"] = {"quant_method": "bitnet", "linear_class": linear_class, "quantization_mode": "offline"}
    elif arch == "llama":
        # a Llama is only ternary if it says so: master weights quantized at run time (QAT form)
        cfg["quantization_config"] = {"quant_method": "bitnet", "linear_class": "autobitlinear", "quantization_mode": "online"}
    return cfg


def _specs(arch: str, shape: Shape, vocab: int, form: str, linear_class: str, seed: int) -> list[TensorSpec]:
    f = FACTS[arch]
    rng = np.random.default_rng(seed)
    h, d = shape.hidden, shape.head_dim
    q_rows, kv_rows = shape.heads * d, shape.kv_heads * d

    def normal(rows: int, cols: int, std: float) -> Callable[[], np.ndarray]:
        return lambda: _bf16(rng.standard_normal((rows, cols), dtype=np.float32) * np.float32(std))

    def norm(size: int) -> Callable[[], np.ndarray]:
        return lambda: _bf16(rng.uniform(0.8, 1.2, size).astype(np.float32))

    specs = [TensorSpec("model.embed_tokens.weight", "BF16", (vocab, h), normal(vocab, h, 1.0))]
    for il in range(shape.layers):
        p = f"model.layers.{il}."
        specs.append(TensorSpec(p + "input_layernorm.weight", "BF16", (h,), norm(h)))
        specs.append(TensorSpec(p + "post_attention_layernorm.weight", "BF16", (h,), norm(h)))
        if f.sub_norms:
            specs.append(TensorSpec(f"{p}{f.sub_norms[0]}.weight", "BF16", (q_rows,), norm(q_rows)))
            specs.append(TensorSpec(f"{p}{f.sub_norms[1]}.weight", "BF16", (shape.ffn,), norm(shape.ffn)))
        for name, rows, cols in [("self_attn.q_proj", q_rows, h), ("self_attn.k_proj", kv_rows, h),
                                 ("self_attn.v_proj", kv_rows, h), ("self_attn.o_proj", h, q_rows),
                                 ("mlp.gate_proj", shape.ffn, h), ("mlp.up_proj", shape.ffn, h),
                                 ("mlp.down_proj", h, shape.ffn)]:
            if form == "master":
                specs.append(TensorSpec(f"{p}{name}.weight", "BF16", (rows, cols), normal(rows, cols, PROJ_STD * cols ** -0.5)))
            else:
                specs.extend(_packed(rng, f"{p}{name}", rows, cols, linear_class))
    specs.append(TensorSpec("model.norm.weight", "BF16", (h,), norm(h)))
    if not f.tied:
        specs.append(TensorSpec("lm_head.weight", "BF16", (vocab, h), normal(vocab, h, 1.0)))
    return specs


def _packed(rng: np.random.Generator, prefix: str, rows: int, cols: int, linear_class: str) -> list[TensorSpec]:
    # one draw per projection for both tensors, so weight and scale stay consistent whatever the file order
    state: dict[str, np.ndarray] = {}

    def weight() -> np.ndarray:
        t = rng.integers(-1, 2, size=(rows, cols), dtype=np.int8)
        s = np.float32(PROJ_STD * 0.8 * cols ** -0.5)  # absmean of the matching master weight
        # weight_scale as transformers reads it: AutoBitLinear multiplies by it, BitLinear divides by it
        state["ws"] = _bf16(np.array([s if linear_class == "autobitlinear" else 1.0 / s], dtype=np.float32))
        return pack_ternary(t)

    return [TensorSpec(f"{prefix}.weight", "U8", (rows // 4, cols), weight),
            TensorSpec(f"{prefix}.weight_scale", "BF16", (1,), lambda: state.pop("ws"))]


def estimate_bytes(shape: Shape, vocab: int, tied: bool) -> int:
    per_layer = 2 * shape.hidden * (shape.heads + 2 * shape.kv_heads) * shape.head_dim + 3 * shape.hidden * shape.ffn
    return 2 * (shape.layers * per_layer + vocab * shape.hidden * (1 if tied else 2))


def generate_model(arch: str, size: str | Shape, out: Path, vocab_dir: Path, form: str = "master", seed: int = 0,
                   linear_class: str | None = None, force: bool = False) -> Path:
    """Write config.json, tokenizer files and model.safetensors into out (a new folder).

    size is a preset name of synthetic.SHAPES, or a Shape (tests use odd shapes).
    """
    check_choice("--arch", arch, HF_ARCHS)
    if isinstance(size, str):
        check_choice("--size", size, SHAPES)
    check_choice("--form", form, FORMS)
    f = FACTS[arch]
    linear_class = linear_class or f.default_linear_class
    check_choice("--linear-class", linear_class, LINEAR_CLASSES)
    shape = SHAPES[size] if isinstance(size, str) else size
    vocab_gguf = Path(vocab_dir) / ("ggml-vocab-llama-bpe.gguf" if f.tokenizer == "llama3" else "ggml-vocab-llama-spm.gguf")
    if not vocab_gguf.is_file():
        raise BitnetError(f"{vocab_gguf}: vocab GGUF not found (run setup_env.py, or pass --vocab-dir)")
    vocab = 128256 if f.tokenizer == "llama3" else 32000
    need = estimate_bytes(shape, vocab, f.tied)
    if need > MAX_HF_BYTES and not force:
        raise BitnetError(f"--size {size} would write a {need / 2**30:.1f} GiB bf16 checkpoint; "
                          "write the GGUF directly with --gguf OUTTYPE (or pass --force)")
    out = Path(out)
    if out.exists() and any(out.iterdir()):
        raise BitnetError(f"{out}: folder exists and is not empty")
    out.mkdir(parents=True, exist_ok=True)
    try:
        n_tok = cached_tokenizer(write_llama3_tokenizer if f.tokenizer == "llama3" else write_spm_tokenizer, vocab_gguf, out)
        if n_tok != vocab:
            raise BitnetError(f"{vocab_gguf}: {n_tok} tokens, expected {vocab}")
        (out / "config.json").write_text(json.dumps(_config(arch, shape, vocab, form, linear_class), indent=2) + "\n")
        (out / "generation_config.json").write_text(json.dumps(
            {"bos_token_id": BOS_EOS[f.tokenizer][0], "eos_token_id": BOS_EOS[f.tokenizer][1], "do_sample": False}, indent=2) + "\n")
        with atomic_output(out / "model.safetensors") as tmp:
            write_safetensors(tmp, _specs(arch, shape, vocab, form, linear_class, seed))
    except BaseException:
        shutil.rmtree(out, ignore_errors=True)
        raise
    return out
