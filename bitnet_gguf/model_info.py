"""Just enough of a GGUF header to pick a chat template and to give a clear error before llama.cpp starts.

Reads the key/value section only and skips every array (the 128k-entry token list, the merges), so it is
fast on multi-GB files and does not depend on gguf-py knowing ggml type 36.
"""

from __future__ import annotations

import struct
from pathlib import Path
from typing import BinaryIO

from .errors import BitnetError

GGUF_MAGIC = b"GGUF"
_SCALARS = {0: "<B", 1: "<b", 2: "<H", 3: "<h", 4: "<I", 5: "<i", 6: "<f", 7: "<?", 10: "<Q", 11: "<q", 12: "<d"}
_STRING, _ARRAY = 8, 9

Scalar = str | int | float | bool


def _read(f: BinaryIO, n: int) -> bytes:
    data = f.read(n)
    if len(data) != n:
        raise EOFError("truncated header")
    return data


def _string(f: BinaryIO) -> bytes:
    (n,) = struct.unpack("<Q", _read(f, 8))
    return _read(f, n)


def _skip_array(f: BinaryIO) -> None:
    itype, n = struct.unpack("<IQ", _read(f, 12))
    if itype in _SCALARS:
        f.seek(n * struct.calcsize(_SCALARS[itype]), 1)
    elif itype == _STRING:
        for _ in range(n):
            (ln,) = struct.unpack("<Q", _read(f, 8))
            f.seek(ln, 1)
    elif itype == _ARRAY:
        for _ in range(n):
            _skip_array(f)
    else:
        raise ValueError(f"unknown array item type {itype}")


def _not_gguf(path: Path) -> BitnetError:
    return BitnetError(f"{path} is not a GGUF file (wrong magic); convert the model with python setup_env.py -md MODEL_DIR")


def read_metadata(path: Path) -> dict[str, Scalar]:
    """The scalar and string metadata of a GGUF file (arrays are left out)."""
    try:
        with open(path, "rb", buffering=1 << 20) as f:
            if f.read(4) != GGUF_MAGIC:
                raise _not_gguf(path)
            version, _n_tensors, n_kv = struct.unpack("<IQQ", _read(f, 20))
            if version < 2:
                raise BitnetError(f"{path}: GGUF version {version} is too old; reconvert it")
            meta: dict[str, Scalar] = {}
            for _ in range(n_kv):
                key = _string(f).decode("utf-8")
                (vtype,) = struct.unpack("<I", _read(f, 4))
                if vtype == _STRING:
                    meta[key] = _string(f).decode("utf-8", errors="replace")
                elif vtype == _ARRAY:
                    _skip_array(f)
                elif vtype in _SCALARS:
                    fmt = _SCALARS[vtype]
                    meta[key] = struct.unpack(fmt, _read(f, struct.calcsize(fmt)))[0]
                else:
                    raise ValueError(f"unknown value type {vtype} for {key}")
            return meta
    except OSError as e:
        raise BitnetError(f"cannot read {path}: {e.strerror or e}") from None
    except (EOFError, ValueError, struct.error, UnicodeDecodeError) as e:
        raise BitnetError(f"{path}: not a readable GGUF file ({e})") from None


def check_gguf(path: Path) -> None:
    """Fail with one clear line if `path` is not a GGUF (llama.cpp would print pages of loader log instead)."""
    try:
        with open(path, "rb") as f:
            magic = f.read(4)
    except OSError as e:
        raise BitnetError(f"cannot read {path}: {e.strerror or e}") from None
    if magic != GGUF_MAGIC:
        raise _not_gguf(path)
