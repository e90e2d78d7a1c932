"""Where things live: the checkout, the download cache, the unpacked source and the build."""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parent.parent
PATCHES_DIR = REPO_ROOT / "patches"
KERNELS_DIR = REPO_ROOT / "kernels"
THIRD_PARTY_DIR = REPO_ROOT / "third_party"
SOURCE_DIR = THIRD_PARTY_DIR / "llama.cpp"
DEFAULT_BUILD_DIR = REPO_ROOT / "build"


def cache_dir() -> Path:
    """Download cache: $BITNET_GGUF_CACHE, else ~/.cache/bitnet-gguf."""
    env = os.environ.get("BITNET_GGUF_CACHE")
    return Path(env) if env else Path.home() / ".cache" / "bitnet-gguf"


@dataclass(frozen=True)
class Pin:
    package: str
    version: str
    filename: str
    sha256: str
    subdir: str
    llama_cpp_commit: str
    llama_cpp_build: int


def load_pin(path: Path = THIRD_PARTY_DIR / "pin.json") -> Pin:
    return Pin(**json.loads(path.read_text()))


def build_bin(build_dir: Path = DEFAULT_BUILD_DIR) -> Path:
    return build_dir / "bin"
