"""Helpers for the converter tests: where the build and vocab are, and the two forwards to compare.

- ours: llama-cpp-python on the build's libllama (LLAMA_CPP_LIB_PATH), all logits of a prompt + greedy decoding;
- the oracle: transformers' BitNetForCausalLM / LlamaForCausalLM with its BitNet quantization on
  (AutoBitLinear online for master weights, the checkpoint's own BitLinear/AutoBitLinear for packed ones).
"""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path

import numpy as np
import pytest

from bitnet_gguf import paths

# transformers decorates BitNet's unpack/quant helpers with torch.compile; on CPU that means minutes of
# inductor compilation for a few tiny forwards, with identical numbers
os.environ.setdefault("TORCH_COMPILE_DISABLE", "1")


def _need(what: str) -> None:
    """Skip when run standalone without the build; under CI (after setup_env.py) a missing piece is a failure."""
    if os.environ.get("CI"):
        pytest.fail(f"{what} is missing (CI runs after setup_env.py, so it should be there)")
    pytest.skip(f"{what} is missing: run `python setup_env.py` first")


def require_libllama() -> Path:
    lib = paths.build_dir() / "bin"
    if not (lib / "libllama.so").exists() and not (lib / "libllama.dylib").exists():
        _need(f"the llama.cpp build ({lib}/libllama.so)")
    return lib


def vocab_dir() -> Path:
    d = paths.vocab_dir()
    if not (d / "ggml-vocab-llama-bpe.gguf").is_file():
        _need(f"llama.cpp's vocab GGUFs ({d})")
    return d


class Ours:
    """A GGUF loaded through llama-cpp-python on our build."""

    def __init__(self, gguf: Path, n_ctx: int = 256) -> None:
        os.environ["LLAMA_CPP_LIB_PATH"] = str(require_libllama())
        from llama_cpp import Llama

        self.llm = Llama(model_path=str(gguf), logits_all=True, n_ctx=n_ctx, n_threads=1, n_threads_batch=1, n_batch=n_ctx,
                         verbose=False, seed=0, type_k=0, type_v=0)

    def tokenize(self, text: str) -> list[int]:
        return self.llm.tokenize(text.encode(), add_bos=True, special=True)

    def logits(self, ids: list[int]) -> np.ndarray:
        self.llm.reset()
        self.llm.eval(ids)
        return np.array(self.llm.scores[: len(ids)], dtype=np.float32)

    def greedy(self, ids: list[int], n: int) -> list[int]:
        self.llm.reset()
        self.llm.eval(ids)
        out: list[int] = []
        for _ in range(n):
            tok = int(np.argmax(self.llm.scores[self.llm.n_tokens - 1]))
            out.append(tok)
            self.llm.eval([tok])
        return out

    def close(self) -> None:
        self.llm.close()


# what transformers runs for master weights without a quantization_config (2B-4T-bf16, 1bitLLM): the training-time
# quantization, ternary absmean weights + int8 activations computed on the fly
ONLINE = {"quant_method": "bitnet", "linear_class": "autobitlinear", "quantization_mode": "online"}


def transformers_view(src: Path, dst: Path) -> Path:
    """A folder transformers loads as the model our converter sees in src.

    - no quantization_config: add ONLINE (transformers refuses a BitNet quantization_config passed to
      from_pretrained for a checkpoint that does not declare it);
    - 1bitLLM-style BitnetForCausalLM: transformers has no such class (1bitLLM ships remote code); its graph is
      BitNet's with a SiLU FFN and other names for the sub-norms, so BitNetForCausalLM with hidden_act silu and
      the two sub-norm tensors renamed is the same model.
    """
    shutil.rmtree(dst, ignore_errors=True)
    dst.mkdir(parents=True)
    cfg = json.loads((src / "config.json").read_text())
    cfg.setdefault("quantization_config", ONLINE)
    if cfg["architectures"][0] == "BitnetForCausalLM":
        from safetensors.torch import load_file, save_file

        cfg.update(architectures=["BitNetForCausalLM"], model_type="bitnet", hidden_act="silu")
        tensors = load_file(src / "model.safetensors")
        renamed = {k.replace("self_attn.inner_attn_ln", "self_attn.attn_sub_norm").replace("mlp.ffn_layernorm", "mlp.ffn_sub_norm"): v
                   for k, v in tensors.items()}
        save_file(renamed, dst / "model.safetensors", metadata={"format": "pt"})
    else:
        for f in src.glob("*.safetensors*"):
            (dst / f.name).symlink_to(f.resolve())
    (dst / "config.json").write_text(json.dumps(cfg))
    for f in src.glob("tokenizer*"):
        shutil.copy(f, dst / f.name)
    return dst


class Oracle:
    """transformers in float32 with BitNet weight (ternary) and activation (int8 per token) quantization."""

    def __init__(self, model_dir: Path, tmp: Path) -> None:
        import torch
        from transformers import AutoModelForCausalLM

        torch.manual_seed(0)
        torch.set_num_threads(1)  # tiny matrices: threads only add overhead, and the CI machine has 2 shared cores
        view = transformers_view(model_dir, tmp / "transformers-view")
        self.model = AutoModelForCausalLM.from_pretrained(view, dtype=torch.float32).eval()
        # transformers leaves AutoBitLinear's unpacked weights in the checkpoint's bf16 (exact for -1/0/1), and
        # F.linear then refuses float32 activations; Module.float() is blocked on quantized models, so cast here
        with torch.no_grad():
            for mod in self.model.modules():
                for _name, p in list(mod.named_parameters(recurse=False)) + list(mod.named_buffers(recurse=False)):
                    if p is not None and p.is_floating_point() and p.dtype != torch.float32:
                        p.data = p.data.float()
        self.torch = torch

    def logits(self, ids: list[int]) -> np.ndarray:
        with self.torch.no_grad():
            out = self.model(self.torch.tensor([ids]))
        return out.logits[0].float().numpy()

    def greedy(self, ids: list[int], n: int) -> list[int]:
        with self.torch.no_grad():
            out = self.model.generate(self.torch.tensor([ids]), max_new_tokens=n, min_new_tokens=n, do_sample=False,
                                      pad_token_id=0, eos_token_id=None)
        return [int(t) for t in out[0, len(ids):]]
