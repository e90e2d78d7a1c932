"""Item 5 of the reliability issue: atomic outputs, damaged stamps, reconversion by stamp, train_tiny's folder."""

from __future__ import annotations

import io
import json
import os
import shutil
import subprocess
import sys
from argparse import Namespace
from pathlib import Path

import pytest

from bitnet_gguf import fileio
from bitnet_gguf.errors import BitnetError

DAMAGED = {"garbage": b"\x00\xff\xfe not json", "truncated": b'{"sha256": "ab', "empty": b"", "list": b"[1,",
           "utf16": "{}".encode("utf-16")}


@pytest.mark.parametrize("kind", sorted(DAMAGED))
def test_damaged_stamps_are_remade_not_fatal(kind: str, tmp_path: Path) -> None:
    """A corrupt build stamp (was a JSONDecodeError traceback): every reader treats it as absent."""
    from bitnet_gguf.paths import Pin
    from bitnet_gguf.setup import kernel_gen, source, tl_autotune
    from bitnet_gguf.setup.build import CONFIG_STAMP

    (tmp_path / CONFIG_STAMP).write_bytes(DAMAGED[kind])
    assert fileio.read_json_record(tmp_path / CONFIG_STAMP) is None
    (tmp_path / source.STAMP_NAME).write_bytes(DAMAGED[kind])
    pin = Pin("p", "1", "p.tar.gz", "0" * 64, "vendor", "abc", 1)
    assert source.source_is_current(pin, tmp_path, tmp_path) is False
    record = kernel_gen.generated_dir(tmp_path) / tl_autotune.RECORD
    record.parent.mkdir(parents=True)
    record.write_bytes(DAMAGED[kind])
    assert tl_autotune.recorded_params(tmp_path) == kernel_gen.TunedParams()
    assert fileio.read_json_record(tmp_path) is None  # a folder where a stamp should be
    assert fileio.stamp_matches(tmp_path / "x.gguf", {}) is False


def test_atomic_output_keeps_previous_and_leaves_nothing(tmp_path: Path) -> None:
    out = tmp_path / "result.json"
    out.write_text("previous")
    with pytest.raises(RuntimeError), fileio.atomic_output(out) as tmp:
        tmp.write_text("half")
        raise RuntimeError("failed midway")
    assert out.read_text() == "previous" and sorted(p.name for p in tmp_path.iterdir()) == ["result.json"]
    fileio.write_text_atomic(out, "new")
    assert out.read_text() == "new" and sorted(p.name for p in tmp_path.iterdir()) == ["result.json"]
    assert (out.stat().st_mode & 0o777) == 0o666 & ~_umask()


def _umask() -> int:
    m = os.umask(0)
    os.umask(m)
    return m


def test_atomic_output_removes_temporaries_of_dead_writers_only(tmp_path: Path) -> None:
    out = tmp_path / "model.gguf"
    dead = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True).stdout.strip()
    stale = tmp_path / f".model.gguf.{dead}.abc123.tmp"
    stale.write_text("left by kill -9")
    live = tmp_path / f".model.gguf.{os.getppid()}.def456.tmp"  # our parent is alive
    live.write_text("being written")
    other = tmp_path / f".other.gguf.{dead}.abc123.tmp"  # another output's: not ours to judge now
    other.write_text("x")
    fileio.write_text_atomic(out, "whole")
    assert not stale.exists() and live.exists() and other.exists() and out.read_text() == "whole"


@pytest.mark.parametrize("target", ["folder", "under-file"])
def test_atomic_output_refuses_impossible_paths(target: str, tmp_path: Path) -> None:
    (tmp_path / "f").write_text("x")
    path = tmp_path if target == "folder" else tmp_path / "f" / "x.gguf"
    with pytest.raises(BitnetError) as e, fileio.atomic_output(path):
        pass
    assert "\n" not in str(e.value) and str(path) in str(e.value)


def test_atomic_directory(tmp_path: Path) -> None:
    out = tmp_path / "ckpt"
    with pytest.raises(RuntimeError), fileio.atomic_output(out, directory=True) as tmp:
        (tmp / "config.json").write_text("{}")
        raise RuntimeError
    assert list(tmp_path.iterdir()) == []
    with fileio.atomic_output(out, directory=True) as tmp:
        (tmp / "config.json").write_text("{}")
    assert [p.name for p in out.iterdir()] == ["config.json"] and [p.name for p in tmp_path.iterdir()] == ["ckpt"]


# --- reconversion by stamp (setup_env.py -md) ------------------------------------------------------------------

def _prepare(d: Path, log: io.StringIO | None = None) -> Path:
    from bitnet_gguf.setup.prepare_model import prepare_model

    return prepare_model(Namespace(model_dir=str(d), hf_repo=None, quant_type="i2_s", quant_embd=False), log or io.StringIO())


def test_reconversion_follows_the_stamp_not_mtime(spm_ckpt: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from bitnet_gguf.convert import converter

    d = shutil.copytree(spm_ckpt, tmp_path / "m", copy_function=os.link)
    out = _prepare(d)
    stamp = fileio.stamp_path(out)
    saved = json.loads(stamp.read_text())
    assert saved["inputs"]["converter"] == converter.CONVERTER_VERSION and saved["inputs"]["outtype"] == "i2_s"
    first = out.stat().st_mtime_ns

    log = io.StringIO()
    assert _prepare(d, log) == out and out.stat().st_mtime_ns == first and "not converting again" in log.getvalue()

    # a newer converter: converted again although the GGUF is newer than every checkpoint file
    monkeypatch.setattr(converter, "CONVERTER_VERSION", converter.CONVERTER_VERSION + 1)
    log = io.StringIO()
    _prepare(d, log)
    assert "converting" in log.getvalue() and out.stat().st_mtime_ns != first

    # a checkpoint file replaced by one with an OLDER mtime (a copy with -p, an unpacked archive): converted again
    second = out.stat().st_mtime_ns
    cfg = d / "config.json"
    data = json.loads(cfg.read_text())
    data["rms_norm_eps"] = 1e-6
    cfg.unlink()
    cfg.write_text(json.dumps(data))
    os.utime(cfg, ns=(1_000_000_000, 1_000_000_000))
    log = io.StringIO()
    _prepare(d, log)
    assert "converting" in log.getvalue() and out.stat().st_mtime_ns != second

    # the GGUF replaced by hand (newer than the checkpoint): its stamp no longer matches, so it is remade
    out.write_bytes(out.read_bytes())
    log = io.StringIO()
    _prepare(d, log)
    assert "converting" in log.getvalue()

    # a damaged stamp: converted again, no traceback
    stamp.write_bytes(b"\x00garbage")
    log = io.StringIO()
    _prepare(d, log)
    assert "converting" in log.getvalue() and json.loads(stamp.read_text())["inputs"]["outtype"] == "i2_s"


# --- train_tiny: never deletes what it did not write ------------------------------------------------------------

class _FakeModel:
    def __init__(self, fail: bool = False) -> None:
        self.fail = fail

    def save_pretrained(self, d: str) -> None:
        (Path(d) / "config.json").write_text("{}")
        (Path(d) / "model.safetensors").write_bytes(b"new weights")
        if self.fail:
            raise OSError(28, "No space left on device")


class _FakeTokenizer:
    def save(self, path: str) -> None:
        Path(path).write_text("{}")


def test_train_tiny_out_dot_keeps_foreign_files(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """`train_tiny --out .` used to delete every file in the folder but README.md."""
    pytest.importorskip("torch")
    from bitnet_gguf.tools import train_tiny

    monkeypatch.chdir(tmp_path)
    foreign = {"notes.txt": b"mine", "other.safetensors": b"someone else's", "README.md": b"# mine"}
    for name, data in foreign.items():
        (tmp_path / name).write_bytes(data)
    (tmp_path / "model.safetensors").write_bytes(b"old weights")
    names = train_tiny.save_checkpoint(_FakeModel(), _FakeTokenizer(), Path("."), 512)  # type: ignore[arg-type]
    assert names == ["config.json", "model.safetensors", "tokenizer.json", "tokenizer_config.json"]
    for name, data in foreign.items():
        assert (tmp_path / name).read_bytes() == data
    assert (tmp_path / "model.safetensors").read_bytes() == b"new weights"
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted([*foreign, *names])

    # a failing save (disk full) leaves the earlier checkpoint and no temporary folder
    with pytest.raises(OSError):
        train_tiny.save_checkpoint(_FakeModel(fail=True), _FakeTokenizer(), Path("."), 512)  # type: ignore[arg-type]
    assert (tmp_path / "model.safetensors").read_bytes() == b"new weights"
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted([*foreign, *names])


def test_train_tiny_bad_flags_are_one_line(tmp_path: Path) -> None:
    pytest.importorskip("torch")
    from .common import assert_one_line_failure, run_subprocess, snapshot

    (tmp_path / "f").write_text("x")
    before = snapshot([tmp_path])
    r = run_subprocess(["-m", "bitnet_gguf.tools.train_tiny", "--data", str(tmp_path / "none.txt"), "--out", str(tmp_path / "o")])
    assert_one_line_failure(r.returncode, r.stderr, f"--data {tmp_path / 'none.txt'}: file not found", before, [tmp_path])
    r = run_subprocess(["-m", "bitnet_gguf.tools.train_tiny", "--data", str(tmp_path / "f"), "--out", str(tmp_path / "f")])
    assert_one_line_failure(r.returncode, r.stderr, f"--out {tmp_path / 'f'}: is a file", before, [tmp_path])
    r = run_subprocess(["-m", "bitnet_gguf.tools.train_tiny", "--data", str(tmp_path / "f"), "--out", str(tmp_path / "o"),
                        "--layers", "0"])
    assert_one_line_failure(r.returncode, r.stderr, "--layers 0: expected at least 1", before, [tmp_path])
