"""`python -m bitnet_gguf.serving`: the same as run_server.py (for installs without the clone's scripts)."""

import sys

from .main import main

sys.exit(main())
