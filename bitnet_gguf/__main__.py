"""`python -m bitnet_gguf ...` is the `bitnet-gguf` command."""

import sys

from .cli import main

sys.exit(main())
