"""What every way of running a model needs to find: the build's programs and library, and the model file."""

from __future__ import annotations

import os
import sys
from pathlib import Path

from ..errors import BitnetError
from ..formats.constants import TERNARY_TYPES
from ..paths import CHECKOUT, build_dir

# The project's default model (bitnet.cpp defaults to a 3B model; ours is small enough to make locally).
DEFAULT_MODEL = Path("models/tiny-shakespeare/ggml-model-i2_s.gguf")

BUILD_HINT = "run python setup_env.py to build llama.cpp with I2_S (or point --build-dir / $BITNET_GGUF_BUILD_DIR at a build)"


def _bin_dirs(bdir: Path) -> list[Path]:
    # Multi-config generators (Visual Studio) put binaries under bin/Release; bitnet.cpp looks there first on Windows.
    return [bdir / "bin" / "Release", bdir / "bin"] if sys.platform == "win32" else [bdir / "bin"]


def _built_file(filename: str, bdir: Path | None) -> Path:
    bdir = build_dir() if bdir is None else bdir
    for d in _bin_dirs(bdir):
        if (d / filename).is_file():
            return d / filename
    raise BitnetError(f"{filename} not found in {bdir / 'bin'}: {BUILD_HINT}")


def find_tool(name: str, bdir: Path | None = None) -> Path:
    """Path of a llama.cpp program (llama-completion, llama-server, ...) of our build."""
    return _built_file(name + (".exe" if sys.platform == "win32" else ""), bdir)


def library_name(stem: str = "llama") -> str:
    if sys.platform == "win32":
        return f"{stem}.dll"
    return f"lib{stem}.dylib" if sys.platform == "darwin" else f"lib{stem}.so"


def find_library(stem: str, bdir: Path | None = None) -> Path:
    """Path of a shared library of our build (llama, ggml-base, ggml-cpu, ...)."""
    return _built_file(library_name(stem), bdir)


def library_dir(bdir: Path | None = None) -> Path:
    """The folder holding our libllama (what llama-cpp-python's LLAMA_CPP_LIB_PATH must point at)."""
    return find_library("llama", bdir).parent


def model_hint(path: Path) -> str:
    """How to get a GGUF at `path` (setup_env.py converts MODEL_DIR into MODEL_DIR/ggml-model-<quant>.gguf)."""
    quant = path.stem.removeprefix("ggml-model-")
    if path.stem.startswith("ggml-model-") and quant in TERNARY_TYPES:
        return f"run python setup_env.py -md {path.parent} -q {quant} to make it, or pass -m path/to/model.gguf"
    return "convert a Hugging Face checkpoint with python setup_env.py -md MODEL_DIR, or pass -m path/to/model.gguf"


def resolve_model(model: str | os.PathLike[str]) -> Path:
    """The model file; relative paths are tried against the working directory, then the checkout (like bitnet.cpp)."""
    path = Path(model).expanduser()
    candidates = [path] if path.is_absolute() or CHECKOUT is None else [path, CHECKOUT / path]
    for c in candidates:
        if c.is_file():
            return c.resolve()
    if path.is_dir():
        raise BitnetError(f"{path} is a folder, not a GGUF file: {model_hint(path / 'ggml-model-i2_s.gguf')}")
    raise BitnetError(f"model not found: {path}; {model_hint(path)}")
