#!/usr/bin/env python3
"""Serve a BitNet GGUF over an OpenAI-compatible API: a guarded front with a chat page and a live dashboard, in front
of our llama-server (continuous batching), which is restarted if it dies. See --help."""

import sys

from bitnet_gguf.serving.main import main

if __name__ == "__main__":
    sys.exit(main())
