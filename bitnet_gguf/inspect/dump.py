"""`bitnet-gguf dump FILE [gguf-dump options]`: gguf-py's own gguf-dump, on a gguf-py that knows I2_S/TL1/TL2.

The output is gguf-dump's, byte for byte, with its options (--json, --json-array, --markdown, --no-tensors,
--data-offset, --data-alignment, --verbose): gguf_compat teaches the installed gguf-py our types, then
gguf.scripts.gguf_dump runs as it is. Files gguf-py cannot read give one line naming the file (BitnetError).
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

from .. import gguf_compat
from ..errors import BitnetError
from ..formats.gguf_read import GGUF_MAGIC

PROG = "bitnet-gguf dump"


def main(argv: list[str]) -> int:
    gguf_compat.install()
    import gguf
    from gguf.scripts import gguf_dump

    # gguf-dump's options are all flags, so the one word without a dash is the file
    files = [a for a in argv if not a.startswith("-")]
    if len(files) == 1 and not {"-h", "--help"} & set(argv):
        path = Path(files[0])
        _check_file(path)
        try:
            reader = gguf.GGUFReader(path, "r")  # what gguf_dump.main does first: fail here in one line
        except (ValueError, IndexError, KeyError, OverflowError, UnicodeDecodeError, OSError) as e:
            raise BitnetError(f"{path}: cannot read this GGUF file, it is truncated or corrupt ({_one_line(e)})") from None
        note = gguf_compat.bitnet_cpp_tl_note(reader)
        if note:
            print(f"note: {path}: {note}", file=sys.stderr)
        del reader
    saved = sys.argv
    sys.argv = [PROG, *argv]  # gguf_dump.main parses sys.argv
    try:
        gguf_dump.main()
    except SystemExit as e:  # argparse: --help (0), bad options (2)
        return e.code if isinstance(e.code, int) else 0 if e.code is None else 1
    except BrokenPipeError:  # `dump FILE | head`: stop quietly, as the shell expects
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
    finally:
        sys.argv = saved
    return 0


def _check_file(path: Path) -> None:
    try:
        with open(path, "rb") as f:
            magic = f.read(len(GGUF_MAGIC))
    except OSError as e:
        raise BitnetError(f"{path}: {e.strerror or e}") from None
    if magic != GGUF_MAGIC:
        raise BitnetError(f"{path}: not a GGUF file (it does not start with {GGUF_MAGIC.decode()!r})")


def _one_line(e: BaseException) -> str:
    return " ".join(str(e).split()) or type(e).__name__
