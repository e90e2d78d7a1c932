"""The bad-input tables' one assertion, and small helpers to make damaged inputs.

A bad input must end with: a non-zero exit, stderr exactly one line `error: ...` naming the file, tensor or flag
(the table's expected substring), no traceback, no new file (output or temporary) in the watched folders, and
the previous outputs byte for byte as they were.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import subprocess
import sys
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

REPO_ROOT = Path(__file__).resolve().parents[2]
PREVIOUS = b"previous output: must survive every failed run\n"


@dataclass
class Case:
    """One row: an id, a way to make the input (make(ctx) edits files and may add keys), the argv (with
    {placeholders} filled from ctx) and the substrings the one error line must hold (also formatted)."""

    id: str
    argv: Sequence[str]
    expect: str | Sequence[str]
    make: Callable[[dict[str, Any]], None] | None = None
    env: dict[str, str] = field(default_factory=dict)


def params(cases: Iterable[Case]) -> list[Any]:
    cases = list(cases)
    ids = [c.id for c in cases]
    assert len(ids) == len(set(ids)), "duplicate case ids"
    return [pytest.param(c, id=c.id) for c in cases]


def fill(text: str, ctx: dict[str, Any]) -> str:
    return text.format(**{k: str(v) for k, v in ctx.items()})


def snapshot(folders: Iterable[Path]) -> dict[str, str]:
    """Every file (and folder) under the watched folders -> sha256 of its bytes."""
    out: dict[str, str] = {}
    for root in folders:
        root = Path(root)
        if not root.exists():
            out[str(root)] = "absent"
            continue
        for dirpath, dirnames, filenames in os.walk(root):
            for d in dirnames:
                out[os.path.join(dirpath, d)] = "dir"
            for f in filenames:
                p = os.path.join(dirpath, f)
                try:
                    out[p] = hashlib.sha256(Path(p).read_bytes()).hexdigest()
                except OSError:
                    out[p] = "unreadable"
    return out


def assert_one_line_failure(rc: int | None, stderr: str, expect: str | Sequence[str], before: dict[str, str],
                            watched: Iterable[Path]) -> str:
    assert rc not in (0, None), f"exit code {rc}, expected non-zero; stderr: {stderr!r}"
    assert "Traceback" not in stderr, stderr
    lines = stderr.strip().splitlines()
    assert len(lines) == 1, f"expected one line on stderr, got {len(lines)}:\n{stderr}"
    line = lines[0]
    assert line.startswith("error: "), line
    assert "internal error" not in line, line
    for needle in [expect] if isinstance(expect, str) else expect:
        assert needle in line, f"{needle!r} not in {line!r}"
    after = snapshot(watched)
    new = sorted(set(after) - set(before))
    gone = sorted(set(before) - set(after))
    changed = sorted(k for k in set(before) & set(after) if before[k] != after[k])
    assert not new and not gone and not changed, f"new {new}, removed {gone}, changed {changed}"
    return line


def run_in_process(main: Callable[[list[str]], int], argv: list[str], capsys: pytest.CaptureFixture[str]) -> tuple[int, str]:
    """An entry point's main(argv) in this process: (exit code, stderr); argparse's SystemExit counts as an exit."""
    capsys.readouterr()
    try:
        rc = main(argv)
    except SystemExit as e:
        rc = e.code if isinstance(e.code, int) else 1
    return rc, capsys.readouterr().err


def run_subprocess(argv: Sequence[str], env: dict[str, str] | None = None, timeout: float = 300,
                   preexec: Callable[[], None] | None = None, cwd: Path | None = None) -> subprocess.CompletedProcess[str]:
    full_env = {**os.environ, "PYTHONPATH": str(REPO_ROOT) + os.pathsep + os.environ.get("PYTHONPATH", ""), **(env or {})}
    return subprocess.run([sys.executable, *argv], capture_output=True, text=True, env=full_env, timeout=timeout,
                          preexec_fn=preexec, cwd=cwd or REPO_ROOT)


# --- making damaged inputs -----------------------------------------------------------------------------------

def link_copy(src: Path, dst: Path) -> Path:
    """A copy of a folder whose files are hard links (fast); edit files only through the helpers below, which
    replace a file instead of writing into the shared inode."""
    shutil.copytree(src, dst, copy_function=os.link)
    return dst


def replace_bytes(path: Path, data: bytes) -> None:
    path = Path(path)
    if path.exists():
        path.unlink()  # break the hard link first
    path.write_bytes(data)


def edit_json(path: Path, edit: Callable[[Any], object]) -> None:
    """Edit a JSON file's data in place (edit's return value is ignored)."""
    data = json.loads(Path(path).read_text(encoding="utf-8"))
    edit(data)
    replace_bytes(path, json.dumps(data).encode())


def truncate(path: Path, size: int) -> None:
    replace_bytes(path, Path(path).read_bytes()[:size])


def put_previous(folder: Path, name: str) -> Path:
    """A previous output that a failed run must leave exactly as it is."""
    p = Path(folder) / name
    p.write_bytes(PREVIOUS)
    return p


def rewrite_tensors(d: Path, edit: Callable[[list[list[Any]]], list[list[Any]] | None], name: str = "model.safetensors") -> None:
    """Rewrite d/name through edit(rows): rows are [name, dtype, shape, raw numpy array] (bf16 as uint16 bits);
    edit them in place or return new rows."""
    import numpy as np

    from bitnet_gguf.formats.safetensors_reader import DTYPES, read_header
    from bitnet_gguf.formats.safetensors_writer import TensorSpec, write_safetensors

    path = Path(d) / name
    recs = read_header(path)
    raw = path.read_bytes()
    rows = [[r.name, r.dtype, r.shape, np.frombuffer(raw[r.offset:r.offset + r.nbytes], dtype=DTYPES[r.dtype]).reshape(r.shape).copy()]
            for r in recs.values()]
    new = edit(rows)
    rows = rows if new is None else new
    specs = [TensorSpec(n, dt, tuple(sh), (lambda a=a: np.ascontiguousarray(a))) for n, dt, sh, a in rows]
    path.unlink()
    write_safetensors(path, specs)


BF16_NAN = 0x7FC0
BF16_INF = 0x7F80
