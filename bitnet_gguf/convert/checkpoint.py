"""A Hugging Face BitNet checkpoint folder: config.json read into the facts the converter needs.

Two forms of ternary weights exist (docs/formats.md §4):
- master weights (bf16/fp32, e.g. microsoft/bitnet-b1.58-2B-4T-bf16, 1bitLLM): ternarized here with absmean;
- packed (quantization_config.quant_method == "bitnet", e.g. microsoft/BitNet-b1.58-2B-4T, HF1BitLLM):
  uint8 [M/4, K] plus a `weight_scale` whose meaning depends on quantization_config.linear_class
  (see ternary.py for what transformers does with it).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ..errors import BitnetError
from ..formats.architectures import BY_HF, Architecture, supported_hf_archs


@dataclass(frozen=True)
class QuantConfig:
    """transformers' BitNetQuantConfig, the parts that change what the weights mean."""

    linear_class: str  # "bitlinear" (W = t / weight_scale) or "autobitlinear" (W = t * weight_scale when offline)
    mode: str  # "offline": weights stored ternary (packed); "online": master weights, ternarized at run time
    modules_to_not_convert: tuple[str, ...]


@dataclass(frozen=True)
class ModelConfig:
    model_dir: Path
    name: str
    arch: Architecture
    hidden: int
    ffn: int
    layers: int
    heads: int
    kv_heads: int
    head_dim: int
    vocab: int
    context: int
    rope_theta: float
    rope_scaling: dict[str, Any] | None
    rms_eps: float
    tied: bool
    quant: QuantConfig | None
    raw: dict[str, Any]

    @property
    def config_path(self) -> Path:
        return self.model_dir / "config.json"


def has_checkpoint(d: Path) -> bool:
    """Does folder d hold a Hugging Face checkpoint (config.json and safetensors weights)?"""
    return (d / "config.json").is_file() and any(d.glob("*.safetensors"))


def _int(cfg: dict[str, Any], path: Path, *keys: str, default: int | None = None) -> int:
    for k in keys:
        v = cfg.get(k)
        if v is not None:
            if isinstance(v, bool) or not isinstance(v, int) or v <= 0:
                raise BitnetError(f"{path}: {k} must be a positive integer, got {v!r}")
            return v
    if default is not None:
        return default
    raise BitnetError(f"{path}: missing {keys[0]}")


def _quant_config(cfg: dict[str, Any], path: Path) -> QuantConfig | None:
    q = cfg.get("quantization_config")
    if q is None:
        return None
    if not isinstance(q, dict):
        raise BitnetError(f"{path}: quantization_config must be an object")
    method = q.get("quant_method")
    if method != "bitnet":
        raise BitnetError(f"{path}: quantization_config.quant_method {method!r} is not supported (expected 'bitnet')")
    linear_class = q.get("linear_class", "bitlinear")
    mode = q.get("quantization_mode", "offline")
    if linear_class not in ("bitlinear", "autobitlinear"):
        raise BitnetError(f"{path}: quantization_config.linear_class {linear_class!r}, expected bitlinear or autobitlinear")
    if mode not in ("offline", "online"):
        raise BitnetError(f"{path}: quantization_config.quantization_mode {mode!r}, expected offline or online")
    if q.get("use_rms_norm"):
        # an RMSNorm inside every BitLinear: no llama.cpp graph has a place for it
        raise BitnetError(f"{path}: quantization_config.use_rms_norm = true is not supported (no GGUF graph has per-projection norms)")
    if linear_class == "bitlinear" and mode == "online":
        # transformers' BitLinear always reads packed weights; "online" only exists for AutoBitLinear
        mode = "offline"
    return QuantConfig(linear_class, mode, tuple(q.get("modules_to_not_convert") or ()))


def _rope(cfg: dict[str, Any], path: Path) -> tuple[float, dict[str, Any] | None]:
    # transformers >= 5 writes rope_parameters {"rope_type", "rope_theta", ...}; older configs rope_theta/rope_scaling
    params = cfg.get("rope_parameters")
    scaling = cfg.get("rope_scaling")
    theta = cfg.get("rope_theta")
    if isinstance(params, dict):
        theta = params.get("rope_theta", theta)
        if params.get("rope_type", "default") != "default":
            scaling = params
    if theta is None:
        theta = 10000.0
    if not isinstance(theta, (int, float)) or theta <= 0:
        raise BitnetError(f"{path}: rope_theta must be a positive number, got {theta!r}")
    if scaling is not None and not isinstance(scaling, dict):
        # transformers reads an object such as {"type": "linear", "factor": 2.0}; a bare name has no factor
        raise BitnetError(f"{path}: rope_scaling must be an object like {{\"type\": \"linear\", \"factor\": 2.0}}, got {scaling!r}")
    if scaling is not None:
        kind = scaling.get("rope_type", scaling.get("type"))
        if kind in (None, "default"):
            scaling = None
        elif kind not in ("linear", "llama3"):  # also a non-string type
            raise BitnetError(f"{path}: rope scaling type {kind!r} is not supported (expected linear or llama3)")
    return float(theta), scaling


def load_config(model_dir: Path) -> ModelConfig:
    model_dir = Path(model_dir)
    path = model_dir / "config.json"
    if not model_dir.is_dir():
        raise BitnetError(f"{model_dir}: not a folder")
    if not path.is_file():
        raise BitnetError(f"{path}: not found (a Hugging Face checkpoint folder needs config.json)")
    try:
        cfg = json.loads(path.read_text())
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as e:
        raise BitnetError(f"{path}: not valid JSON ({e})") from None
    if not isinstance(cfg, dict):
        raise BitnetError(f"{path}: expected a JSON object")
    archs = cfg.get("architectures")
    if not isinstance(archs, list) or not archs:
        raise BitnetError(f"{path}: missing architectures (expected one of {supported_hf_archs()})")
    hf_arch = archs[0]
    if hf_arch not in BY_HF:
        raise BitnetError(f"{path}: architecture {hf_arch!r} is not supported (expected one of {supported_hf_archs()})")
    arch = BY_HF[hf_arch]

    hidden = _int(cfg, path, "hidden_size")
    heads = _int(cfg, path, "num_attention_heads")
    kv_heads = _int(cfg, path, "num_key_value_heads", default=heads)
    head_dim = _int(cfg, path, "head_dim", default=hidden // heads)
    if heads % kv_heads:
        raise BitnetError(f"{path}: num_attention_heads {heads} is not a multiple of num_key_value_heads {kv_heads}")
    if arch.sub_norms and heads * head_dim != hidden:
        raise BitnetError(f"{path}: heads x head_dim = {heads * head_dim} must equal hidden_size {hidden} for {hf_arch}")
    act = cfg.get("hidden_act", "silu")
    if act != arch.activation:
        # the GGUF graph computes one activation; a config asking for another one would run wrong
        raise BitnetError(f"{path}: hidden_act {act!r} is not supported for {hf_arch} "
                          f"(its GGUF graph {arch.gguf_arch} computes {arch.activation})")
    rms = cfg.get("rms_norm_eps", 1e-5)
    if not isinstance(rms, (int, float)) or rms <= 0:
        raise BitnetError(f"{path}: rms_norm_eps must be a positive number, got {rms!r}")
    theta, scaling = _rope(cfg, path)
    quant = _quant_config(cfg, path)
    if not arch.always_ternary and quant is None:
        # a Llama without BitNet quantization is an ordinary model: ternarizing it would silently ruin it
        raise BitnetError(f"{path}: {hf_arch} without quantization_config.quant_method 'bitnet' is not a ternary model "
                          "(use llama.cpp's convert_hf_to_gguf.py for ordinary Llamas)")
    return ModelConfig(
        model_dir=model_dir,
        name=model_dir.resolve().name,
        arch=arch,
        hidden=hidden,
        ffn=_int(cfg, path, "intermediate_size"),
        layers=_int(cfg, path, "num_hidden_layers"),
        heads=heads,
        kv_heads=kv_heads,
        head_dim=head_dim,
        vocab=_int(cfg, path, "vocab_size"),
        context=_int(cfg, path, "max_position_embeddings", default=4096),
        rope_theta=theta,
        rope_scaling=scaling,
        rms_eps=float(rms),
        tied=bool(cfg.get("tie_word_embeddings", False)),
        quant=quant,
        raw=cfg,
    )
