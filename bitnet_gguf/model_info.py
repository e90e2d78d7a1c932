"""Just enough of a GGUF header to pick a chat template and to give a clear error before llama.cpp starts.

Reads the key/value section with bitnet_gguf.gguf_read and skips every array (the 128k-entry token list,
the merges), so it is fast on multi-GB files and does not depend on gguf-py knowing ggml type 36.
"""

from __future__ import annotations

from pathlib import Path

from .errors import BitnetError
from .gguf_read import GGUFFile

GGUF_MAGIC = b"GGUF"

Scalar = str | int | float | bool


def _not_gguf(path: Path) -> BitnetError:
    return BitnetError(f"{path} is not a GGUF file (wrong magic); convert the model with python setup_env.py -md MODEL_DIR")


def read_metadata(path: Path) -> dict[str, Scalar]:
    """The scalar and string metadata of a GGUF file (arrays are left out)."""
    check_gguf(path)
    return GGUFFile(path, metadata_only=True).metadata


def check_gguf(path: Path) -> None:
    """Fail with one clear line if `path` is not a GGUF (llama.cpp would print pages of loader log instead)."""
    try:
        with open(path, "rb") as f:
            magic = f.read(4)
    except OSError as e:
        raise BitnetError(f"cannot read {path}: {e.strerror or e}") from None
    if magic != GGUF_MAGIC:
        raise _not_gguf(path)
