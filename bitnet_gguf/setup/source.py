"""Obtain the pinned llama.cpp source: pip-download the sdist, verify it, unpack it, apply patches/."""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import subprocess
import sys
import tarfile
import tempfile
from pathlib import Path

from ..errors import BitnetError
from ..fileio import read_json_record
from ..paths import Pin, cache_dir

STAMP_NAME = ".bitnet-gguf-source.json"


def sha256_of(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def verify_sdist(path: Path, pin: Pin) -> None:
    actual = sha256_of(path)
    if actual != pin.sha256:
        raise BitnetError(
            f"{path}: sha256 mismatch (expected {pin.sha256}, got {actual}); "
            "the file is not the pinned llama.cpp source, delete it to download again"
        )


def fetch_sdist(pin: Pin, cache: Path | None = None, log=None) -> Path:
    """Return the verified sdist from the cache, downloading it with pip from PyPI if absent."""
    cache = cache or cache_dir()
    target = cache / pin.filename
    if not target.exists():
        cache.mkdir(parents=True, exist_ok=True)
        with tempfile.TemporaryDirectory(dir=cache) as tmp:
            # --no-binary for this package only: ":all:" would also build pip's metadata helpers (cmake!) from source
            cmd = [sys.executable, "-m", "pip", "download", "--no-deps", "--no-binary", pin.package,
                   "--dest", tmp, f"{pin.package}=={pin.version}"]
            proc = subprocess.run(cmd, stdout=log or subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
            got = Path(tmp) / pin.filename
            if proc.returncode != 0 or not got.exists():
                raise BitnetError(f"pip could not download {pin.package}=={pin.version} from PyPI (see the log)")
            verify_sdist(got, pin)
            os.replace(got, target)
    verify_sdist(target, pin)
    return target


def patch_files(patches_dir: Path) -> list[Path]:
    return sorted(p for p in patches_dir.glob("*.patch"))


def _fingerprint(pin: Pin, patches: list[Path]) -> dict[str, object]:
    return {"sha256": pin.sha256, "patches": [[p.name, sha256_of(p)] for p in patches]}


def _extract(sdist: Path, pin: Pin, dest: Path) -> None:
    prefix = f"{pin.filename.removesuffix('.tar.gz')}/{pin.subdir}/"
    with tarfile.open(sdist, "r:gz") as tar:
        members = []
        for m in tar.getmembers():
            if not m.name.startswith(prefix) or m.name == prefix + ".git":
                continue
            m.name = m.name[len(prefix):]
            members.append(m)
        if not members:
            raise BitnetError(f"{sdist}: no {pin.subdir} folder inside")
        tar.extractall(dest, members=members, filter="data")


def apply_patch(patch: Path, src: Path) -> None:
    """git apply (all-or-nothing); a failure names the patch and the file that did not apply."""
    env = dict(os.environ, GIT_CEILING_DIRECTORIES=str(src.parent))  # never touch an enclosing repo
    try:
        proc = subprocess.run(["git", "apply", "--whitespace=nowarn", str(patch)], cwd=src, env=env,
                              capture_output=True, text=True)
    except FileNotFoundError:
        raise BitnetError(f"patch {patch.name}: git not found on PATH, which applying patches/ needs (install git)") from None
    if proc.returncode != 0:
        failed = [ln for ln in proc.stderr.splitlines() if ln.startswith("error:")]
        where = failed[0].removeprefix("error: ") if failed else proc.stderr.strip()
        raise BitnetError(f"patch {patch.name} does not apply: {where}")


def source_is_current(pin: Pin, dest: Path, patches_dir: Path) -> bool:
    """Whether dest holds the pinned sdist with exactly the patches in patches_dir (its stamp says so)."""
    return read_json_record(dest / STAMP_NAME) == _fingerprint(pin, patch_files(patches_dir))


def prepare_source(pin: Pin, dest: Path, patches_dir: Path, cache: Path | None = None, log=None) -> bool:
    """Unpack + patch into dest unless it already holds this sdist with these patches. Returns True if (re)made."""
    if source_is_current(pin, dest, patches_dir):
        return False
    patches = patch_files(patches_dir)
    want = _fingerprint(pin, patches)
    sdist = fetch_sdist(pin, cache, log)
    tmp = dest.with_name(dest.name + ".tmp")
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir(parents=True)
    try:
        _extract(sdist, pin, tmp)
        for p in patches:
            if log:
                print(f"applying {p.name}", file=log, flush=True)
            apply_patch(p, tmp)
        (tmp / STAMP_NAME).write_text(json.dumps(want))  # inside tmp: the whole folder is renamed in below
        shutil.rmtree(dest, ignore_errors=True)
        os.replace(tmp, dest)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return True
