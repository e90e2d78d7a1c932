"""Teach the installed gguf-py (PyPI `gguf`) our tensor types, so `gguf.GGUFReader` and gguf-dump read our files.

gguf-py has no I2_S (36), TL1 (38) or TL2 (43): its reader stops at "36 is not a valid GGMLQuantizationType".
`install()` adds the three to `GGMLQuantizationType` and `GGML_QUANT_SIZES`, and builds `ReaderTensor`s of these
types itself: their size is no (block_size, type_size) product (the 32-byte per-tensor tail, TL1/TL2's padding to
whole tiles; docs/formats.md §2, §5), and their bytes are not rows (an I2_S row with K mod 128 != 0 starts inside a
block, TL tiles span 32/64 rows), so `data` is the tensor's whole byte run, 1-D, of `n_bytes` bytes, and `shape` /
`n_elements` are the ggml dimensions as for any type. Sizes come from `formats.gguf_read.tensor_nbytes`.

bitnet.cpp's files: I2_S is the same type 36 and reads the same way. bitnet.cpp's TL1 (type 38 in a file without
our layout key) and TL2 (type 39, upstream's MXFP4, in a file whose general.file_type is 39) have layouts whose size
we do not own; their tensors are given the bytes the file reserves for them (up to the next tensor's data, or the
end of the file). Type 39 keeps gguf-py's name MXFP4: the id cannot tell bitnet.cpp's TL2 apart.

`import bitnet_gguf` calls `install()`, which stays cheap: it patches gguf-py right away if gguf is already
imported, else as soon as it is. A gguf-py that already knows type 36 is left alone.
"""

from __future__ import annotations

import importlib.abc
import importlib.machinery
import importlib.util
import sys
import warnings
from collections.abc import Sequence
from types import ModuleType
from typing import Any

_PATCHED = "_bitnet_gguf_compat"  # set on gguf.GGUFReader once patched: makes install() idempotent


def install() -> None:
    """Patch gguf-py now if it is imported, else right after its import; never raises."""
    gguf = sys.modules.get("gguf")
    if gguf is not None and hasattr(gguf, "GGUFReader"):
        _patch_safely(gguf)
    elif not any(isinstance(f, _AfterGgufImport) for f in sys.meta_path):
        # importing gguf costs ~0.1 s (numpy and all of gguf-py): `import bitnet_gguf` must not pay it when unused
        sys.meta_path.insert(0, _AfterGgufImport())


class _AfterGgufImport(importlib.abc.MetaPathFinder):
    """One-shot import hook: find gguf with the other finders, patch it once its module has run."""

    def find_spec(self, fullname: str, path: Sequence[str] | None,
                  target: ModuleType | None = None) -> importlib.machinery.ModuleSpec | None:
        if fullname != "gguf":
            return None
        if self in sys.meta_path:
            sys.meta_path.remove(self)  # before find_spec below, which would otherwise ask us again
        spec = importlib.util.find_spec("gguf")
        if spec is None or spec.loader is None or not hasattr(spec.loader, "exec_module"):
            return spec
        loader = spec.loader
        run = loader.exec_module

        def exec_module(module: ModuleType) -> None:
            run(module)
            _patch_safely(module)

        loader.exec_module = exec_module  # type: ignore[method-assign]
        return spec


def _patch_safely(gguf: ModuleType) -> None:
    try:
        _patch(gguf)
    except Exception as e:  # a gguf-py we do not know must not break importing it or us
        warnings.warn(f"bitnet_gguf could not teach gguf-py the I2_S/TL1/TL2 types: {e}", RuntimeWarning, stacklevel=2)


def _patch(gguf: ModuleType) -> None:
    from .formats.constants import GGML_TYPE_I2_S

    reader_cls = gguf.GGUFReader
    if getattr(reader_cls, _PATCHED, False):
        return
    qtype = gguf.GGMLQuantizationType
    if GGML_TYPE_I2_S in qtype._value2member_map_:
        return  # a gguf-py (or the patched vendored one) that knows I2_S: trust its reader
    from .formats.gguf_write import TERNARY_GGUF_TYPES

    # the ternary types gguf-py lacks (TERNARY_GGUF_TYPES also lists upstream's TQ1_0/TQ2_0, which it knows)
    ours = {key: tt for key, tt in TERNARY_GGUF_TYPES.items() if int(tt.raw) not in qtype._value2member_map_}
    sizes = {key: _code_bytes_per_element(key) for key in ours}  # all that can fail, before gguf-py changes
    for key, tt in ours.items():
        member = _add_enum_member(qtype, tt.raw.name, int(tt.raw))  # type: ignore[attr-defined]
        gguf.GGML_QUANT_SIZES[member] = sizes[key]
    ours_ids = frozenset(int(tt.raw) for tt in ours.values())
    original = reader_cls._build_tensors

    def _build_tensors(self: Any, start_offs: int, fields: list[Any]) -> None:
        _build_tensors_with_ours(self, start_offs, fields, original, gguf, ours_ids)

    reader_cls._build_tensors = _build_tensors
    setattr(reader_cls, _PATCHED, True)


def _add_enum_member(cls: Any, name: str, value: int) -> Any:
    """Add `name = value` to an IntEnum class after its creation.

    Enums have no public way to grow. A member is what EnumType.__new__ makes of each class attribute: an instance
    of the class (for IntEnum an int) with _name_/_value_/_sort_order_, registered in _member_map_ (by name:
    cls['I2_S']), _value2member_map_ (by value: cls(36), which GGUFReader calls), _member_names_ (iteration, len)
    and as a class attribute (cls.I2_S). type.__setattr__ because EnumType.__setattr__ refuses to bind members.
    """
    if value in cls._value2member_map_:
        return cls._value2member_map_[value]
    member = int.__new__(cls, value)
    member._name_ = name
    member._value_ = value
    member.__objclass__ = cls
    member._sort_order_ = len(cls._member_names_)
    cls._member_map_[name] = member
    cls._value2member_map_[value] = member
    cls._member_names_.append(name)
    type.__setattr__(cls, name, member)
    return member


def _code_bytes_per_element(key: str) -> tuple[int, int]:
    """The (block_size, type_size) gguf-py's table can hold for a ternary type: the bytes per element of its
    codes alone (no tail, no padding), measured on a shape of whole blocks, tiles and groups. Tensor sizes never
    come from it (see _build_tensors_with_ours), but other gguf-py code may look the type up."""
    from fractions import Fraction

    from .formats.constants import I2_S_TAIL_BYTES, QK_I2_S, TL1_TILE_ROWS, TL2_CHUNK_GROUPS, TL2_TILE_ROWS
    from .formats.gguf_write import TERNARY_GGUF_TYPES

    rows = TL1_TILE_ROWS * TL2_TILE_ROWS
    cols = QK_I2_S * 3 * TL2_CHUNK_GROUPS  # 3 weights per TL2 group; even, for TL1's pairs
    per_element = Fraction(TERNARY_GGUF_TYPES[key].nbytes(rows, cols) - I2_S_TAIL_BYTES, rows * cols)
    return per_element.denominator, per_element.numerator


def _build_tensors_with_ours(reader: Any, start_offs: int, fields: list[Any], original: Any, gguf: ModuleType,
                             ours_ids: frozenset[int]) -> None:
    """GGUFReader._build_tensors: gguf-py builds the tensors of its own types, we build those of ours, in file order."""
    import numpy as np

    from .formats.gguf_read import tensor_nbytes

    names = [str(bytes(f.parts[1]), encoding="utf-8") for f in fields]
    if len(set(names)) != len(names):  # gguf-py's own check, which now sees only part of the fields
        dup = next(n for i, n in enumerate(names) if n in names[:i])
        raise ValueError(f"Found duplicated tensor with name {dup}")
    bitnet_cpp_ids = _bitnet_cpp_tl_ids(reader)
    theirs, ours = [], {}
    for i, field in enumerate(fields):
        raw = int(field.parts[4][0])
        if raw in bitnet_cpp_ids or raw in ours_ids:
            ours[i] = field
        else:
            theirs.append(field)
    original(reader, start_offs, theirs)
    if not ours:
        return
    file_end = len(reader.data)
    starts = sorted(start_offs + int(f.parts[5][0]) for f in fields)
    built = iter(reader.tensors)
    tensors = []
    for i, field in enumerate(fields):
        if i not in ours:
            tensors.append(next(built))
            continue
        _, name_data, _, dims, raw_dtype, offset_tensor = field.parts
        raw = int(raw_dtype[0])
        ggml_type = gguf.GGMLQuantizationType(raw)
        shape = tuple(int(d) for d in dims)
        n_elements = 1
        for d in shape:
            n_elements *= d  # Python ints: np.prod of uint64 dims could wrap
        data_offs = int(start_offs + offset_tensor[0])
        if raw in bitnet_cpp_ids:  # a layout of bitnet.cpp's: the bytes the file reserves for it
            n_bytes = next((s for s in starts if s > data_offs), file_end) - data_offs
        else:
            n_bytes = tensor_nbytes(raw, shape)
        if data_offs + n_bytes > file_end:
            raise ValueError(f"tensor {names[i]!r} of type {ggml_type.name} needs {n_bytes} bytes at offset {data_offs}, "
                             f"past the end of the file ({file_end} bytes): truncated file")
        tensors.append(gguf.ReaderTensor(
            name=names[i], tensor_type=ggml_type, shape=dims, n_elements=n_elements, n_bytes=n_bytes,
            data_offset=data_offs, data=reader._get(data_offs, np.uint8, n_bytes), field=field))
    reader.tensors = tensors


def _bitnet_cpp_tl_ids(reader: Any) -> set[int]:
    """Tensor types that hold one of bitnet.cpp's TL layouts in this file (docs/formats.md §5's rule): 38 when the
    file lacks our TL1 layout key, 39 (upstream's MXFP4) when general.file_type is bitnet.cpp's MOSTLY_TL2 (39)."""
    from .formats.constants import BITNET_CPP_TL_FILE_TYPES, GGML_TYPE_TL1, TL1_LAYOUT_KEY

    ids = set() if TL1_LAYOUT_KEY in reader.fields else {GGML_TYPE_TL1}
    ft = reader.fields.get("general.file_type")
    tl2_file_type = next(k for k, v in BITNET_CPP_TL_FILE_TYPES.items() if v == "TL2")
    if ft is not None and ft.types and ft.contents() == tl2_file_type:
        ids.add(tl2_file_type)  # bitnet.cpp's TL2 tensors share the id of its file type
    return ids


def bitnet_cpp_tl_note(reader: Any) -> str | None:
    """A line for readers of a bitnet.cpp TL file: what its type names mean here (None for other files)."""
    from .formats.constants import GGML_TYPE_TL1

    ids = _bitnet_cpp_tl_ids(reader)
    present = {int(t.tensor_type) for t in reader.tensors} & ids
    if not present:
        return None
    kinds = ", ".join(f"TL1 (type {i}, shown as TL1)" if i == GGML_TYPE_TL1 else f"TL2 (type {i}, shown as MXFP4)"
                      for i in sorted(present))
    return (f"bitnet.cpp {kinds}: layouts of the bitnet.cpp build that wrote the file; sizes are the bytes the file "
            "reserves for each tensor. Our build refuses these tensors: use an I2_S file")
