"""Which Hugging Face architectures we convert, and how their tensor names map to GGUF names.

FORMATS.md §4: `BitNetForCausalLM` (2B-4T) is `bitnet-b1.58` (relu² FFN) — not upstream's `bitnet`, whose SiLU
FFN would run it wrong; `BitnetForCausalLM` (1bitLLM) is upstream `bitnet`; ternary Llamas stay `llama`.
"""

from __future__ import annotations

import re
from dataclasses import dataclass


@dataclass(frozen=True)
class ArchSpec:
    hf_arch: str
    gguf_arch: str
    # llama.cpp's `llama` graph uses normal (GPT-J style) RoPE and expects Q/K rows interleaved the way its
    # converter permutes them; the bitnet graphs use NEOX RoPE on the Hugging Face layout, so no permutation
    permute_qk: bool
    # attn_sub_norm / ffn_sub_norm before o_proj / down_proj (BitNet graphs)
    sub_norms: bool
    # the architecture itself says "ternary": master weights are ternarized without any quantization_config
    always_ternary: bool


ARCHS: dict[str, ArchSpec] = {
    "BitNetForCausalLM": ArchSpec("BitNetForCausalLM", "bitnet-b1.58", permute_qk=False, sub_norms=True, always_ternary=True),
    "BitnetForCausalLM": ArchSpec("BitnetForCausalLM", "bitnet", permute_qk=False, sub_norms=True, always_ternary=True),
    "LlamaForCausalLM": ArchSpec("LlamaForCausalLM", "llama", permute_qk=True, sub_norms=False, always_ternary=False),
}

# the seven BitLinear projections of a layer (HF suffix -> GGUF suffix)
PROJECTIONS: dict[str, str] = {
    "self_attn.q_proj": "attn_q",
    "self_attn.k_proj": "attn_k",
    "self_attn.v_proj": "attn_v",
    "self_attn.o_proj": "attn_output",
    "mlp.gate_proj": "ffn_gate",
    "mlp.up_proj": "ffn_up",
    "mlp.down_proj": "ffn_down",
}

# per-layer float tensors (HF suffix -> GGUF suffix); 1bitLLM names its sub-norms differently from 2B-4T
LAYER_NORMS: dict[str, str] = {
    "input_layernorm": "attn_norm",
    "post_attention_layernorm": "ffn_norm",
}
SUB_NORMS: dict[str, tuple[str, ...]] = {
    "attn_sub_norm": ("self_attn.attn_sub_norm", "self_attn.inner_attn_ln"),
    "ffn_sub_norm": ("mlp.ffn_sub_norm", "mlp.ffn_layernorm"),
}

# tensors a checkpoint may carry that the GGUF does not need (recomputed by llama.cpp)
IGNORED = re.compile(r"^model\.layers\.\d+\.self_attn\.rotary_emb\.inv_freq$|^model\.rotary_emb\.inv_freq$")

_LAYER = re.compile(r"^model\.layers\.(\d+)\.(.+)$")


def supported_archs() -> str:
    return ", ".join(sorted(ARCHS))


def layer_of(hf_name: str) -> tuple[int, str] | None:
    m = _LAYER.match(hf_name)
    return (int(m.group(1)), m.group(2)) if m else None
