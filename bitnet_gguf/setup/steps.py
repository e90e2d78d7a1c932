"""Run setup steps with progress on the terminal and a full log per step in the log folder."""

from __future__ import annotations

import re
import subprocess
import sys
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import IO, TypeVar

from ..errors import BitnetError

T = TypeVar("T")
TAIL_LINES = 20
_PERCENT = re.compile(r"^\[\s*(\d+)%\]")


def say(log: IO[str] | None, text: str) -> None:
    """One line into a step's log (steps that run without a log stay quiet)."""
    if log is not None:
        print(text, file=log, flush=True)


class StepRunner:
    def __init__(self, log_dir: Path, total: int, quiet: bool = False) -> None:
        self.log_dir = Path(log_dir)
        self.log_dir.mkdir(parents=True, exist_ok=True)
        self.total = total
        self.index = 0
        self.quiet = quiet

    def _say(self, text: str, end: str = "\n") -> None:
        if not self.quiet:
            # progress and a failed step's log tail go to stdout: stderr holds only the one `error:` line
            print(text, end=end, file=sys.stdout, flush=True)

    def log_path(self, name: str) -> Path:
        return self.log_dir / f"{name}.log"

    def step(self, name: str, title: str, fn: Callable[[IO[str]], T]) -> T:
        """Run fn(log_file); on BitnetError or a failed command, show the log's tail and re-raise."""
        self.index += 1
        self._say(f"[{self.index}/{self.total}] {title} ...")
        start = time.monotonic()
        path = self.log_path(name)
        with open(path, "w") as log:
            try:
                result = fn(log)
            except BitnetError:
                log.flush()
                self._show_tail(path)
                raise
        self._say(f"[{self.index}/{self.total}] {title}: done in {time.monotonic() - start:.1f}s")
        return result

    def _show_tail(self, path: Path) -> None:
        lines = path.read_text(errors="replace").splitlines()[-TAIL_LINES:]
        if lines:
            self._say(f"--- last lines of {path} ---")
            for ln in lines:
                self._say("    " + ln)

    def run(self, cmd: Sequence[str], log: IO[str], what: str, cwd: Path | None = None,
            env: dict[str, str] | None = None, show_percent: bool = False) -> None:
        """Run cmd with its output in log; cmake's [ NN%] lines become a progress line."""
        print("$ " + " ".join(cmd), file=log, flush=True)
        try:
            proc = subprocess.Popen(cmd, cwd=cwd, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                                    text=True, errors="replace")
        except FileNotFoundError as e:
            raise BitnetError(f"{what}: {cmd[0]} not found ({e.strerror})") from None
        assert proc.stdout is not None
        last = -1
        for line in proc.stdout:
            log.write(line)
            m = _PERCENT.match(line) if show_percent else None
            if m and int(m.group(1)) > last:  # sub-makes restart at 0%: show the furthest point
                last = int(m.group(1))
                self._say(f"\r    {last:3d}%", end="")
        rc = proc.wait()
        if show_percent and last >= 0:
            self._say("")
        if rc != 0:
            log.flush()
            raise BitnetError(f"{what} failed (exit {rc}); full log: {log.name}")
