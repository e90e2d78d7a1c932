"""Whether a GGUF file loads and runs correctly in an unpatched ("stock") llama.cpp of our pin: Ollama, LM Studio,
llama-cpp-python's own wheels. The converter's tq1_0/tq2_0 refusals and `info` use the same rules."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from .architectures import BY_GGUF, NO_OUTPUT_TENSOR_REASON, STOCK_NO_OUTPUT_TENSOR
from .constants import GGML_TYPE_I2_S, GGML_TYPE_TL1, GGML_TYPE_TL2, UPSTREAM_GGML_TYPES

# our types, by name for the reason (ids 36/38/43 mean nothing, or something else, upstream)
_OUR_TYPES = {GGML_TYPE_I2_S: "I2_S", GGML_TYPE_TL1: "TL1", GGML_TYPE_TL2: "TL2"}
# tokenizer.ggml.pre values only our build accepts (patch 0013: bitnet.cpp's name for Falcon-E's pre-tokenizer)
_OUR_PRE_TOKENIZERS = ("falcon_e",)


def stock_llama_cpp_compatible(metadata: Mapping[str, Any], tensor_types: Mapping[str, int]) -> tuple[bool, str]:
    """(True, why) when an unpatched llama.cpp loads this file and computes the model right, else (False, why).

    metadata: the GGUF key/values (general.architecture, tokenizer.ggml.pre are read); tensor_types: tensor name ->
    ggml type id (an int or gguf.GGMLQuantizationType). The reason is one sentence for a user, without a full stop.
    Architectures that upstream does not know at all (say a model of some other project) are reported as such;
    checks are: our weight types, the architecture table's `not_in_stock`, a `bitnet` file with its own lm_head,
    and our pre-tokenizer names.
    """
    arch = str(metadata.get("general.architecture", ""))
    ours = sorted({_OUR_TYPES[int(t)] for t in tensor_types.values() if int(t) in _OUR_TYPES})
    if ours:
        return False, f"its {'/'.join(ours)} tensors are types of our patched build only (use tq1_0/tq2_0 for stock llama.cpp)"
    unknown = sorted({int(t) for t in tensor_types.values() if int(t) not in UPSTREAM_GGML_TYPES})
    if unknown:
        return False, f"ggml type {', '.join(map(str, unknown))} is not one of upstream llama.cpp's types"
    facts = BY_GGUF.get(arch)
    if facts is not None and facts.not_in_stock:
        return False, facts.not_in_stock
    if arch in STOCK_NO_OUTPUT_TENSOR and "output.weight" in tensor_types:
        return False, NO_OUTPUT_TENSOR_REASON
    pre = metadata.get("tokenizer.ggml.pre")
    if pre in _OUR_PRE_TOKENIZERS:
        return False, f"tokenizer.ggml.pre {pre!r} is bitnet.cpp's name that only our build accepts (upstream: 'falcon-h1')"
    if facts is None:
        # not one of ours: upstream may well know it, but this project cannot vouch for its graph
        return True, f"upstream tensor types only; architecture {arch!r} is not one of this project's, so not checked"
    return True, f"upstream tensor types and keys only, and stock llama.cpp's `{arch}` graph computes this model"
