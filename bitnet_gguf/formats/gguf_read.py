"""A small GGUF reader that knows I2_S (gguf-py's reader rejects ggml type 36).

Reads the metadata and the tensor table, and maps tensor bytes lazily (np.memmap); sizes follow
ggml_nbytes, including I2_S's 32-byte tail. `read_metadata` / `check_gguf` give the runtime a clear error before
llama.cpp starts (it would print pages of loader log instead) and pick a chat template without reading arrays.
"""

from __future__ import annotations

import os
import struct
from dataclasses import dataclass
from pathlib import Path
from typing import Any, BinaryIO

import gguf
import numpy as np

from ..errors import BitnetError
from .architectures import BITNET_ARCHS
from .constants import BITNET_CPP_TL_FILE_TYPES, GGML_TYPE_I2_S, GGML_TYPE_TL1, GGML_TYPE_TL2
from .quants import TL1, TL2, i2s_nbytes

GGUF_MAGIC = b"GGUF"
Scalar = str | int | float | bool
_SCALARS = {0: "<B", 1: "<b", 2: "<H", 3: "<h", 4: "<I", 5: "<i", 6: "<f", 7: "<?", 10: "<Q", 11: "<q", 12: "<d"}
_STRING, _ARRAY = 8, 9
GGML_MAX_DIMS = 4


@dataclass(frozen=True)
class TensorEntry:
    name: str
    ggml_type: int
    shape: tuple[int, ...]  # ggml order: ne0 (columns) first
    offset: int  # absolute file offset
    nbytes: int

    @property
    def n_elements(self) -> int:
        return int(np.prod(self.shape))


def tensor_nbytes(ggml_type: int, shape: tuple[int, ...]) -> int:
    n = int(np.prod(shape))
    if ggml_type == GGML_TYPE_I2_S:
        return i2s_nbytes(n)
    if ggml_type in (GGML_TYPE_TL1, GGML_TYPE_TL2):  # a 0-dimensional tensor is one element, as in ggml
        return (TL1 if ggml_type == GGML_TYPE_TL1 else TL2).nbytes(int(np.prod(shape[1:])), shape[0] if shape else 1)
    block, size = gguf.GGML_QUANT_SIZES[gguf.GGMLQuantizationType(ggml_type)]
    return n // block * size


class GGUFFile:
    """metadata_only: read the scalar/string metadata and stop (arrays such as the token list are skipped,
    the tensor table is not read), which is fast on multi-GB files and works whatever the tensor types."""

    def __init__(self, path: Path, metadata_only: bool = False) -> None:
        self.path = Path(path)
        self.metadata_only = metadata_only
        self.metadata: dict[str, Any] = {}
        self.tensors: dict[str, TensorEntry] = {}
        try:
            with open(self.path, "rb", buffering=1 << 20) as f:
                self._parse(f)
        except OSError as e:
            raise BitnetError(f"cannot read {self.path}: {e.strerror or e}") from None
        except (EOFError, struct.error, UnicodeDecodeError, KeyError, ValueError) as e:
            raise BitnetError(f"{self.path}: not a readable GGUF file ({e})") from None

    def _parse(self, f: BinaryIO) -> None:
        if f.read(4) != GGUF_MAGIC:
            raise ValueError("bad magic")
        version, n_tensors, n_kv = struct.unpack("<IQQ", _read(f, 20))
        if version < 2:
            raise ValueError(f"GGUF version {version} is not supported")
        for _ in range(n_kv):
            key = _string(f)
            (vtype,) = struct.unpack("<I", _read(f, 4))
            if vtype == _ARRAY and self.metadata_only:
                _skip_array(f)
            else:
                self.metadata[key] = _value(f, vtype)
        if self.metadata_only:
            return
        infos = []
        for _ in range(n_tensors):
            name = _string(f)
            (n_dims,) = struct.unpack("<I", _read(f, 4))
            if n_dims > GGML_MAX_DIMS:
                raise ValueError(f"tensor {name!r} has {n_dims} dimensions, more than {GGML_MAX_DIMS}")
            shape = struct.unpack(f"<{n_dims}Q", _read(f, 8 * n_dims))
            gtype, offset = struct.unpack("<IQ", _read(f, 12))
            infos.append((name, gtype, shape, offset))
        align = self.metadata.get("general.alignment", 32)
        # ggml's rule: a power of two (0 or a float would break the offset arithmetic below)
        if type(align) is not int or align <= 0 or align & (align - 1):
            raise ValueError(f"general.alignment {align!r} is not a power of 2")
        data_start = (f.tell() + align - 1) // align * align
        for name, gtype, shape, offset in infos:
            self.tensors[name] = TensorEntry(name, gtype, tuple(shape), data_start + offset, tensor_nbytes(gtype, shape))

    def data(self, name: str) -> np.ndarray:
        """Raw bytes of a tensor (read-only memory map)."""
        t = self.tensors[name]
        return np.memmap(self.path, dtype=np.uint8, mode="r", offset=t.offset, shape=(t.nbytes,))


def read_metadata(path: Path) -> dict[str, Scalar]:
    """The scalar and string metadata of a GGUF file (arrays such as the token list are left out).

    Fails with one clear line for what no build of ours can run: a file that is not GGUF, or bitnet.cpp's
    TL1/TL2 files, whose layout belongs to the bitnet.cpp build that wrote them (docs/formats.md §5).
    """
    try:
        with open(path, "rb") as f:
            magic = f.read(4)
    except OSError as e:
        raise BitnetError(f"cannot read {path}: {e.strerror or e}") from None
    if magic != GGUF_MAGIC:
        raise BitnetError(f"{path} is not a GGUF file (wrong magic); convert the model with python setup_env.py -md MODEL_DIR")
    meta = GGUFFile(path, metadata_only=True).metadata
    file_type = meta.get("general.file_type")
    if file_type in BITNET_CPP_TL_FILE_TYPES and meta.get("general.architecture") in BITNET_ARCHS:
        raise BitnetError(f"{path} is a bitnet.cpp {BITNET_CPP_TL_FILE_TYPES[file_type]} file, a layout tied to the "
                          "bitnet.cpp build that wrote it; use an I2_S file instead "
                          "(python setup_env.py -md MODEL_DIR -q i2_s, or the model's I2_S GGUF)")
    return meta


def check_whole(path: Path, what: str | None = None) -> GGUFFile:
    """read_metadata's checks, then every tensor inside the file (a download or copy cut short), in one line that
    starts with `what` (default: the path). Returns the parsed file."""
    read_metadata(path)
    f = GGUFFile(path)
    size = Path(path).stat().st_size
    for t in f.tensors.values():
        if t.offset + t.nbytes > size:
            raise BitnetError(f"{what or path}: tensor {t.name} ends at byte {t.offset + t.nbytes} of a {size}-byte file "
                              "(truncated; download or convert it again)")
    return f


def check_gguf(path: Path) -> None:
    """Fail with one clear line if `path` is not a GGUF that our build can run (see read_metadata)."""
    read_metadata(path)


def _read(f: BinaryIO, n: int) -> bytes:
    # a corrupt length must not become a huge allocation (f.read(n) reserves n bytes first): check large reads
    # against what the file still holds
    if n > 1 << 20 and n > os.fstat(f.fileno()).st_size - f.tell():
        raise EOFError(f"truncated file (a length of {n} bytes runs past its end)")
    data = f.read(n)
    if len(data) != n:
        raise EOFError("truncated file")
    return data


def _string(f: BinaryIO) -> str:
    (n,) = struct.unpack("<Q", _read(f, 8))
    return _read(f, n).decode("utf-8")


def _value(f: BinaryIO, vtype: int) -> Any:
    if vtype == _STRING:
        return _string(f)
    if vtype == _ARRAY:
        itype, n = struct.unpack("<IQ", _read(f, 12))
        if itype in _SCALARS:
            fmt = _SCALARS[itype]
            return list(np.frombuffer(_read(f, n * struct.calcsize(fmt)), dtype=np.dtype(fmt)).tolist())
        if itype == _ARRAY:  # ggml refuses arrays of arrays too; recursing into them could exhaust the stack
            raise ValueError("nested arrays are not supported")
        return [_value(f, itype) for _ in range(n)]
    if vtype not in _SCALARS:
        raise ValueError(f"unknown value type {vtype}")
    fmt = _SCALARS[vtype]
    return struct.unpack(fmt, _read(f, struct.calcsize(fmt)))[0]


def _skip_array(f: BinaryIO) -> None:
    itype, n = struct.unpack("<IQ", _read(f, 12))
    if itype in _SCALARS:
        f.seek(n * struct.calcsize(_SCALARS[itype]), 1)
    elif itype == _STRING:
        for _ in range(n):
            (ln,) = struct.unpack("<Q", _read(f, 8))
            f.seek(ln, 1)
    else:  # arrays of arrays included: ggml refuses them too
        raise ValueError(f"unknown array item type {itype}")
