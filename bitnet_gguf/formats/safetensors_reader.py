"""Read tensors out of (possibly sharded) safetensors files, one tensor or row range at a time.

We parse the header ourselves instead of going through safetensors' safe_open: numpy has no bfloat16,
so safe_open(framework="numpy") cannot hand out the bf16 master weights, and framework="pt" would make
torch a dependency of the converter. The format is tiny (8-byte little-endian header length, JSON
header, raw little-endian data) and owning the parser lets every corruption become one clear line
naming the file. Reads use plain file I/O into fresh buffers, so memory is bounded by the chunk asked for.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ..errors import BitnetError

# safetensors dtype -> (numpy storage dtype, bytes per element); BF16 is stored as uint16 and widened on read
DTYPES: dict[str, np.dtype] = {
    "F64": np.dtype("<f8"),
    "F32": np.dtype("<f4"),
    "F16": np.dtype("<f2"),
    "BF16": np.dtype("<u2"),
    "I64": np.dtype("<i8"),
    "I32": np.dtype("<i4"),
    "I16": np.dtype("<i2"),
    "I8": np.dtype("i1"),
    "U8": np.dtype("u1"),
    "BOOL": np.dtype("u1"),
}
FLOAT_DTYPES = ("F64", "F32", "F16", "BF16")
# a header is JSON describing tensors; anything beyond this is not a safetensors file
MAX_HEADER_BYTES = 100 * 1024 * 1024


@dataclass(frozen=True)
class TensorRecord:
    name: str
    file: Path
    dtype: str  # safetensors spelling: "BF16", "U8", ...
    shape: tuple[int, ...]
    offset: int  # absolute byte offset in file
    nbytes: int

    @property
    def n_elements(self) -> int:
        return math.prod(self.shape)


def bf16_to_f32(raw: np.ndarray) -> np.ndarray:
    """bfloat16 bits (uint16) -> float32: bf16 is the upper half of an f32, so this is exact."""
    out = raw.astype(np.uint32)
    out <<= 16
    return out.view(np.float32)


def read_header(path: Path) -> dict[str, TensorRecord]:
    """Parse one .safetensors header; any inconsistency is a BitnetError naming the file."""
    try:
        size = path.stat().st_size
        with open(path, "rb") as fh:
            head = fh.read(8)
            if len(head) < 8:
                raise BitnetError(f"{path}: corrupt safetensors header (file is {size} bytes, shorter than the 8-byte header length)")
            n = int.from_bytes(head, "little")
            if n == 0 or n > MAX_HEADER_BYTES or 8 + n > size:
                raise BitnetError(f"{path}: corrupt safetensors header (header length {n} does not fit a {size}-byte file)")
            text = fh.read(n)
    except OSError as e:
        raise BitnetError(f"{path}: cannot read ({e.strerror})") from None
    try:
        meta = json.loads(text.decode("utf-8"))
    # ValueError also covers a number of over 4300 digits; RecursionError a header nested a thousand deep
    except (UnicodeDecodeError, ValueError, RecursionError) as e:
        raise BitnetError(f"{path}: corrupt safetensors header (not valid JSON: {e})") from None
    if not isinstance(meta, dict):
        raise BitnetError(f"{path}: corrupt safetensors header (expected a JSON object)")
    data_start = 8 + n
    data_size = size - data_start
    records: dict[str, TensorRecord] = {}
    for name, info in meta.items():
        if name == "__metadata__":
            continue
        shown = _shown(name)
        try:
            dtype = info["dtype"]
            shape = tuple(int(d) for d in info["shape"])
            begin, end = (int(x) for x in info["data_offsets"])
        except (TypeError, KeyError, ValueError, OverflowError):  # OverflowError: int(1e400) is int(inf)
            raise BitnetError(f"{path}: corrupt safetensors header (bad entry for tensor {shown})") from None
        if not isinstance(dtype, str) or dtype not in DTYPES:  # a list or dict would not even hash
            raise BitnetError(f"{path}: tensor {shown} has dtype {_shown(dtype)}, expected one of {', '.join(DTYPES)}")
        if any(d < 0 for d in shape):
            raise BitnetError(f"{path}: corrupt safetensors header (negative dimension in tensor {shown})")
        nbytes = math.prod(shape) * DTYPES[dtype].itemsize
        if not (0 <= begin <= end <= data_size) or end - begin != nbytes:
            # a shape's product can pass Python's 4300-digit limit for printing an int
            held = nbytes if nbytes.bit_length() <= 64 else "over 2^64"
            raise BitnetError(f"{path}: corrupt safetensors header (tensor {shown}: offsets {begin}..{end} "
                              f"do not hold {held} bytes inside {data_size} data bytes)")
        records[name] = TensorRecord(name, path, dtype, shape, data_start + begin, nbytes)
    return records


def _shown(value: object) -> str:
    """A name or dtype from a header, fit for a one-line message (a control character gets escaped)."""
    return value if isinstance(value, str) and value.isprintable() else repr(value)


class SafetensorsReader:
    """All tensors of a checkpoint folder: model.safetensors, or the shards of model.safetensors.index.json."""

    def __init__(self, model_dir: Path) -> None:
        self.model_dir = Path(model_dir)
        self.files = self._find_files()
        self.tensors: dict[str, TensorRecord] = {}
        for f in self.files:
            for name, rec in read_header(f).items():
                if name in self.tensors:
                    raise BitnetError(f"{f}: tensor {name} is also in {self.tensors[name].file.name}")
                self.tensors[name] = rec

    def _find_files(self) -> list[Path]:
        index = self.model_dir / "model.safetensors.index.json"
        if index.is_file():
            try:
                weight_map = json.loads(index.read_text())["weight_map"]
                names = sorted(set(weight_map.values()))
            except (OSError, ValueError, KeyError, TypeError, AttributeError) as e:
                raise BitnetError(f"{index}: not a valid safetensors index ({e})") from None
            files = [self.model_dir / n for n in names]
            for f in files:
                if not f.is_file():
                    raise BitnetError(f"{index}: shard {f.name} is missing")
            return files
        single = self.model_dir / "model.safetensors"
        if single.is_file():
            return [single]
        found = sorted(self.model_dir.glob("*.safetensors"))
        if found:
            return found
        bins = sorted(self.model_dir.glob("*.bin"))
        hint = f" (found {bins[0].name}: PyTorch pickles are not read; re-save with safetensors)" if bins else ""
        raise BitnetError(f"{self.model_dir}: no model.safetensors or model.safetensors.index.json{hint}")

    def __contains__(self, name: str) -> bool:
        return name in self.tensors

    def record(self, name: str) -> TensorRecord:
        return self.tensors[name]

    def _read_raw(self, rec: TensorRecord, first: int, count: int) -> np.ndarray:
        dt = DTYPES[rec.dtype]
        buf = np.empty(count, dtype=dt)
        with open(rec.file, "rb") as fh:
            fh.seek(rec.offset + first * dt.itemsize)
            got = fh.readinto(memoryview(buf).cast("B"))
        if got != count * dt.itemsize:
            raise BitnetError(f"{rec.file}: tensor {rec.name} is truncated (file ends early)")
        return buf

    def read(self, name: str, rows: tuple[int, int] | None = None) -> np.ndarray:
        """The tensor (or rows [start, stop) of its first axis) as numpy; floats come back as float32."""
        rec = self.tensors[name]
        row_len = math.prod(rec.shape[1:]) if rec.shape else 1
        start, stop = rows if rows is not None else (0, rec.shape[0] if rec.shape else 1)
        raw = self._read_raw(rec, start * row_len, (stop - start) * row_len)
        shape = (stop - start, *rec.shape[1:]) if rec.shape else ()
        if rec.dtype == "BF16":
            return bf16_to_f32(raw).reshape(shape)
        if rec.dtype in FLOAT_DTYPES:
            return raw.astype(np.float32, copy=False).reshape(shape)
        return raw.reshape(shape)
