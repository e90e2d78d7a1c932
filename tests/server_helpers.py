"""Starting and stopping run_server.py / run_inference.py as real processes, with bounded waits."""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from .conftest import REPO_ROOT

RUN_SERVER = REPO_ROOT / "run_server.py"
RUN_INFERENCE = REPO_ROOT / "run_inference.py"
HOST = "127.0.0.1"  # tests listen on loopback only
READY_TIMEOUT_S = 90.0
STOP_TIMEOUT_S = 20.0


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind((HOST, 0))
        return int(s.getsockname()[1])


def port_is_free(port: int) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            s.bind((HOST, port))
            return True
        except OSError:
            return False


def http_json(url: str, body: dict[str, Any] | None = None, timeout: float = 30) -> tuple[int, Any]:
    data = json.dumps(body).encode() if body is not None else None
    req = urllib.request.Request(url, data=data, headers={"Content-Type": "application/json"})
    try:
        with urllib.request.urlopen(req, timeout=timeout) as r:
            raw = r.read()
            return r.status, json.loads(raw) if r.headers.get_content_type() == "application/json" else raw.decode()
    except urllib.error.HTTPError as e:
        return e.code, e.read().decode(errors="replace")


@dataclass
class ServerProc:
    proc: subprocess.Popen[bytes]
    port: int
    log: Path

    @property
    def url(self) -> str:
        return f"http://{HOST}:{self.port}"

    def log_tail(self, n: int = 3000) -> str:
        return self.log.read_text(errors="replace")[-n:] if self.log.exists() else ""

    def wait_ready(self, timeout: float = READY_TIMEOUT_S) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise AssertionError(f"run_server.py exited with {self.proc.returncode}:\n{self.log_tail()}")
            try:
                status, body = http_json(self.url + "/health", timeout=2)
                if status == 200 and isinstance(body, dict) and body.get("status") == "ok":
                    return
            except (urllib.error.URLError, OSError):
                pass
            time.sleep(0.25)
        raise AssertionError(f"server not ready after {timeout:.0f}s:\n{self.log_tail()}")

    def stop(self, sig: int = signal.SIGTERM, timeout: float = STOP_TIMEOUT_S) -> int:
        """Signal the wrapper and wait; kill as a last resort so no test leaves a server behind."""
        if self.proc.poll() is None:
            self.proc.send_signal(sig)
            try:
                self.proc.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(timeout=10)
        return self.proc.returncode


def start_server(model: Path, log: Path, *extra: str, port: int | None = None) -> ServerProc:
    port = port or free_port()
    with open(log, "wb") as out:
        proc = subprocess.Popen(
            [sys.executable, str(RUN_SERVER), "-m", str(model), "--host", HOST, "--port", str(port),
             "-t", "2", "-c", "2048", "--parallel", "4", *extra],
            stdout=out, stderr=subprocess.STDOUT, env=os.environ.copy())
    return ServerProc(proc, port, log)


@contextlib.contextmanager
def running_server(model: Path, log: Path, *extra: str) -> Iterator[ServerProc]:
    """A started run_server.py, ready to answer, stopped on the way out."""
    srv = start_server(model, log, *extra)
    try:
        srv.wait_ready()
        yield srv
    finally:
        srv.stop()


def chromium() -> str | None:
    return shutil.which("chromium") or shutil.which("chromium-browser")


def require_chromium() -> str:
    """Debian's chromium; CI installs it (.ci/run), so there its absence fails the test instead of skipping it."""
    import pytest

    exe = chromium()
    if exe is None:
        message = "chromium is not installed (apt-get install chromium)"
        if os.environ.get("CI"):
            pytest.fail(message)
        pytest.skip(message)
    return exe


def run_chromium(url: str, *args: str, budget_ms: int = 10000, timeout: float = 60) -> subprocess.CompletedProcess[str]:
    """Headless Chromium on a page. --virtual-time-budget runs the page's timers and fetches (fast-forwarded) before
    the DOM is dumped or the screenshot taken."""
    exe = chromium()
    assert exe is not None
    return subprocess.run([exe, "--headless", "--no-sandbox", "--disable-gpu", "--no-first-run", "--hide-scrollbars",
                           "--window-size=1200,800", f"--virtual-time-budget={budget_ms}", *args, url],
                          capture_output=True, text=True, timeout=timeout)


class Browser:
    """Headless Chromium driven over the DevTools protocol (a minimal websocket client, standard library only).
    For pages that stream: --dump-dom fast-forwards virtual time and would not wait for the tokens."""

    def __init__(self, profile_dir: Path, timeout: float = 30) -> None:
        import base64
        import secrets

        exe = require_chromium()
        port = free_port()
        self.proc = subprocess.Popen([exe, "--headless", "--no-sandbox", "--disable-gpu", "--no-first-run",
                                      f"--remote-debugging-port={port}", f"--user-data-dir={profile_dir}",
                                      "--window-size=1200,800", "about:blank"],
                                     stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        self._id = 0
        try:
            deadline = time.monotonic() + timeout
            while True:
                try:
                    _, targets = http_json(f"http://{HOST}:{port}/json/list", timeout=2)
                    ws_url = next(t["webSocketDebuggerUrl"] for t in targets if t.get("type") == "page")
                    break
                except (urllib.error.URLError, OSError, StopIteration, TypeError, ValueError):
                    if time.monotonic() > deadline or self.proc.poll() is not None:
                        raise AssertionError("chromium's DevTools endpoint did not come up") from None
                    time.sleep(0.2)
            path = ws_url.split(str(port), 1)[1]
            self.sock = socket.create_connection((HOST, port), timeout=timeout)
            key = base64.b64encode(secrets.token_bytes(16)).decode()
            self.sock.sendall(f"GET {path} HTTP/1.1\r\nHost: {HOST}:{port}\r\nUpgrade: websocket\r\n"
                              f"Connection: Upgrade\r\nSec-WebSocket-Key: {key}\r\nSec-WebSocket-Version: 13\r\n\r\n".encode())
            head = b""
            while b"\r\n\r\n" not in head:
                chunk = self.sock.recv(1)
                assert chunk, "chromium closed the websocket handshake"
                head += chunk
            assert head.startswith(b"HTTP/1.1 101"), head
        except BaseException:
            self.close()
            raise

    def _send(self, text: str) -> None:
        import secrets

        data = text.encode()
        n = len(data)
        header = bytes([0x81]) + (bytes([0x80 | n]) if n < 126 else
                                  bytes([0x80 | 126]) + n.to_bytes(2, "big") if n < 65536 else
                                  bytes([0x80 | 127]) + n.to_bytes(8, "big"))
        mask = secrets.token_bytes(4)  # client frames are masked (RFC 6455)
        self.sock.sendall(header + mask + bytes(b ^ mask[i % 4] for i, b in enumerate(data)))

    def _exact(self, n: int) -> bytes:
        buf = b""
        while len(buf) < n:
            chunk = self.sock.recv(n - len(buf))
            assert chunk, "chromium closed the websocket"
            buf += chunk
        return buf

    def _recv(self) -> str:
        message = b""
        while True:
            b0, b1 = self._exact(2)
            n = b1 & 0x7F
            if n == 126:
                n = int.from_bytes(self._exact(2), "big")
            elif n == 127:
                n = int.from_bytes(self._exact(8), "big")
            payload = self._exact(n)
            if b0 & 0x0F == 0x8:
                raise AssertionError("chromium closed the websocket")
            message += payload
            if b0 & 0x80:  # FIN: the last fragment
                return message.decode()

    def call(self, method: str, **params: Any) -> dict[str, Any]:
        self._id += 1
        self._send(json.dumps({"id": self._id, "method": method, "params": params}))
        while True:
            reply = json.loads(self._recv())
            if reply.get("id") == self._id:  # anything else is an event we did not ask for
                assert "error" not in reply, reply
                return reply.get("result", {})

    def evaluate(self, expression: str) -> Any:
        return self.call("Runtime.evaluate", expression=expression, returnByValue=True).get("result", {}).get("value")

    def wait_for(self, expression: str, timeout: float = 30) -> Any:
        """Poll a JavaScript expression in real time until it is truthy; its value."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            value = self.evaluate(expression)
            if value:
                return value
            time.sleep(0.2)
        raise AssertionError(f"not true after {timeout:.0f} s: {expression}")

    def close(self) -> None:
        sock = getattr(self, "sock", None)
        if sock is not None:
            sock.close()
        if self.proc.poll() is None:
            self.proc.kill()
        self.proc.wait(timeout=10)


def run_inference(*args: str, stdin: str | None = None, timeout: float = 120) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, str(RUN_INFERENCE), *args], input=stdin, capture_output=True,
                          text=True, timeout=timeout)


def cli_generated_text(stdout: str, prompt: str) -> str:
    """The generated part of llama-completion's stdout: it echoes the prompt, then the tokens, then a blank line."""
    assert stdout.startswith(prompt), stdout[:500]
    text = stdout[len(prompt):]
    text = text.removesuffix("\n\n")
    return text.removesuffix(" [end of text]\n")
