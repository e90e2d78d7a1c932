"""setup_env.py -hr: download a Hugging Face checkpoint into MODEL_DIR/<name> (bitnet.cpp's repo list and names)."""

from __future__ import annotations

import os
from pathlib import Path
from typing import IO

from ..convert.checkpoint import has_checkpoint
from ..errors import BitnetError
from .steps import say

# bitnet.cpp's SUPPORTED_HF_MODELS (its setup_env.py) plus the 2B-4T repos its README names:
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


def _offline() -> bool:
    return os.environ.get("HF_HUB_OFFLINE", "").strip().lower() in ("1", "true", "yes", "on")


def check_repo(repo: str, model_root: Path) -> None:
    """What download() would refuse, said before setup_env.py's build instead of after it."""
    if repo in UNSUPPORTED_REPOS:
        raise BitnetError(f"-hr {repo}: embedding models are not supported yet")
    if repo.count("/") != 1 or not all(repo.split("/")):
        raise BitnetError(f"-hr {repo}: expected a Hugging Face repo id OWNER/NAME, e.g. microsoft/BitNet-b1.58-2B-4T")
    target = model_root / model_name(repo)
    if target.exists() and not target.is_dir():
        raise BitnetError(f"-hr {repo}: {target} is a file, expected a folder to download into")
    if _offline() and not _holds_model(target):
        raise BitnetError(f"-hr {repo}: HF_HUB_OFFLINE is set and {target} holds no checkpoint")


def _holds_model(target: Path) -> bool:
    return has_checkpoint(target) or any(target.glob("ggml-model-*.gguf"))


def download(repo: str, model_root: Path, log: IO[str] | None = None) -> Path:
    """snapshot_download(repo) into model_root/<name>, unless that folder already holds the checkpoint."""
    check_repo(repo, model_root)
    target = model_root / model_name(repo)
    if _holds_model(target):
        say(log, f"using the existing folder {target} for {repo} (no download)")
        return target
    try:
        from huggingface_hub import snapshot_download
    except ImportError:
        raise BitnetError("-hr needs huggingface_hub (pip install huggingface_hub)") from None
    say(log, f"downloading {repo} into {target}")
    try:
        snapshot_download(repo_id=repo, local_dir=str(target))
    except Exception as e:  # network, auth, missing repo: all become one line
        raise BitnetError(f"-hr {repo}: download failed ({type(e).__name__}: {str(e).splitlines()[0] if str(e) else ''})") from None
    return target


