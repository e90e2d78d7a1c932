#!/usr/bin/env python3
"""Serve a BitNet GGUF over an OpenAI-compatible API with our llama-server (continuous batching). See --help."""

import sys

from bitnet_gguf.runtime.server import main

if __name__ == "__main__":
    sys.exit(main())
