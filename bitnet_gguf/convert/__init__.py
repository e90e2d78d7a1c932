"""Hugging Face BitNet checkpoints -> GGUF: config, tensors (ternarized and packed as they stream), tokenizer."""

from .converter import ConvertResult, convert, default_outfile

__all__ = ["ConvertResult", "convert", "default_outfile"]
