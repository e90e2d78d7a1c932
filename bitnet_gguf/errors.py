"""The error type every command turns into one clear line (and a non-zero exit)."""

from __future__ import annotations

from collections.abc import Collection


class BitnetError(RuntimeError):
    """A problem the user can act on; str() is the whole message."""


def check_choice(flag: str, value: object, choices: Collection[str]) -> None:
    """A flag's value must be one of a fixed set; else one line naming the flag and what it accepts."""
    if value not in choices:
        raise BitnetError(f"{flag} {value!r} unknown, expected one of {', '.join(choices)}")
