"""The error type every command turns into one clear line (and a non-zero exit)."""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Callable, Collection
from typing import NoReturn


class BitnetError(RuntimeError):
    """A problem the user can act on; str() is the whole message."""


def check_choice(flag: str, value: object, choices: Collection[str]) -> None:
    """A flag's value must be one of a fixed set; else one line naming the flag and what it accepts."""
    if value not in choices:
        raise BitnetError(f"{flag} {value!r} unknown, expected one of {', '.join(choices)}")


def one_line(text: object) -> str:
    """A message fit for one line of stderr (library messages may hold newlines)."""
    return " ".join(str(text).split())


def fail(message: object) -> int:
    print(f"error: {one_line(message)}", file=sys.stderr, flush=True)
    return 1


class ArgumentParser(argparse.ArgumentParser):
    """argparse with a bad flag reported in one line, `error: PROG: MESSAGE` (the usage block is in --help),
    shared by every entry point. Exit code 2, as argparse's."""

    def error(self, message: str) -> NoReturn:
        self.exit(2, f"error: {self.prog}: {one_line(message)}\n")


# set to 1 to see the traceback of an unexpected exception instead of its one line
DEBUG_ENV = "BITNET_GGUF_DEBUG"


def run_cli(body: Callable[[], int]) -> int:
    """Run an entry point's body; whatever goes wrong ends as one `error: ...` line and a non-zero exit."""
    try:
        return body()
    except BitnetError as e:
        return fail(e)
    except KeyboardInterrupt:
        print("error: interrupted", file=sys.stderr)
        return 130
    except OSError as e:  # a file the OS refused (disk full, permissions, file size limit): its name and why
        where = f"{e.filename}: " if e.filename else ""
        return fail(f"{where}{e.strerror or e}")
    except Exception as e:  # a bug of ours: still one line for the user; the traceback on request
        if os.environ.get(DEBUG_ENV) == "1":
            raise
        return fail(f"internal error {type(e).__name__}: {e} (set {DEBUG_ENV}=1 for the traceback and please report it)")
