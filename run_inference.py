#!/usr/bin/env python3
"""Run a BitNet GGUF with our llama.cpp build (bitnet.cpp's run_inference.py flags). See --help."""

import sys

from bitnet_gguf.runtime.inference import main

if __name__ == "__main__":
    sys.exit(main())
