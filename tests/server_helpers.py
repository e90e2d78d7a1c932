"""Starting and stopping run_server.py / run_inference.py as real processes, with bounded waits."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
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


def run_inference(*args: str, stdin: str | None = None, timeout: float = 120) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, str(RUN_INFERENCE), *args], input=stdin, capture_output=True,
                          text=True, timeout=timeout)


def cli_generated_text(stdout: str, prompt: str) -> str:
    """The generated part of llama-completion's stdout: it echoes the prompt, then the tokens, then a blank line."""
    assert stdout.startswith(prompt), stdout[:500]
    text = stdout[len(prompt):]
    text = text.removesuffix("\n\n")
    return text.removesuffix(" [end of text]\n")
