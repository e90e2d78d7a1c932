"""bitnet-gguf: BitNet b1.58 (ternary) models on CPUs with a patched llama.cpp."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

__version__ = "0.1.0"
__all__ = ["Llama", "__version__"]

if TYPE_CHECKING:
    from .runtime.llm import Llama

from . import gguf_compat  # noqa: E402

# gguf-py (gguf.GGUFReader, gguf-dump) learns I2_S/TL1/TL2; cheap, and never raises (see gguf_compat)
gguf_compat.install()


def __getattr__(name: str) -> Any:
    # Lazy: importing llama_cpp loads libllama for the whole process, so only `bitnet_gguf.Llama` may trigger
    # it (the converter, setup and tests must work without a build or llama-cpp-python).
    if name == "Llama":
        from .runtime.llm import Llama

        return Llama
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
