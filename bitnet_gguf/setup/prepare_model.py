"""setup_env.py's model step: (download with -hr, then) convert -md DIR to DIR/ggml-model-<q>.gguf.

Differences from bitnet.cpp's setup_env.py, on purpose:
- conversion packs I2_S in numpy (no f32 GGUF + single-threaded llama-quantize round trip);
- the GGUF is rebuilt when the checkpoint is newer than it (bitnet.cpp only checks "exists and not empty");
- token_embd (and an untied output) is Q6_K, not F16: generation reads the tied lm_head whole every token and
  Q6_K is ~40 % faster with no measurable perplexity change (docs/bench/README.md). --quant-embd is accepted
  for command compatibility and changes nothing (bitnet.cpp's flag asks for F16, which its own default already is);
  `python -m bitnet_gguf convert --embd-type f16` writes bitnet.cpp's choice;
- tl1/tl2 are refused with a clear message instead of producing build-specific files.
"""

from __future__ import annotations

import os
from argparse import Namespace
from pathlib import Path
from typing import IO

from .errors import BitnetError

CHECKPOINT_GLOBS = ("config.json", "*.safetensors", "model.safetensors.index.json", "tokenizer.json", "tokenizer.model",
                    "tokenizer_config.json")

# bitnet.cpp's SUPPORTED_HF_MODELS (reference/bitnet-cpp.md §3) plus the 2B-4T repos its README names:
# repo -> folder name under the model dir
_FALCON3 = ["1B-Instruct", "3B", "3B-Instruct", "7B", "7B-Instruct", "10B", "10B-Instruct"]
KNOWN_REPOS: dict[str, str] = {
    "1bitLLM/bitnet_b1_58-large": "bitnet_b1_58-large",
    "1bitLLM/bitnet_b1_58-3B": "bitnet_b1_58-3B",
    "HF1BitLLM/Llama3-8B-1.58-100B-tokens": "Llama3-8B-1.58-100B-tokens",
    "microsoft/BitNet-b1.58-2B-4T": "BitNet-b1.58-2B-4T",
    "microsoft/bitnet-b1.58-2B-4T-bf16": "bitnet-b1.58-2B-4T-bf16",
    "microsoft/BitNet-b1.58-2B-4T-gguf": "BitNet-b1.58-2B-4T",
    **{f"tiiuae/Falcon3-{s}-1.58bit": f"Falcon3-{s}-1.58bit" for s in _FALCON3},
    **{f"tiiuae/Falcon-E-{s}-{k}": f"Falcon-E-{s}-{k}" for s in ("1B", "3B") for k in ("Base", "Instruct")},
}
# in bitnet.cpp's list, but not models this converter can produce (Qwen3 / Gemma3 embedding backbones)
UNSUPPORTED_REPOS = {"microsoft/bitnet-embedding-0.6b", "microsoft/bitnet-embedding-270m"}


def model_name(repo: str) -> str:
    return KNOWN_REPOS.get(repo, repo.rstrip("/").rsplit("/", 1)[-1])


def _say(log: IO[str] | None, text: str) -> None:
    if log is not None:
        print(text, file=log, flush=True)


def _has_checkpoint(d: Path) -> bool:
    return (d / "config.json").is_file() and any(d.glob("*.safetensors"))


def _checkpoint_mtime(d: Path) -> float:
    times = [p.stat().st_mtime for g in CHECKPOINT_GLOBS for p in d.glob(g)]
    return max(times) if times else 0.0


def download(repo: str, model_root: Path, log: IO[str] | None = None) -> Path:
    """snapshot_download(repo) into model_root/<name>, unless that folder already holds the checkpoint."""
    if repo in UNSUPPORTED_REPOS:
        raise BitnetError(f"-hr {repo}: embedding models are not supported yet")
    target = model_root / model_name(repo)
    if _has_checkpoint(target) or any(target.glob("ggml-model-*.gguf")):
        _say(log, f"using the existing folder {target} for {repo} (no download)")
        return target
    if os.environ.get("HF_HUB_OFFLINE", "").strip().lower() in ("1", "true", "yes", "on"):
        raise BitnetError(f"-hr {repo}: HF_HUB_OFFLINE is set and {target} holds no checkpoint")
    try:
        from huggingface_hub import snapshot_download
    except ImportError:
        raise BitnetError("-hr needs huggingface_hub (pip install huggingface_hub)") from None
    _say(log, f"downloading {repo} into {target}")
    try:
        snapshot_download(repo_id=repo, local_dir=str(target))
    except Exception as e:  # network, auth, missing repo: all become one line
        raise BitnetError(f"-hr {repo}: download failed ({type(e).__name__}: {str(e).splitlines()[0] if str(e) else ''})") from None
    return target


def check_quant_type(qt: str) -> None:
    if qt != "i2_s":
        raise BitnetError(f"-q {qt} is not supported yet; use i2_s")


def prepare_model(args: Namespace, build_dir: Path | None = None, log: IO[str] | None = None) -> Path:
    """Returns the GGUF path. build_dir is unused: conversion needs no llama.cpp binary."""
    qt = getattr(args, "quant_type", "i2_s") or "i2_s"
    check_quant_type(qt)
    model_dir = Path(args.model_dir) if getattr(args, "model_dir", None) else Path("models")
    if getattr(args, "hf_repo", None):
        model_dir = download(args.hf_repo, model_dir, log)
    out = model_dir / f"ggml-model-{qt}.gguf"
    if not _has_checkpoint(model_dir):
        if out.is_file() and out.stat().st_size > 0:
            _say(log, f"{out} is there and {model_dir} has no checkpoint to convert: using it as is")
            return out
        if not model_dir.is_dir():
            raise BitnetError(f"-md {model_dir}: folder not found")
        raise BitnetError(f"-md {model_dir}: no Hugging Face checkpoint (config.json + *.safetensors) and no {out.name}")
    if out.is_file() and out.stat().st_size > 0 and out.stat().st_mtime >= _checkpoint_mtime(model_dir):
        _say(log, f"{out} is newer than the checkpoint: not converting again")
        return out
    from .convert import convert

    _say(log, f"converting {model_dir} -> {out} (weights i2_s)")
    res = convert(model_dir, "i2_s", out, progress=False)
    _say(log, res.describe())
    return res.path
