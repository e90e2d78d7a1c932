"""The front HTTP server: guards each request, serves the pages and figures, and streams the rest to llama-server.

Standard library only: ThreadingHTTPServer (a thread per connection, which suits a handful of slow streaming
clients) and http.client to the child. Streamed responses are passed on chunk by chunk as llama-server writes
them, so tokens reach the client as soon as they are generated.
"""

from __future__ import annotations

import http.client
import json
import socket
import socketserver
import sys
import threading
import time
import urllib.parse
from dataclasses import dataclass, field
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

from . import guard
from .guard import ApiError
from .metrics import RequestStats, Sampler, StreamTally, tokens_in_response
from .options import CHILD_HOST, Limits
from .supervisor import Supervisor

STATIC_DIR = Path(__file__).resolve().parent / "static"
PAGES = {"/": "chat.html", "/chat": "chat.html", "/dashboard": "dashboard.html"}
CONTENT_TYPES = {".html": "text/html; charset=utf-8", ".js": "text/javascript; charset=utf-8",
                 ".css": "text/css; charset=utf-8", ".svg": "image/svg+xml", ".png": "image/png", ".txt": "text/plain"}
# no inline script or style in our pages, and nothing loaded from elsewhere
CSP = "default-src 'self'; img-src 'self' data:; object-src 'none'; base-uri 'none'; frame-ancestors 'none'"
HOP_BY_HOP = frozenset({"connection", "keep-alive", "proxy-authenticate", "proxy-authorization", "te", "trailer",
                        "transfer-encoding", "upgrade", "host", "content-length", "expect"})
IDLE_TIMEOUT_S = 60.0  # an idle keep-alive connection (or a client that stops sending its body) is closed
READY_WAIT_S = 30.0  # a request arriving while llama-server (re)starts waits this long before it gets 503
UPSTREAM_TIMEOUT_S = 600.0  # longest silence from llama-server (a big model's long prompt) before giving up
DRAIN_LIMIT = 64 << 20  # a refused body up to this size is read and dropped so the client sees our answer
CHUNK = 64 << 10
MAX_CONNECTIONS = 512  # open client connections (one thread each); more get 503 at once
TOO_MANY = guard.error_body("too many open connections; retry shortly", "server_error", "too_many_connections")


class ClientGone(Exception):
    """The client closed its connection (walked away mid-stream)."""


def load_static(directory: Path = STATIC_DIR) -> dict[str, tuple[bytes, str]]:
    """Every shipped asset, read once: name -> (bytes, content type)."""
    out = {}
    for p in sorted(directory.iterdir()) if directory.is_dir() else []:
        if p.is_file() and p.suffix in CONTENT_TYPES:
            out[p.name] = (p.read_bytes(), CONTENT_TYPES[p.suffix])
    return out


@dataclass
class App:
    """What every request handler shares."""

    limits: Limits
    supervisor: Supervisor
    stats: RequestStats
    sampler: Sampler | None = None
    static: dict[str, tuple[bytes, str]] = field(default_factory=load_static)
    n_ctx: int | None = None  # learned from llama-server once it is loaded

    @property
    def max_tokens(self) -> int | None:
        return self.limits.max_tokens or self.n_ctx


class FrontServer(ThreadingHTTPServer):
    daemon_threads = True  # streams still running at shutdown must not hold the process
    request_queue_size = 128

    def __init__(self, address: tuple[str, int], app: App, family: int = socket.AF_INET) -> None:
        self.address_family = family
        self.app = app
        self._connections = 0
        self._count_lock = threading.Lock()
        super().__init__(address, Handler)

    def process_request(self, request: Any, client_address: Any) -> None:
        # A thread per connection: bound them, so a flood of idle connections cannot exhaust the process.
        with self._count_lock:
            full = self._connections >= MAX_CONNECTIONS
            if not full:
                self._connections += 1
        if full:
            try:
                request.sendall(b"HTTP/1.1 503 Service Unavailable\r\nContent-Type: application/json\r\n"
                                b"Retry-After: 2\r\nConnection: close\r\nContent-Length: %d\r\n\r\n%s"
                                % (len(TOO_MANY), TOO_MANY))
            except OSError:
                pass
            self.shutdown_request(request)
            return
        super().process_request(request, client_address)

    def process_request_thread(self, request: Any, client_address: Any) -> None:
        try:
            super().process_request_thread(request, client_address)
        finally:
            with self._count_lock:
                self._connections -= 1

    def handle_error(self, request: Any, client_address: Any) -> None:
        """A client resetting its connection is normal under load (walking away): no traceback. Anything else:
        one line, and the server goes on."""
        exc = sys.exc_info()[1]
        if isinstance(exc, (ConnectionError, TimeoutError)):
            return
        print(f"bitnet-gguf: error while serving {client_address[0]}: {type(exc).__name__}: {exc}", file=sys.stderr, flush=True)

    def server_bind(self) -> None:
        # HTTPServer.server_bind looks the host name up (getfqdn), which can stall for seconds on 0.0.0.0
        socketserver.TCPServer.server_bind(self)
        self.server_name, self.server_port = str(self.server_address[0]), int(self.server_address[1])


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"  # keep-alive, which the OpenAI client's connection pool relies on
    server_version = "bitnet-gguf"
    sys_version = ""
    timeout = IDLE_TIMEOUT_S
    server: FrontServer
    _body_pending = 0  # bytes of the request body not read yet (they must be read or the connection closed)

    @property
    def app(self) -> App:
        return self.server.app

    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 (the base class's name)
        pass  # no access log: under load it would cost more than the requests

    # --- answers ---

    def _send(self, status: int, body: bytes, content_type: str = "application/json",
              headers: dict[str, str] | None = None) -> None:
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(body)))
        for k, v in (headers or {}).items():
            self.send_header(k, v)
        if self.close_connection:
            self.send_header("Connection", "close")
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(body)

    def _refuse(self, e: ApiError, count: bool = True) -> None:
        self._drop_body()
        headers = {"WWW-Authenticate": "Bearer"} if e.status == 401 else {}
        if e.status == 503:
            headers["Retry-After"] = "2"
        try:
            self._send(e.status, e.body(), headers=headers)
        except OSError:
            self.close_connection = True
        if count:
            self.app.stats.end(e.status, proxied=False)

    def send_error(self, code: int, message: str | None = None, explain: str | None = None) -> None:
        """The base class's errors (bad request line, headers too long, unknown method) as JSON, and 4xx."""
        if code == HTTPStatus.NOT_IMPLEMENTED:
            code = HTTPStatus.METHOD_NOT_ALLOWED
        self.close_connection = True
        self._refuse(ApiError(code, message or HTTPStatus(code).phrase, HTTPStatus(code).phrase.lower().replace(" ", "_")))

    def _drop_body(self) -> None:
        """Read and discard a request body we refuse, so the client is not reset before it reads our answer."""
        left, self._body_pending = self._body_pending, 0
        if left <= 0:
            return
        if left > DRAIN_LIMIT:
            self.close_connection = True
            return
        try:
            while left > 0:
                got = self.rfile.read(min(CHUNK, left))
                if not got:
                    break
                left -= len(got)
        except OSError:
            pass
        if left:
            self.close_connection = True

    # --- routing ---

    def _route(self) -> tuple[str, str]:
        parts = urllib.parse.urlsplit(self.path)
        return parts.path or "/", parts.query

    def _is_open(self, path: str) -> bool:
        """Routes that need no API key: health for load balancers, and the static pages (they hold no data)."""
        return path == "/health" or path in PAGES or path.startswith("/static/") or path == "/favicon.ico"

    def handle_expect_100(self) -> bool:
        """Refuse before the body is sent (curl asks first for bodies over 1 MB)."""
        path, _ = self._route()
        try:
            if not self._is_open(path):
                guard.check_api_key(self.headers, self.app.limits.api_key)
            if self.command == "POST":
                guard.check_length(self.headers, self.app.limits)
        except ApiError as e:
            self.close_connection = True  # the body may follow anyway: never parse it as a request
            self._refuse(e)
            return False
        return super().handle_expect_100()

    def do_GET(self) -> None:
        path, query = self._route()
        if path == "/health":
            self._health()
        elif path in PAGES:
            self._static(PAGES[path])
        elif path.startswith("/static/"):
            self._static(path.removeprefix("/static/"))
        elif path == "/favicon.ico":
            self._send(204, b"")
        else:
            if not self._authorized():
                return
            if path == "/metrics.json":
                self._metrics_json(query)
            else:
                self._proxy(None, generation=False)

    def do_POST(self) -> None:
        path, _ = self._route()
        try:
            self._body_pending = guard.check_length(self.headers, self.app.limits)
        except ApiError as e:
            self._body_pending = int(self.headers.get("Content-Length") or 0) if e.status == 413 else 0
            if e.status != 413:
                self.close_connection = True  # we cannot tell where this body ends
            self._refuse(e)
            return
        if not self._authorized():
            return
        try:
            body = self._read_body()
            req = guard.parse_json_body(body)
            generation = path in guard.GENERATION_PATHS
            if generation:
                guard.check_generation(path, req, self.app.limits, self.app.max_tokens)
        except ApiError as e:
            self._refuse(e)
            return
        self._proxy(body, generation=generation)

    def do_OPTIONS(self) -> None:
        # CORS preflights carry no credentials by design: llama-server answers them, without a key
        self._proxy(None, generation=False)

    def _method_not_allowed(self) -> None:
        self._refuse(ApiError(405, f"method {self.command} is not allowed here", "method_not_allowed"))

    do_PUT = do_DELETE = do_PATCH = do_HEAD = _method_not_allowed

    def _authorized(self) -> bool:
        try:
            guard.check_api_key(self.headers, self.app.limits.api_key)
            return True
        except ApiError as e:
            self._refuse(e)
            return False

    def _read_body(self) -> bytes:
        want = self._body_pending
        chunks, got = [], 0
        try:
            while got < want:
                part = self.rfile.read(min(CHUNK, want - got))
                if not part:
                    break
                chunks.append(part)
                got += len(part)
        except OSError:
            pass
        self._body_pending = 0
        if got < want:
            self.close_connection = True
            raise ApiError(400, f"request body ended after {got} of {want} bytes (Content-Length)", "incomplete_body")
        return b"".join(chunks)

    # --- our own routes ---

    def _health(self) -> None:
        state = self.app.supervisor.state
        if state == "ready":
            self._send(200, b'{"status": "ok"}')
        else:
            message = {"starting": "loading the model", "restarting": "llama-server is restarting"}.get(state, state)
            body = json.dumps({"status": state, "error": {"message": message, "type": "unavailable_error", "code": state}})
            self._send(503, body.encode(), headers={"Retry-After": "2"})

    def _static(self, name: str) -> None:
        asset = self.app.static.get(name)
        if asset is None:
            self._send(404, guard.error_body(f"no such file: {name[:100]}", "invalid_request_error", "not_found"))
            return
        data, ctype = asset
        self._send(200, data, ctype, {"Cache-Control": "no-cache", "X-Content-Type-Options": "nosniff",
                                      "Content-Security-Policy": CSP, "Referrer-Policy": "no-referrer"})

    def _metrics_json(self, query: str) -> None:
        sampler = self.app.sampler
        history = urllib.parse.parse_qs(query).get("history", ["1"])[0] not in ("0", "false", "no")
        snap = sampler.snapshot(with_history=history) if sampler is not None else {}
        self._send(200, json.dumps(snap).encode(), headers={"Cache-Control": "no-store"})

    # --- to llama-server ---

    def _forward_headers(self) -> dict[str, str]:
        return {k: v for k, v in self.headers.items() if k.lower() not in HOP_BY_HOP}

    def _connect(self) -> http.client.HTTPConnection:
        """A connection to a serving llama-server; waits through a (re)start, up to READY_WAIT_S."""
        deadline = time.monotonic() + READY_WAIT_S
        while True:
            port = self.app.supervisor.wait_ready(max(0.0, deadline - time.monotonic()))
            if port is None:
                raise ApiError(503, f"the model server is {self.app.supervisor.state}; retry shortly", "server_unavailable",
                               "server_error")
            conn = http.client.HTTPConnection(CHILD_HOST, port, timeout=UPSTREAM_TIMEOUT_S)
            try:
                conn.connect()
                return conn
            except OSError:
                # refused: it died a moment ago and the supervisor has not noticed yet; nothing was sent, so retry
                conn.close()
                if time.monotonic() > deadline:
                    raise ApiError(503, "the model server is not reachable; retry shortly", "server_unavailable",
                                   "server_error") from None
                time.sleep(0.2)

    def _child_died_since(self, starts: int, within_s: float = 2.0) -> bool:
        """Whether the supervisor saw llama-server die (it notices within POLL_S) since it had started `starts` times."""
        sup = self.app.supervisor
        deadline = time.monotonic() + within_s
        while time.monotonic() < deadline:
            if sup.starts != starts or sup.state in ("restarting", "starting"):
                return True
            if sup.state in ("failed", "stopping"):
                return False
            time.sleep(0.05)
        return False

    def _proxy(self, body: bytes | None, generation: bool) -> None:
        stats = self.app.stats
        t0 = time.monotonic()
        tally = StreamTally(t0, stats.add_tokens) if generation else None
        stats.begin()
        status, cancelled = 502, False
        conn: http.client.HTTPConnection | None = None
        try:
            for attempt in (1, 2):
                starts = self.app.supervisor.starts
                conn = self._connect()
                try:
                    conn.request(self.command, self.path, body=body, headers=self._forward_headers())
                    resp = conn.getresponse()
                    break
                except (OSError, http.client.HTTPException):
                    conn.close()
                    # llama-server died before it answered a byte: nothing reached the client, so the request can
                    # go to its successor once (only once: a request that crashes it must not crash it forever)
                    if attempt == 2 or not self._child_died_since(starts):
                        raise ApiError(502, "the model server (llama-server) stopped before answering; it is being "
                                            "restarted, retry", "upstream_failed", "server_error") from None
            status = resp.status
            if resp.getheader("Content-Length") is not None and resp.getheader("Transfer-Encoding") is None:
                status = self._relay_whole(resp, tally)
            else:
                status = self._relay_stream(resp, tally)
        except ApiError as e:
            status = e.status
            try:
                self._send(e.status, e.body(), headers={"Retry-After": "2"} if e.status == 503 else None)
            except OSError:
                self.close_connection = True
        except ClientGone:
            cancelled = True
            self.close_connection = True
        finally:
            if conn is not None:
                conn.close()  # mid-stream this tells llama-server to stop generating for a client that left
            ttft = None
            if tally is not None:
                tally.finish()
                if tally.first_token_at is not None:
                    ttft = tally.first_token_at - t0
            stats.end(status, time.monotonic() - t0 if generation else None, ttft, cancelled=cancelled)

    def _response_headers(self, resp: http.client.HTTPResponse) -> list[tuple[str, str]]:
        return [(k, v) for k, v in resp.getheaders() if k.lower() not in HOP_BY_HOP and k.lower() != "server"]

    def _relay_whole(self, resp: http.client.HTTPResponse, tally: StreamTally | None) -> int:
        try:
            data = resp.read()
        except (OSError, http.client.HTTPException):
            raise ApiError(502, "the model server (llama-server) stopped during this request; it is being restarted, "
                                "retry", "upstream_failed", "server_error") from None
        if tally is not None and resp.status == 200:
            n = tokens_in_response(data)
            if n:
                tally.on_tokens(n)
        try:
            self.send_response(resp.status)
            for k, v in self._response_headers(resp):
                self.send_header(k, v)
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)
        except OSError:
            raise ClientGone() from None
        return resp.status

    def _write_chunk(self, data: bytes, chunked: bool) -> None:
        try:
            self.wfile.write(b"%x\r\n%s\r\n" % (len(data), data) if chunked else data)
        except OSError:
            raise ClientGone() from None

    def _relay_stream(self, resp: http.client.HTTPResponse, tally: StreamTally | None) -> int:
        chunked = self.request_version == "HTTP/1.1"
        try:
            self.send_response(resp.status)
            for k, v in self._response_headers(resp):
                self.send_header(k, v)
            if chunked:
                self.send_header("Transfer-Encoding", "chunked")
            else:
                self.close_connection = True  # an HTTP/1.0 client reads to the end of the connection
                self.send_header("Connection", "close")
            self.send_header("X-Accel-Buffering", "no")  # nginx in front: pass SSE on unbuffered
            self.end_headers()
        except OSError:
            raise ClientGone() from None
        status = resp.status
        while True:
            try:
                data = resp.read1(CHUNK)
            except (OSError, http.client.HTTPException):
                # llama-server died mid-stream: say so in the stream (the OpenAI client raises it), then end it
                status = 502
                err = guard.error_body("the model server (llama-server) stopped during this request; it is being "
                                       "restarted, retry", "server_error", "upstream_failed")
                self._write_chunk(b"data: " + err + b"\n\n", chunked)
                break
            if not data:
                break
            if tally is not None:
                tally.feed(data)
            self._write_chunk(data, chunked)
        if chunked:
            self._write_chunk(b"", chunked)
        return status
