#!/usr/bin/env python3
"""Set up bitnet-gguf (bitnet.cpp's command line): see `python setup_env.py --help`."""

import sys

from bitnet_gguf.setup.setup_env import main

if __name__ == "__main__":
    sys.exit(main())
