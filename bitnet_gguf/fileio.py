"""Outputs appear whole or not at all: every file this package writes goes through here.

A temporary file is written beside the output and renamed over it at the end (rename is atomic on one file
system), so a failure, a full disk or Ctrl-C leaves the previous output as it was. Temporary names carry the
writer's pid: a writer killed with SIGKILL cannot clean up, so the next writer of the same output removes the
leftovers of writers that are no longer running. Long writes (models) ask for `terminable=True`: SIGTERM and SIGHUP
then remove the temporary too, as Ctrl-C always does.
"""

from __future__ import annotations

import contextlib
import errno
import json
import os
import re
import shutil
import signal
import tempfile
import threading
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any

from .errors import BitnetError

_TMP_SUFFIX = ".tmp"


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True  # someone else's live process
    return True


def remove_stale_temporaries(path: Path) -> None:
    """Delete `.{name}.{pid}.*.tmp` beside `path` left by writers that died (kill -9, power loss)."""
    pattern = re.compile(rf"^\.{re.escape(path.name)}\.(\d+)\.[^.]+{re.escape(_TMP_SUFFIX)}$")
    with contextlib.suppress(OSError):
        for p in path.parent.iterdir():
            m = pattern.match(p.name)
            if m and int(m.group(1)) != os.getpid() and not _pid_alive(int(m.group(1))):
                with contextlib.suppress(OSError):
                    shutil.rmtree(p) if p.is_dir() and not p.is_symlink() else p.unlink()


def check_output_path(path: Path, flag: str = "output") -> None:
    """One line for an output path that can never be written: a folder, or a parent that is a file."""
    path = Path(path)
    if path.is_dir():
        raise BitnetError(f"{flag} {path}: is a folder, expected a file path")
    for parent in path.parents:
        if parent.exists():
            if not parent.is_dir():
                raise BitnetError(f"{flag} {path}: {parent} is a file, expected a folder")
            try:  # os.access() says yes to root even on a read-only or pseudo file system: try for real
                tempfile.TemporaryFile(dir=parent).close()
            except OSError as e:
                raise BitnetError(f"{flag} {path}: folder {parent} is not writable ({e.strerror})") from None
            break


def _write_error(path: Path, e: OSError) -> BitnetError:
    what = {errno.ENOSPC: "disk full", errno.EFBIG: "file size limit reached", errno.EDQUOT: "disk quota exceeded"}
    # numpy's tofile reports a short write without an errno: the disk or the file size limit ran out
    why = what.get(e.errno or 0, e.strerror) or f"short write ({e}): disk full or file size limit reached"
    return BitnetError(f"cannot write {path}: {why}; the previous file (if any) is unchanged")


# the signals that kill a process by default, without Python unwinding it (SIGINT already raises KeyboardInterrupt)
UNWOUND_SIGNALS = (signal.SIGTERM, signal.SIGHUP)


class _Terminated(BaseException):
    """Raised by our handler in place of a terminating signal (BaseException: no `except Exception` stops it)."""

    def __init__(self, signum: int) -> None:
        super().__init__(signum)
        self.signum = signum


@contextlib.contextmanager
def signals_unwind() -> Iterator[None]:
    """While the block runs, SIGTERM and SIGHUP unwind it like Ctrl-C (so `finally` cleanups run), then the
    signal is delivered again with its default action: the process still ends killed by that signal.

    Only signals at their default action are taken (an ignored signal or the program's own handler keeps its
    meaning), and only in the main thread, the one Python runs handlers in; each is restored at the end."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    previous = {s: signal.getsignal(s) for s in UNWOUND_SIGNALS}
    taken = [s for s, h in previous.items() if h == signal.SIG_DFL]
    received: list[int] = []

    def handler(signum: int, frame: object) -> None:
        received.append(signum)
        if len(received) == 1:  # a second signal must not interrupt the cleanup the first one started
            raise _Terminated(signum)

    for s in taken:
        signal.signal(s, handler)
    try:
        yield
    except _Terminated:
        pass  # the block's cleanups have run; now die of the signal
    finally:
        for s in taken:
            signal.signal(s, previous[s])
    if received:
        os.kill(os.getpid(), received[0])
        raise SystemExit(128 + received[0])  # not reached: the default action ends the process


@contextlib.contextmanager
def atomic_output(path: Path, directory: bool = False, terminable: bool = False) -> Iterator[Path]:
    """Yield a temporary path next to `path` (a file, or an empty folder with directory=True); rename it into
    place only if the block succeeds. Write errors (disk full, RLIMIT_FSIZE, permissions) become one line.
    terminable=True (long writes): SIGTERM / SIGHUP during the block also remove the temporary (signals_unwind)."""
    with signals_unwind() if terminable else contextlib.nullcontext(), _atomic_output(path, directory) as tmp:
        yield tmp


@contextlib.contextmanager
def _atomic_output(path: Path, directory: bool) -> Iterator[Path]:
    path = Path(path)
    if directory:
        check_output_path(path / "x")  # the folder itself may exist (empty): judge its parent
    else:
        check_output_path(path)
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
    except OSError as e:
        raise BitnetError(f"cannot create folder {path.parent}: {e.strerror}") from None
    remove_stale_temporaries(path)
    prefix = f".{path.name}.{os.getpid()}."
    try:
        if directory:
            tmp = tempfile.mkdtemp(prefix=prefix, suffix=_TMP_SUFFIX, dir=path.parent)
        else:
            fd, tmp = tempfile.mkstemp(prefix=prefix, suffix=_TMP_SUFFIX, dir=path.parent)
            os.close(fd)
    except OSError as e:
        raise _write_error(path, e) from None
    try:
        try:
            umask = os.umask(0)
            os.umask(umask)
            os.chmod(tmp, (0o777 if directory else 0o666) & ~umask)  # mkstemp creates 0600; outputs get the usual permissions
            yield Path(tmp)
            if directory and path.is_dir() and not any(path.iterdir()):
                path.rmdir()  # rename() replaces an empty folder only on some systems
            os.replace(tmp, path)
        except OSError as e:
            # errors writing our own temporary (no filename, or its name) are the output's; others pass as they are
            if e.filename is None or str(e.filename).startswith(tmp) or e.filename == str(path):
                raise _write_error(path, e) from None
            raise
    finally:
        with contextlib.suppress(OSError):
            if os.path.isdir(tmp) and not os.path.islink(tmp):
                shutil.rmtree(tmp)
            elif os.path.lexists(tmp):
                os.unlink(tmp)


def write_text_atomic(path: Path, text: str) -> None:
    """Replace a small text file (a stamp, a result table) without ever leaving it half-written."""
    with atomic_output(path) as tmp:
        tmp.write_text(text, encoding="utf-8")


def read_json_record(path: Path) -> Any:
    """A JSON record this package wrote (a stamp, a tuning result); None when it is missing or damaged, so the
    caller remakes it instead of failing on it."""
    try:
        return json.loads(Path(path).read_text())
    except (OSError, ValueError):
        return None


# --- stamps: what an output was made from ------------------------------------------------------------------

def stamp_path(output: Path) -> Path:
    return Path(output).with_name(Path(output).name + ".stamp.json")


def fingerprint(files: Iterable[Path]) -> list[list[object]]:
    """Name, size and mtime (ns) of each file: cheap on multi-GB checkpoints, and any rewrite changes it."""
    out: list[list[object]] = []
    for f in sorted(Path(p) for p in files):
        st = f.stat()
        out.append([f.name, st.st_size, st.st_mtime_ns])
    return out


def output_record(output: Path, inputs: dict[str, Any]) -> dict[str, Any]:
    """The stamp of `output`: what it was made from (`inputs`: tool version, options, input fingerprints) and the
    output's own size and mtime, so a file replaced by hand never matches an old stamp."""
    st = Path(output).stat()
    return {"inputs": inputs, "output": [st.st_size, st.st_mtime_ns]}


def stamp_matches(output: Path, inputs: dict[str, Any]) -> bool:
    """Whether `output` exists and was made from exactly `inputs` (its stamp says so and the file is unchanged)."""
    saved = read_json_record(stamp_path(output))
    if not isinstance(saved, dict) or not Path(output).is_file():
        return False
    try:
        return saved == output_record(output, inputs)
    except OSError:
        return False


def write_stamp(output: Path, inputs: dict[str, Any]) -> None:
    write_text_atomic(stamp_path(output), json.dumps(output_record(output, inputs), indent=1) + "\n")
