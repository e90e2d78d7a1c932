"""run_server.py: our llama-server with OpenAI-compatible routes, supervised so it starts and stops cleanly.

llama-server already speaks /v1/completions, /v1/chat/completions (with streaming), /health and, with
--metrics, Prometheus /metrics. This wrapper adds what bitnet.cpp's run_inference_server.py lacks: a clear
message for a taken port, the right chat template for BitNet models, and shutdown on SIGINT/SIGTERM that
always leaves no server behind.
"""

from __future__ import annotations

import argparse
import errno
import json
import os
import shlex
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from types import FrameType

from ..errors import BitnetError
from ..formats.gguf_read import read_metadata
from ..paths import build_dir
from . import chat_templates
from .inference import add_shared_options, split_passthrough
from .locate import find_tool, resolve_model
from .threads import physical_cores

SHUTDOWN_GRACE_S = 15.0  # llama-server finishes the running decode step and exits in ~1-2 s


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="run_server.py",
        description="Serve a BitNet GGUF over an OpenAI-compatible HTTP API (llama-server, continuous batching). "
                    "Options after -- go to llama-server unchanged.")
    add_shared_options(p, "llama-server", "/v1/chat/completions")
    p.add_argument("--host", default="127.0.0.1", help="address to listen on (default: 127.0.0.1; 0.0.0.0 = every interface)")
    p.add_argument("--port", type=int, default=8080, help="port (default: 8080)")
    p.add_argument("-c", "--ctx-size", type=int, default=2048,
                   help="KV cache size in tokens, shared by all parallel requests (default: 2048)")
    p.add_argument("-n", "--n-predict", type=int, default=4096,
                   help="token limit for requests that set no max_tokens (default: 4096, as bitnet.cpp)")
    p.add_argument("-np", "--parallel", type=int, default=4, help="requests decoded together (slots; default: 4)")
    p.add_argument("-temp", "--temperature", type=float, default=0.8,
                   help="temperature for requests that set none (default: 0.8)")
    return p


def build_command(args: argparse.Namespace, passthrough: list[str]) -> list[str]:
    if not 0 < args.port < 65536:
        raise BitnetError(f"--port {args.port} is not a valid port (1-65535)")
    if args.parallel < 1:
        raise BitnetError("--parallel must be at least 1")
    exe = find_tool("llama-server", build_dir(args.build_dir))
    model = resolve_model(args.model)
    template = chat_templates.select(read_metadata(model), args.chat_template)
    threads = args.threads if args.threads and args.threads > 0 else physical_cores()
    return [
        str(exe), "-m", str(model), "--host", args.host, "--port", str(args.port),
        "-t", str(threads), "-c", str(args.ctx_size), "-n", str(args.n_predict), "--temp", str(args.temperature),
        # -cb: continuous batching (new requests join the running batch); -kvu: one KV pool for all slots, so
        # a single request may still use the whole -c instead of -c / --parallel
        "-cb", "-np", str(args.parallel), "-kvu", "--metrics",
        *chat_templates.llama_cpp_args(template),
        *passthrough,
    ]


def check_port_free(host: str, port: int) -> None:
    """Fail early with one line when host:port cannot be listened on (llama-server would bury it in its log)."""
    try:
        family, socktype, proto, _, addr = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE)[0]
    except socket.gaierror as e:
        raise BitnetError(f"cannot resolve --host {host}: {e.strerror}") from None
    with socket.socket(family, socktype, proto) as s:
        # llama-server sets SO_REUSEADDR too, so a port in TIME_WAIT (a server just stopped) is not "taken"
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            s.bind(addr)
        except OSError as e:
            if e.errno == errno.EADDRINUSE:
                raise BitnetError(f"{host}:{port} is already in use (another server running?); choose another --port") from None
            raise BitnetError(f"cannot listen on {host}:{port}: {e.strerror}") from None


def base_url(host: str, port: int) -> str:
    """URL for reaching the server from this machine (a wildcard address is reached through loopback)."""
    reach = {"0.0.0.0": "127.0.0.1", "::": "::1", "": "127.0.0.1"}.get(host, host)
    return f"http://[{reach}]:{port}" if ":" in reach else f"http://{reach}:{port}"


def is_ready(url: str) -> bool:
    """llama-server answers /health with 503 while it loads the model and 200 once it serves."""
    try:
        with urllib.request.urlopen(url + "/health", timeout=1) as r:
            return r.status == 200 and json.load(r).get("status") == "ok"
    except (urllib.error.URLError, OSError, ValueError):
        return False


def _die_with_parent() -> None:
    """In the child, before exec: get SIGTERM if this wrapper dies (even by SIGKILL), so no server is orphaned."""
    try:
        import ctypes

        pr_set_pdeathsig = 1
        ctypes.CDLL(None, use_errno=True).prctl(pr_set_pdeathsig, signal.SIGTERM)
    except (OSError, AttributeError):
        pass


class Supervisor:
    """Runs llama-server, reports readiness, and turns the first SIGINT/SIGTERM into a clean shutdown."""

    def __init__(self, cmd: list[str], url: str) -> None:
        self.cmd = cmd
        self.url = url
        self.child: subprocess.Popen[bytes] | None = None
        self.stop_at: float | None = None

    def _on_signal(self, signum: int, _frame: FrameType | None) -> None:
        if self.child is None or self.child.poll() is not None:
            return
        if self.stop_at is None:
            self.stop_at = time.monotonic()
            print(f"bitnet-gguf: {signal.Signals(signum).name}, stopping the server", file=sys.stderr, flush=True)
            # forwarded exactly once: llama-server treats a second SIGINT as "terminate immediately"
            self.child.send_signal(signal.SIGTERM if os.name == "posix" else signum)
        else:
            self.child.kill()  # asked twice: don't wait for the grace period

    def run(self) -> int:
        posix = os.name == "posix"
        # Own session: a terminal Ctrl-C reaches only us, and we forward it once (see _on_signal).
        self.child = subprocess.Popen(self.cmd, start_new_session=posix,
                                      preexec_fn=_die_with_parent if sys.platform.startswith("linux") else None)
        for sig in (signal.SIGINT, signal.SIGTERM):
            signal.signal(sig, self._on_signal)
        ready = False
        while True:
            try:
                rc = self.child.wait(timeout=0.25)
                break
            except subprocess.TimeoutExpired:
                pass
            if self.stop_at is not None:
                if time.monotonic() - self.stop_at > SHUTDOWN_GRACE_S:
                    print("bitnet-gguf: the server did not stop in time, killing it", file=sys.stderr, flush=True)
                    self.child.kill()
            elif not ready and is_ready(self.url):
                ready = True
                print(f"bitnet-gguf: server ready at {self.url} (OpenAI API: {self.url}/v1, "
                      f"health: {self.url}/health, metrics: {self.url}/metrics)", file=sys.stderr, flush=True)
        if self.stop_at is not None:
            return 0  # stopping was asked for; how llama-server ended is not an error
        if rc != 0:
            print(f"error: llama-server exited with code {rc} (its log is above)", file=sys.stderr)
        return 128 - rc if rc < 0 else rc  # killed by signal N: the shell's 128+N


def main(argv: list[str] | None = None) -> int:
    ours, passthrough = split_passthrough(list(sys.argv[1:] if argv is None else argv))
    args = parser().parse_args(ours)
    try:
        cmd = build_command(args, passthrough)
        if args.dry_run:
            print(shlex.join(cmd))
            return 0
        check_port_free(args.host, args.port)
    except BitnetError as e:
        print(f"error: {e}", file=sys.stderr)
        return 1
    return Supervisor(cmd, base_url(args.host, args.port)).run()
