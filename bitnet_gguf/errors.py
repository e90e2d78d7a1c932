"""The error type every command turns into one clear line (and a non-zero exit)."""


class BitnetError(RuntimeError):
    """A problem the user can act on; str() is the whole message."""
