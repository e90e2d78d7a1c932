"""The model architectures we read and write, and the tensors of one layer: the one table everything else uses.

docs/formats.md §4: `BitNetForCausalLM` (2B-4T) is `bitnet-b1.58` (relu² FFN), not upstream's `bitnet`, whose SiLU
FFN would run it wrong; `BitnetForCausalLM` (1bitLLM) is upstream `bitnet`; ternary Llamas stay `llama`;
`bitnet-25` (bitnet.cpp's name for the same relu² graph) exists only as GGUF.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Protocol


@dataclass(frozen=True)
class Architecture:
    gguf_arch: str  # general.architecture
    hf_arch: str | None  # config.json "architectures"; None: a GGUF-only name (no checkpoint converts to it)
    model_type: str  # config.json "model_type" that transformers loads such a checkpoint with
    activation: str  # FFN activation the GGUF graph computes (config.json hidden_act must agree)
    # HF names of the attention and FFN sub-norms (before o_proj / down_proj), this family's own spelling first;
    # None: the graph has no sub-norms
    sub_norms: tuple[tuple[str, ...], tuple[str, ...]] | None
    # llama.cpp's `llama` graph uses normal (GPT-J style) RoPE and expects Q/K rows interleaved the way its
    # converter permutes them; the bitnet graphs use NEOX RoPE on the Hugging Face layout, so no permutation
    permute_qk: bool
    # the architecture itself says "ternary": master weights are ternarized without any quantization_config
    always_ternary: bool
    # None: an unpatched llama.cpp knows this architecture and computes it right (given upstream tensor types);
    # else why it does not, in words for a one-line refusal (convert --outtype tq1_0|tq2_0, `info`)
    not_in_stock: str | None = None


# 2B-4T and 1bitLLM spell their sub-norms differently; the converter accepts either spelling for both
_SUB_NORMS_2B = (("self_attn.attn_sub_norm", "self_attn.inner_attn_ln"), ("mlp.ffn_sub_norm", "mlp.ffn_layernorm"))
_SUB_NORMS_1BIT = (("self_attn.inner_attn_ln", "self_attn.attn_sub_norm"), ("mlp.ffn_layernorm", "mlp.ffn_sub_norm"))

# upstream has neither relu² name (patch 0008 adds both); its `bitnet` class, the only graph with sub-norms, uses SiLU
_NO_RELU2_UPSTREAM = ("stock llama.cpp has no {} architecture, and its `bitnet` graph computes the FFN with SiLU "
                      "where this model needs squared ReLU (BitNet-b1.58-2B-4T would run wrong)")

ARCHITECTURES: tuple[Architecture, ...] = (
    Architecture("bitnet-b1.58", "BitNetForCausalLM", "bitnet", "relu2", _SUB_NORMS_2B, permute_qk=False, always_ternary=True,
                 not_in_stock=_NO_RELU2_UPSTREAM.format("`bitnet-b1.58`")),
    Architecture("bitnet-25", None, "bitnet", "relu2", _SUB_NORMS_2B, permute_qk=False, always_ternary=True,
                 not_in_stock=_NO_RELU2_UPSTREAM.format("`bitnet-25`")),
    Architecture("bitnet", "BitnetForCausalLM", "llama", "silu", _SUB_NORMS_1BIT, permute_qk=False, always_ternary=True),
    Architecture("llama", "LlamaForCausalLM", "llama", "silu", None, permute_qk=True, always_ternary=False),
)
BY_GGUF: dict[str, Architecture] = {a.gguf_arch: a for a in ARCHITECTURES}
BY_HF: dict[str, Architecture] = {a.hf_arch: a for a in ARCHITECTURES if a.hf_arch}
# the BitNet graphs (attention and FFN sub-norms), as opposed to plain Llamas with ternary weights
BITNET_ARCHS: tuple[str, ...] = tuple(a.gguf_arch for a in ARCHITECTURES if a.sub_norms)
# upstream's `bitnet` loader has no output tensor (patch 0011 adds one) and multiplies by token_embd instead:
# a file of this architecture with a separate lm_head does not load in stock llama.cpp
STOCK_NO_OUTPUT_TENSOR = ("bitnet",)
NO_OUTPUT_TENSOR_REASON = ("stock llama.cpp's `bitnet` graph has no separate lm_head (it reuses token_embd), "
                           "so a model with its own output.weight does not load there")
GGUF_SUB_NORMS = ("attn_sub_norm", "ffn_sub_norm")


class Dims(Protocol):
    """What fixes the projection shapes (a checkpoint's config, a synthetic preset)."""

    @property
    def hidden(self) -> int: ...
    @property
    def ffn(self) -> int: ...
    @property
    def heads(self) -> int: ...
    @property
    def kv_heads(self) -> int: ...
    @property
    def head_dim(self) -> int: ...


@dataclass(frozen=True)
class Projection:
    hf: str  # suffix in model.layers.N.<hf>.weight
    gguf: str  # suffix in blk.N.<gguf>.weight
    rows: int
    cols: int  # K: the length of a dot product


def projections(d: Dims) -> list[Projection]:
    """The seven BitLinear projections of one layer with their (rows, cols) in numpy order."""
    q_rows, kv_rows = d.heads * d.head_dim, d.kv_heads * d.head_dim
    return [
        Projection("self_attn.q_proj", "attn_q", q_rows, d.hidden),
        Projection("self_attn.k_proj", "attn_k", kv_rows, d.hidden),
        Projection("self_attn.v_proj", "attn_v", kv_rows, d.hidden),
        Projection("self_attn.o_proj", "attn_output", d.hidden, q_rows),
        Projection("mlp.gate_proj", "ffn_gate", d.ffn, d.hidden),
        Projection("mlp.up_proj", "ffn_up", d.ffn, d.hidden),
        Projection("mlp.down_proj", "ffn_down", d.hidden, d.ffn),
    ]


def sub_norm_sizes(d: Dims) -> tuple[int, int]:
    """Lengths of the attention and FFN sub-norms (the inputs of o_proj and down_proj)."""
    return d.heads * d.head_dim, d.ffn


# per-layer norms every architecture has (HF suffix -> GGUF suffix), each of length hidden
LAYER_NORMS: dict[str, str] = {
    "input_layernorm": "attn_norm",
    "post_attention_layernorm": "ffn_norm",
}

# tensors a checkpoint may carry that the GGUF does not need (recomputed by llama.cpp)
IGNORED = re.compile(r"^model\.layers\.\d+\.self_attn\.rotary_emb\.inv_freq$|^model\.rotary_emb\.inv_freq$")


def supported_hf_archs() -> str:
    return ", ".join(sorted(BY_HF))
