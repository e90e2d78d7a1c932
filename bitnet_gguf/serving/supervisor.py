"""The llama-server child: started on a private loopback port, watched, and restarted when it dies."""

from __future__ import annotations

import http.client
import json
import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable

from .options import CHILD_HOST, child_environment, free_loopback_port

POLL_S = 0.1  # how often a dead child is noticed; a restart then takes about the model's load time
MAX_FAILED_STARTS = 3  # a child that dies this many times in a row before it is ready is a configuration error


def _die_with_parent() -> None:
    """In the child, before exec: get SIGTERM if the front dies (even by SIGKILL), so no server is orphaned."""
    try:
        import ctypes

        pr_set_pdeathsig = 1
        ctypes.CDLL(None, use_errno=True).prctl(pr_set_pdeathsig, signal.SIGTERM)
    except (OSError, AttributeError):
        pass


def child_is_ready(port: int, timeout: float = 1.0) -> bool:
    """llama-server answers /health with 503 while it loads the model and 200 once it serves."""
    conn = http.client.HTTPConnection(CHILD_HOST, port, timeout=timeout)
    try:
        conn.request("GET", "/health")
        r = conn.getresponse()
        return r.status == 200 and json.loads(r.read() or b"{}").get("status") == "ok"
    except (OSError, http.client.HTTPException, ValueError):
        return False
    finally:
        conn.close()


def describe_exit(rc: int) -> str:
    if rc < 0:
        try:
            return f"killed by {signal.Signals(-rc).name}"
        except ValueError:
            return f"killed by signal {-rc}"
    return f"exited with code {rc}"


class Supervisor:
    """Keeps one llama-server running. States: starting, ready, restarting, stopping, failed."""

    def __init__(self, command_for_port: Callable[[int], list[str]], say: Callable[[str], None],
                 explain: Callable[[], str | None] | None = None) -> None:
        self._command_for_port = command_for_port
        self._say = say
        self._explain = explain  # when giving up: what the child's log cannot say (e.g. which RPC worker is gone)
        self._ready = threading.Event()
        self._stop = threading.Event()
        self._lock = threading.Lock()
        self._thread: threading.Thread | None = None
        self.child: subprocess.Popen[bytes] | None = None
        self.port: int | None = None
        self.state = "starting"
        self.starts = 0  # the metrics sampler compares it to notice that llama-server's counters restarted
        self.restarts = 0
        self.last_restart_s: float | None = None  # from noticing the death to serving again
        self.ever_ready = False
        self.exit_code: int | None = None  # set when supervision gave up; the front then exits with it
        self.on_ready: Callable[[bool], None] | None = None  # called with first=True once, then after each restart
        self.on_failed: Callable[[], None] | None = None
        self._grace_s = 15.0
        self._death_note: Callable[[], str] | None = None

    # --- used by the front ---

    def wait_ready(self, timeout: float) -> int | None:
        """The child's port once it serves (waiting up to `timeout` s while it starts or restarts), else None."""
        if self._ready.wait(timeout) and self.state == "ready":
            return self.port
        return None

    @property
    def child_pid(self) -> int | None:
        child = self.child
        return child.pid if child is not None and child.poll() is None else None

    # --- lifecycle ---
    # One thread starts, watches and stops every child. It must: the kernel delivers PR_SET_PDEATHSIG when the
    # *thread* that forked the child ends, so a child forked by a thread that ends first would get a second SIGTERM
    # (llama-server then skips its clean exit).

    def start(self) -> None:
        self._thread = threading.Thread(target=self._run, name="llama-server-supervisor", daemon=True)
        self._thread.start()

    def _spawn(self) -> None:
        port = free_loopback_port()
        # Own session: a terminal Ctrl-C reaches only the front, which stops the child exactly once.
        child = subprocess.Popen(self._command_for_port(port), env=child_environment(), start_new_session=os.name == "posix",
                                 preexec_fn=_die_with_parent if sys.platform.startswith("linux") else None)
        with self._lock:
            self.child, self.port = child, port
            self.starts += 1

    def _run(self) -> None:
        try:
            self._spawn()
        except OSError as e:
            self._say(f"error: cannot start llama-server: {e.strerror or e}")
            self._fail(1)
            return
        try:
            self._watch()
        finally:
            self._terminate()

    def _watch(self) -> None:
        failed_starts = 0
        died_at: float | None = None
        while not self._stop.is_set():
            child = self.child
            assert child is not None
            rc = child.poll()
            if rc is None:
                if not self._ready.is_set() and self.port is not None and child_is_ready(self.port):
                    first = not self.ever_ready
                    self.ever_ready = True
                    failed_starts = 0
                    if died_at is not None:
                        self.last_restart_s = time.monotonic() - died_at
                        self._say(f"bitnet-gguf: llama-server serving again after {self.last_restart_s:.1f} s")
                        died_at = None
                    self.state = "ready"
                    self._ready.set()
                    if self.on_ready is not None:
                        self.on_ready(first)
                self._stop.wait(POLL_S)
                continue
            if self._stop.is_set():
                break
            self._ready.clear()
            note, self._death_note = self._death_note, None
            if note is not None:
                self._say(note())
            if not self.ever_ready:
                # dying before it ever served is a configuration problem (model, flags): restarting won't help
                self._give_up(rc, "")
                return
            if died_at is None:
                died_at = time.monotonic()
                self.restarts += 1
                self._say(f"bitnet-gguf: llama-server {describe_exit(rc)}; restarting it")
            else:
                failed_starts += 1
                if failed_starts >= MAX_FAILED_STARTS:
                    self._give_up(rc, f" ({MAX_FAILED_STARTS} restarts in a row failed)")
                    return
            self.state = "restarting"
            self._stop.wait(0.5 * failed_starts)  # back off a little when restarts keep failing
            if not self._stop.is_set():
                try:
                    self._spawn()
                except OSError as e:
                    self._say(f"error: cannot start llama-server again: {e.strerror or e}")
                    self._fail(1)
                    return

    def _give_up(self, rc: int, why: str) -> None:
        detail = self._explain() if self._explain is not None else None
        self._say(f"error: llama-server {describe_exit(rc)}{why}{': ' + detail if detail else ''} (its log is above)")
        self._fail(128 - rc if rc < 0 else (rc or 1))  # killed by signal N: the shell's 128+N

    def _fail(self, code: int) -> None:
        self.state = "failed"
        self.exit_code = code
        self._ready.set()  # wake waiting requests: they get 503
        if self.on_failed is not None:
            self.on_failed()

    def _terminate(self) -> None:
        """SIGTERM the child (llama-server finishes the running decode step), SIGKILL after the grace period."""
        child = self.child
        if child is None or child.poll() is not None:
            return
        child.send_signal(signal.SIGTERM if os.name == "posix" else signal.SIGINT)
        try:
            child.wait(timeout=self._grace_s)
        except subprocess.TimeoutExpired:
            self._say("bitnet-gguf: llama-server did not stop in time, killing it")
            child.kill()
            child.wait(timeout=10)

    def stop(self, grace_s: float) -> None:
        """Stop supervising and stop the child; returns once it is gone."""
        self._grace_s = grace_s
        if self.state != "failed":
            self.state = "stopping"
        self._stop.set()
        self._ready.set()
        if self._thread is not None:
            self._thread.join(timeout=grace_s + 15)
        child = self.child
        if child is not None and child.poll() is None:  # the thread is stuck: don't leave the child behind
            child.kill()
            child.wait(timeout=10)

    def kill(self, note: Callable[[], str] | None = None) -> None:
        """Kill the child now: asked to stop twice (no grace period), or it hangs (rpc_watch.py: it is restarted,
        and `note()`, said first, runs once the child is gone, before its successor starts)."""
        child = self.child
        if child is not None and child.poll() is None:
            self._death_note = note
            child.kill()
