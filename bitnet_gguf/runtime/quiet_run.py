"""Run a llama.cpp program with its log held back: the text streams to the terminal, then one speed line.

llama-completion writes the generated text to stdout and everything else (loader, sampler, perf counters) to
stderr. Here stdout stays the terminal's (tokens appear as they are made, stdin still reaches -cnv chat), stderr
is read into memory, and at the end its perf counters become one line; when the program fails, its first error
line becomes ours.
"""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import threading
import time
from dataclasses import dataclass
from typing import Protocol

# common_perf_print's lines: "prompt eval time = 0.83 ms / 3 tokens (...)" and "eval time = 8.46 ms / 19 runs (...)"
_PERF = re.compile(r"\b(prompt eval|eval) time =\s*([\d.]+) ms /\s*(\d+) (?:tokens|runs)")
# a log line's prefix when timestamps/levels are on: "0.00.040.724 E " (level letter I, W, E, D)
_PREFIX = re.compile(r"^(?:\d+\.\d+\.\d+\.\d+ )?([IWED]) ")
_ERROR_WORDS = re.compile(r"error|failed|GGML_ASSERT|cannot|invalid|unknown", re.IGNORECASE)


@dataclass
class Speed:
    prompt_tokens: int = 0
    prompt_ms: float = 0.0
    gen_tokens: int = 0
    gen_ms: float = 0.0

    def line(self, peak_rss_bytes: int) -> str:
        def rate(n: int, ms: float) -> str:
            return f"{n / ms * 1000:.1f} t/s" if ms > 0 and n > 0 else "- t/s"

        return (f"[prompt {self.prompt_tokens} tokens, {rate(self.prompt_tokens, self.prompt_ms)} | "
                f"generated {self.gen_tokens} tokens, {rate(self.gen_tokens, self.gen_ms)} | "
                f"peak RSS {peak_rss_bytes / (1 << 20):.0f} MiB]")


def parse_speed(log: str) -> Speed:
    """The last perf counters in a llama.cpp log (-cnv prints them once, at the end of the session)."""
    s = Speed()
    for kind, ms, n in _PERF.findall(log):
        if kind == "prompt eval":
            s.prompt_ms, s.prompt_tokens = float(ms), int(n)
        else:
            s.gen_ms, s.gen_tokens = float(ms), int(n)
    return s


def first_error(log: str) -> str:
    """The line of a failed run's log that says what went wrong: an error-level line, else one that names an
    error, else the last line."""
    lines = [ln.strip() for ln in log.splitlines() if ln.strip()]
    for ln in lines:
        m = _PREFIX.match(ln)
        if m and m.group(1) == "E":
            return ln[m.end():].strip()
    for ln in lines:
        body = ln[m.end():] if (m := _PREFIX.match(ln)) else ln
        if _ERROR_WORDS.search(body):
            return body.strip()
    return lines[-1] if lines else "no message"


class RunGuard(Protocol):
    """Watches a running program for what it cannot report itself (runtime/rpc.StallGuard: a frozen RPC worker)."""

    def check(self, pid: int) -> str | None:
        """Called about every GUARD_POLL_S while the program runs; a reason stops the program."""

    def explain(self, log: str) -> str | None:
        """After a failure or a stop: what went wrong, when the guard knows better than the log's first error."""


GUARD_POLL_S = 0.25
STOP_GRACE_S = 5.0  # SIGTERM, then SIGKILL


def wait_child(proc: subprocess.Popen[bytes], guard: RunGuard | None = None) -> tuple[int, int, str | None]:
    """Wait for the program: its exit code, its peak RSS in bytes (0 where unknown) and, when the guard stopped
    it, the guard's reason."""
    if not hasattr(os, "wait4"):  # Windows: no rusage of a child, no guard
        return proc.wait(), 0, None
    stopped: str | None = None
    deadline: float | None = None
    while True:
        pid, status, usage = os.wait4(proc.pid, 0 if guard is None else os.WNOHANG)
        if pid:
            break
        time.sleep(GUARD_POLL_S)
        if stopped is None and guard is not None:
            stopped = guard.check(proc.pid)
            if stopped is not None:
                proc.terminate()
                deadline = time.monotonic() + STOP_GRACE_S
        elif deadline is not None and time.monotonic() > deadline:
            proc.kill()
            deadline = None
    proc.returncode = os.waitstatus_to_exitcode(status)
    return proc.returncode, usage.ru_maxrss * (1 if sys.platform == "darwin" else 1024), stopped  # Linux: KiB


def run_quietly(cmd: list[str], guard: RunGuard | None = None) -> int:
    """Run `cmd` with stdout and stdin passed through and stderr held; print the speed line (or the error) to
    stderr. Returns the program's exit code (128+N when killed by signal N, as a shell does)."""
    sys.stdout.flush()
    proc = subprocess.Popen(cmd, stderr=subprocess.PIPE)
    assert proc.stderr is not None
    chunks: list[bytes] = []
    # read in a thread: a full pipe would block the program, and the main thread must wait for the exit status
    reader = threading.Thread(target=lambda: chunks.extend(iter(lambda: proc.stderr.read(65536), b"")), daemon=True)
    reader.start()
    # Ctrl-C reaches the program directly (same process group): it stops generating and prints its counters;
    # we only wait for it
    previous = signal.signal(signal.SIGINT, signal.SIG_IGN)
    try:
        rc, peak, stopped = wait_child(proc, guard)
    finally:
        signal.signal(signal.SIGINT, previous)
    reader.join(timeout=5)
    log = b"".join(chunks).decode("utf-8", "replace")
    sys.stdout.flush()
    if stopped is None and (rc == 0 or rc == -signal.SIGINT):
        print(parse_speed(log).line(peak), file=sys.stderr, flush=True)
        return 0 if rc == 0 else 130
    print(f"error: {failure_line(os.path.basename(cmd[0]), rc, log, stopped, guard)} (run with -v for its full log)",
          file=sys.stderr)
    return failure_code(rc, stopped)


def failure_code(rc: int, stopped: str | None) -> int:
    """Our exit code for a failed run: the program's (128+N when killed by signal N, as a shell does), 1 when the
    guard stopped it."""
    if stopped is not None or rc == 0:
        return 1
    return 128 - rc if rc < 0 else rc


def failure_line(name: str, rc: int, log: str, stopped: str | None, guard: RunGuard | None) -> str:
    """One line for a program that failed (or that the guard stopped)."""
    detail = guard.explain(log) if guard is not None else None
    if stopped is not None:
        return stopped + (f": {detail}" if detail else "")
    if rc < 0:
        try:
            how = f"was killed by {signal.Signals(-rc).name}"
        except ValueError:
            how = f"was killed by signal {-rc}"
    else:
        how = f"exited with code {rc}"
    return f"{name} {how}: {detail or first_error(log).removeprefix('error: ')}"
