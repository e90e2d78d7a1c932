"""Models we make: random-weight checkpoints of any preset shape (Hugging Face folders or GGUF) with real tokenizers."""
