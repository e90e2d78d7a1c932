"""run_server.py's entry point: bind the front, start the supervised llama-server, serve until SIGINT/SIGTERM."""

from __future__ import annotations

import functools
import http.client
import json
import os
import shlex
import signal
import socket
import sys
import threading
from types import FrameType
from typing import Any

from ..errors import BitnetError, run_cli
from ..runtime import memory_fit, rpc
from ..runtime.inference import split_passthrough
from .metrics import RequestStats, Sampler
from .options import CHILD_HOST, ServeConfig, base_url, bind_error, build_config, free_loopback_port, open_warning, parser
from .proxy import App, FrontServer
from .rpc_watch import RpcWatch
from .supervisor import Supervisor

SHUTDOWN_GRACE_S = 15.0  # llama-server finishes the running decode step and exits in ~1-2 s


def say(line: str) -> None:
    print(line, file=sys.stderr, flush=True)


def bind_front(cfg: ServeConfig, app: App) -> FrontServer:
    """Listen on --host/--port before anything is loaded, so a taken port is one line and an instant exit."""
    try:
        family, _, _, _, addr = socket.getaddrinfo(cfg.host or None, cfg.port, type=socket.SOCK_STREAM,
                                                   flags=socket.AI_PASSIVE)[0]
    except socket.gaierror as e:
        raise BitnetError(f"cannot resolve --host {cfg.host}: {e.strerror}") from None
    try:
        return FrontServer(addr, app, family)
    except OSError as e:
        raise bind_error(cfg.host, cfg.port, e) from None


def child_n_ctx(port: int) -> int | None:
    """The context llama-server actually got (it may be smaller than -c: capped at the model's training context)."""
    conn = http.client.HTTPConnection(CHILD_HOST, port, timeout=5)
    try:
        conn.request("GET", "/v1/models")
        data = json.loads(conn.getresponse().read())
        return int(data["data"][0]["meta"]["n_ctx"])
    except (OSError, http.client.HTTPException, ValueError, KeyError, IndexError, TypeError):
        return None
    finally:
        conn.close()


class Server:
    def __init__(self, cfg: ServeConfig, app: App, front: FrontServer, watch: RpcWatch | None = None) -> None:
        self.cfg, self.app, self.front, self.watch = cfg, app, front, watch
        self.url = base_url(cfg.host, cfg.port)
        self.done = threading.Event()
        self.stop_asked = False

    def _on_signal(self, signum: int, _frame: FrameType | None) -> None:
        if not self.stop_asked:
            self.stop_asked = True
            say(f"bitnet-gguf: {signal.Signals(signum).name}, stopping the server")
            self.done.set()
        else:
            self.app.supervisor.kill()  # asked twice: don't wait for the grace period

    def _on_ready(self, first: bool) -> None:
        port = self.app.supervisor.port
        if port is not None:
            self.app.n_ctx = child_n_ctx(port) or self.app.n_ctx
        if first:
            u = self.url
            say(f"bitnet-gguf: server ready at {u} (OpenAI API: {u}/v1, chat: {u}/, dashboard: {u}/dashboard, "
                f"health: {u}/health, metrics: {u}/metrics.json and {u}/metrics)")

    def static_info(self) -> dict[str, Any]:
        lim = self.app.limits
        return {"model": {"path": str(self.cfg.model), "name": self.cfg.name, "n_ctx": self.app.n_ctx},
                "limits": {"max_body_bytes": lim.max_body, "max_tokens": self.app.max_tokens,
                           "parallel": _parallel(self.cfg.child_args), "api_key_required": lim.api_key is not None}}

    def run(self) -> int:
        sup = self.app.supervisor
        sup.on_ready = self._on_ready
        sup.on_failed = self.done.set
        for sig in (signal.SIGINT, signal.SIGTERM):
            signal.signal(sig, self._on_signal)
        sup.start()
        sampler = Sampler(self.app.stats, sup, self.static_info)
        self.app.sampler = sampler
        sampler.start()
        threading.Thread(target=self.front.serve_forever, kwargs={"poll_interval": 0.25}, name="front", daemon=True).start()
        while not self.done.wait(0.5):
            if self.watch is not None:
                self.watch.poll()
        # stop taking connections first, then let llama-server finish its decode step
        self.front.shutdown()
        self.front.server_close()
        sampler.stop()
        sup.stop(SHUTDOWN_GRACE_S)
        if self.stop_asked:
            return 0  # stopping was asked for; how llama-server ended is not an error
        return sup.exit_code or 1


def _parallel(child_args: list[str]) -> int | None:
    try:
        return int(child_args[child_args.index("-np") + 1])
    except (ValueError, IndexError):
        return None


def main(argv: list[str] | None = None) -> int:
    return run_cli(lambda: _main(argv))


def _main(argv: list[str] | None) -> int:
    ours, passthrough = split_passthrough(list(sys.argv[1:] if argv is None else argv))
    args = parser().parse_args(ours)
    cfg = build_config(args, passthrough)
    warning = open_warning(cfg.host, cfg.limits.api_key)
    if warning:
        say(warning)
    if args.dry_run:
        # the child's port is private and chosen at each start; this is one such choice
        print(shlex.join(cfg.child_command(free_loopback_port())))
        return 0
    explain = None
    if cfg.rpc_plan is None and not args.no_memory_check:  # with RPC workers, each host holds only its share
        memory_fit.check_fits(cfg.model, args.ctx_size)
    if cfg.rpc_plan is not None:
        rpc.check_plan(cfg.rpc_plan)  # a worker that is down would make llama-server abort while loading
        explain = functools.partial(rpc.lost_workers, cfg.rpc_plan.endpoints)
    app = App(cfg.limits, Supervisor(cfg.child_command, say, explain), RequestStats())
    watch = None if cfg.rpc_plan is None else RpcWatch(cfg.rpc_plan, args.rpc_timeout, app.supervisor, app.stats, say)
    front = bind_front(cfg, app)
    if os.name != "posix":
        say("warning: supervision and clean shutdown are tested on Linux only")
    return Server(cfg, app, front, watch).run()
