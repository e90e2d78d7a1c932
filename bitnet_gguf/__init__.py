"""bitnet-gguf: BitNet b1.58 (ternary) models on CPUs with a patched llama.cpp."""

__version__ = "0.1.0"
