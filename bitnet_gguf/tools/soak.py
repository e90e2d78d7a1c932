"""Soak test for run_server.py: streaming clients, clients that walk away, and abusive requests, all at once.

    python -m bitnet_gguf.tools.soak -m models/tiny-shakespeare/ggml-model-i2_s.gguf --clients 16 --duration 120
    python -m bitnet_gguf.tools.soak --url http://127.0.0.1:8080 --clients 8 --duration 20

N threads each run streaming chat completions with the official `openai` client for T seconds; a share of them
stop reading after a few tokens and close the connection. One more thread keeps sending bad requests (malformed
JSON, wrong types, invalid UTF-8, an unknown model, a 10 MB body, a prompt longer than the context, max_tokens far
above it), each of which must get a 4xx with an error message, and another checks /health twice a second.
The report gives tokens/s, latency and time-to-first-token percentiles, and the server's RSS (front + llama-server,
from /metrics.json) at the start, `--rss-from` seconds in, and at the end. Loopback only, bounded in clients and time.
Exit code 0 when no well-formed request failed, every bad one got its 4xx, and /health always answered.
"""

from __future__ import annotations

import argparse
import http.client
import ipaddress
import json
import os
import random
import signal
import socket
import subprocess
import sys
import threading
import time
import urllib.parse
from collections import Counter
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from ..errors import ArgumentParser, BitnetError, run_cli
from ..fileio import write_text_atomic
from ..serving.metrics import percentile, rounded, to_ms
from ..serving.options import free_loopback_port
from ..serving.supervisor import child_is_ready

MAX_CLIENTS = 64
MAX_DURATION_S = 3600
PROMPTS = ["Tell me about the king.", "ROMEO:", "Write a line about the sea.", "What says the duke?",
           "Speak of love and war.", "JULIET: O Romeo,", "Who goes there?", "Give me a verse on winter."]


@dataclass
class SoakReport:
    url: str
    clients: int
    duration_s: float
    streams_ok: int = 0
    streams_failed: int = 0
    walked_away: int = 0
    failures: list[str] = field(default_factory=list)  # the first few, for the log
    tokens: int = 0
    tokens_per_s: float = 0.0
    latency_ms: dict[str, float | None] = field(default_factory=dict)
    ttft_ms: dict[str, float | None] = field(default_factory=dict)
    bad_requests: int = 0
    bad_answered_4xx: int = 0
    bad_wrong: list[str] = field(default_factory=list)
    bad_statuses: dict[str, dict[str, int]] = field(default_factory=dict)
    health_checks: int = 0
    health_failed: int = 0
    rss_mb: dict[str, float | None] = field(default_factory=dict)
    rss_growth_pct: float | None = None
    server_restarts: int | None = None
    server_counts: dict[str, Any] = field(default_factory=dict)

    @property
    def passed(self) -> bool:
        return self.streams_failed == 0 and not self.bad_wrong and self.health_failed == 0 and self.streams_ok > 0

    def lines(self) -> list[str]:
        def ms(d: dict[str, float | None]) -> str:
            return " ".join(f"{k} {v:.0f}" if v is not None else f"{k} -" for k, v in d.items())

        bad = ", ".join(f"{case} {'/'.join(f'{s}x{n}' for s, n in st.items())}" for case, st in self.bad_statuses.items())
        rss = self.rss_mb
        growth = "n/a" if self.rss_growth_pct is None else f"{self.rss_growth_pct:+.2f} %"
        return [
            f"soak: {self.clients} clients for {self.duration_s:.0f} s against {self.url}",
            f"well-formed streams: {self.streams_ok} ok, {self.streams_failed} failed "
            f"(+ {self.walked_away} clients walked away mid-stream on purpose)",
            f"bad requests: {self.bad_answered_4xx} of {self.bad_requests} got a 4xx with a message ({bad})",
            f"/health: {self.health_checks} checks, {self.health_failed} failed",
            f"tokens: {self.tokens} generated, {self.tokens_per_s:.1f} tokens/s (seen by the clients)",
            f"latency ms: {ms(self.latency_ms)}; time to first token ms: {ms(self.ttft_ms)}",
            f"RSS front + llama-server: start {rss.get('start')} MB, {rss.get('from_s')} s in {rss.get('baseline')} MB, "
            f"end {rss.get('end')} MB (growth from {rss.get('from_s')} s in to the end: {growth})",
            f"server restarts during the run: {self.server_restarts}",
            *(f"failure: {f}" for f in self.failures[:5]),
            *(f"bad request answered wrongly: {b}" for b in self.bad_wrong[:5]),
            "PASS" if self.passed else "FAIL",
        ]


def check_loopback(url: str) -> tuple[str, int]:
    parts = urllib.parse.urlsplit(url)
    host, port = parts.hostname or "", parts.port or 80
    try:
        addrs = {info[4][0] for info in socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)}
    except socket.gaierror:
        raise BitnetError(f"cannot resolve {host!r} in --url {url}") from None
    if not addrs or not all(ipaddress.ip_address(str(a).split("%")[0]).is_loopback for a in addrs):
        raise BitnetError(f"--url {url}: the soak runs against loopback only (127.0.0.1, ::1, localhost)")
    return host, port


class Soak:
    def __init__(self, url: str, clients: int, duration_s: float, api_key: str | None = None, walk_away: float = 0.2,
                 max_tokens: int = 48, abuse_interval_s: float = 0.25, rss_from_s: float = 30.0, seed: int = 0) -> None:
        if not 1 <= clients <= MAX_CLIENTS:
            raise BitnetError(f"--clients must be 1..{MAX_CLIENTS}")
        if not 1 <= duration_s <= MAX_DURATION_S:
            raise BitnetError(f"--duration must be 1..{MAX_DURATION_S} s")
        self.url = url.rstrip("/")
        self.host, self.port = check_loopback(self.url)
        self.clients, self.duration_s = clients, duration_s
        self.api_key = api_key
        self.walk_away, self.max_tokens = walk_away, max_tokens
        self.abuse_interval_s = abuse_interval_s
        self.rss_from_s = min(rss_from_s, duration_s / 4)
        self.seed = seed
        self.lock = threading.Lock()
        self.report = SoakReport(self.url, clients, duration_s)
        self.latencies: list[float] = []
        self.ttfts: list[float] = []
        self.rss: list[tuple[float, float]] = []  # (seconds in, MB)
        self.bad_counts: dict[str, Counter[str]] = {}
        self.t0 = 0.0
        self.deadline = 0.0

    # --- plain HTTP, for what the openai client cannot send ---

    def _headers(self) -> dict[str, str]:
        h = {"Content-Type": "application/json"}
        if self.api_key:
            h["Authorization"] = f"Bearer {self.api_key}"
        return h

    def _raw(self, method: str, path: str, body: bytes | None = None, timeout: float = 30) -> tuple[int, bytes]:
        conn = http.client.HTTPConnection(self.host, self.port, timeout=timeout)
        try:
            conn.request(method, path, body=body, headers=self._headers())
            r = conn.getresponse()
            return r.status, r.read()
        finally:
            conn.close()

    def metrics(self) -> dict[str, Any]:
        status, body = self._raw("GET", "/metrics.json?history=0", timeout=10)
        return json.loads(body) if status == 200 else {}

    # --- the well-behaved (and walking-away) clients ---

    def _client_loop(self, idx: int) -> None:
        import openai

        rng = random.Random(self.seed * 1000 + idx)
        client = openai.OpenAI(base_url=self.url + "/v1", api_key=self.api_key or "not-needed", timeout=120, max_retries=0)
        try:
            while time.monotonic() < self.deadline:
                leave_after = rng.randint(1, 4) if rng.random() < self.walk_away else None
                self._one_stream(client, rng, leave_after)
        finally:
            client.close()

    def _one_stream(self, client: Any, rng: random.Random, leave_after: int | None) -> None:
        messages = [{"role": "user", "content": rng.choice(PROMPTS)}]
        t0 = time.monotonic()
        first: float | None = None
        tokens, finished = 0, False
        try:
            stream = client.chat.completions.create(model="bitnet", messages=messages, stream=True,
                                                    max_tokens=rng.randint(8, self.max_tokens), temperature=0.8,
                                                    seed=rng.randint(0, 1 << 30))
            try:
                for chunk in stream:
                    if not chunk.choices:
                        continue
                    choice = chunk.choices[0]
                    if choice.delta and choice.delta.content:
                        first = first or time.monotonic()
                        tokens += 1
                    if choice.finish_reason:
                        finished = True
                    if leave_after is not None and tokens >= leave_after:
                        break
            finally:
                stream.close()  # walking away: the connection closes mid-stream
        except Exception as e:  # any error on a well-formed request is a failure to report, not to raise
            with self.lock:
                self.report.streams_failed += 1
                self.report.failures.append(f"{type(e).__name__}: {str(e)[:200]}")
            return
        end = time.monotonic()
        with self.lock:
            self.report.tokens += tokens
            if leave_after is not None and not finished:
                self.report.walked_away += 1
            elif finished:
                self.report.streams_ok += 1
                self.latencies.append(end - t0)
                if first is not None:
                    self.ttfts.append(first - t0)
            else:
                self.report.streams_failed += 1
                self.report.failures.append("stream ended without a finish_reason")

    # --- the abusive client ---

    def bad_requests(self, n_ctx: int) -> list[tuple[str, str, bytes]]:
        chat = "/v1/chat/completions"
        hello = [{"role": "user", "content": "hello"}]

        def j(obj: Any) -> bytes:
            return json.dumps(obj).encode()

        long_prompt = " ".join(["Wherefore art thou Romeo"] * (n_ctx + 64))  # several tokens per repetition
        return [
            ("malformed_json", chat, b'{"messages": [{"role": "user", "content": "hi"}'),
            ("not_an_object", chat, b'["messages"]'),
            ("wrong_type_messages", chat, j({"messages": "hello", "max_tokens": 8})),
            ("wrong_type_max_tokens", chat, j({"messages": hello, "max_tokens": "lots"})),
            ("wrong_type_temperature", chat, j({"messages": hello, "max_tokens": 8, "temperature": "hot"})),
            ("invalid_utf8", chat, b'{"messages": [{"role": "user", "content": "caf\xe9 \xff\xfe"}], "max_tokens": 8}'),
            ("unknown_model", chat, j({"model": "gpt-nonexistent-9", "messages": hello, "max_tokens": 8})),
            ("body_10mb", chat, b'{"messages": [{"role": "user", "content": "' + b"a" * (10 << 20) + b'"}]}'),
            ("prompt_over_context", chat, j({"messages": [{"role": "user", "content": long_prompt}], "max_tokens": 8})),
            ("max_tokens_over_context", chat, j({"messages": hello, "max_tokens": n_ctx * 1000})),
            ("completion_without_prompt", "/v1/completions", j({"max_tokens": 8})),
        ]

    def _abuse_loop(self, n_ctx: int) -> None:
        cases = self.bad_requests(n_ctx)
        i = 0
        while time.monotonic() < self.deadline:
            name, path, body = cases[i % len(cases)]
            i += 1
            try:
                status, resp = self._raw("POST", path, body, timeout=60)
                try:
                    message = json.loads(resp)["error"]["message"]
                except (ValueError, KeyError, TypeError):
                    message = None
                good = 400 <= status < 500 and isinstance(message, str) and message != ""
                what = str(status)
            except (OSError, http.client.HTTPException) as e:
                good, what = False, type(e).__name__
            with self.lock:
                self.report.bad_requests += 1
                self.bad_counts.setdefault(name, Counter())[what] += 1
                if good:
                    self.report.bad_answered_4xx += 1
                else:
                    self.report.bad_wrong.append(f"{name}: {what}")
            time.sleep(self.abuse_interval_s)

    # --- watchers ---

    def _health_loop(self) -> None:
        while time.monotonic() < self.deadline:
            try:
                status, _ = self._raw("GET", "/health", timeout=5)
                ok = status == 200
            except (OSError, http.client.HTTPException):
                ok = False
            with self.lock:
                self.report.health_checks += 1
                self.report.health_failed += not ok
            time.sleep(0.5)

    def _rss_now(self) -> float | None:
        try:
            rss = self.metrics().get("system", {}).get("rss_bytes", {})
        except (OSError, ValueError, http.client.HTTPException):
            return None
        parts = [v for v in (rss.get("front"), rss.get("llama_server")) if isinstance(v, int)]
        return sum(parts) / (1 << 20) if len(parts) == 2 else None

    def _rss_loop(self) -> None:
        while time.monotonic() < self.deadline:
            mb = self._rss_now()
            if mb is not None:
                self.rss.append((time.monotonic() - self.t0, mb))
            time.sleep(1.0)

    # --- the run ---

    def run(self, progress: bool = False) -> SoakReport:
        before = self.metrics()
        n_ctx = int((before.get("model") or {}).get("n_ctx") or 2048)
        restarts_before = (before.get("server") or {}).get("restarts")
        counts_before = dict(before.get("requests") or {})
        start_rss = self._rss_now()
        for _ in range(20):  # right after start the dashboard's once-a-second sample may not have llama-server yet
            if start_rss is not None:
                break
            time.sleep(0.25)
            start_rss = self._rss_now()
        self.t0 = time.monotonic()
        self.deadline = self.t0 + self.duration_s
        threads = [threading.Thread(target=self._client_loop, args=(i,), name=f"soak-client-{i}", daemon=True)
                   for i in range(self.clients)]
        threads += [threading.Thread(target=self._abuse_loop, args=(n_ctx,), name="soak-abuse", daemon=True),
                    threading.Thread(target=self._health_loop, name="soak-health", daemon=True),
                    threading.Thread(target=self._rss_loop, name="soak-rss", daemon=True)]
        for t in threads:
            t.start()
        while any(t.is_alive() for t in threads):
            for t in threads:
                t.join(timeout=5)
            if progress:
                left = max(0.0, self.deadline - time.monotonic())
                with self.lock:
                    r = self.report
                    print(f"soak: {left:4.0f} s left, {r.streams_ok} ok, {r.streams_failed} failed, "
                          f"{r.walked_away} walked away, {r.bad_answered_4xx}/{r.bad_requests} bad refused",
                          file=sys.stderr, flush=True)
            if time.monotonic() > self.deadline + 300:
                break  # a stuck request must not keep the soak running forever
        elapsed = time.monotonic() - self.t0
        end_rss = self._rss_now()
        after = self.metrics()
        r = self.report
        r.duration_s = elapsed
        r.tokens_per_s = r.tokens / elapsed if elapsed > 0 else 0.0
        lat, ttft = sorted(self.latencies), sorted(self.ttfts)
        r.latency_ms = {f"p{q}": to_ms(percentile(lat, q)) for q in (50, 95, 99)}
        r.ttft_ms = {f"p{q}": to_ms(percentile(ttft, q)) for q in (50, 95, 99)}
        baseline = next((mb for t, mb in self.rss if t >= self.rss_from_s), None)
        r.rss_mb = {"start": rounded(start_rss), "from_s": round(self.rss_from_s), "baseline": rounded(baseline), "end": rounded(end_rss)}
        if baseline and end_rss:
            r.rss_growth_pct = round(100.0 * (end_rss - baseline) / baseline, 2)
        restarts_after = (after.get("server") or {}).get("restarts")
        if isinstance(restarts_after, int) and isinstance(restarts_before, int):
            r.server_restarts = restarts_after - restarts_before
        r.server_counts = {k: v - counts_before.get(k, 0) for k, v in (after.get("requests") or {}).items()
                           if isinstance(v, int) and k not in ("active", "queued", "slots_busy")}
        r.bad_statuses = {k: dict(v) for k, v in self.bad_counts.items()}
        return r


def start_server(model: str, threads: int, parallel: int, log: Path, extra: list[str]) -> tuple[subprocess.Popen[bytes], str]:
    """run_server.py on a free loopback port; returns once /health says ok."""
    port = free_loopback_port()
    url = f"http://127.0.0.1:{port}"
    with open(log, "wb") as out:
        proc = subprocess.Popen([sys.executable, "-m", "bitnet_gguf.serving", "-m", model, "--host", "127.0.0.1",
                                 "--port", str(port), "-t", str(threads), "-np", str(parallel), *extra],
                                stdout=out, stderr=subprocess.STDOUT)
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise BitnetError(f"run_server.py exited with {proc.returncode}; see {log}")
        if child_is_ready(port, timeout=2):  # the front answers /health as llama-server does
            return proc, url
        time.sleep(0.25)
    proc.kill()
    raise BitnetError(f"run_server.py not ready after 120 s; see {log}")


def parser() -> argparse.ArgumentParser:
    p = ArgumentParser(prog="python -m bitnet_gguf.tools.soak", description=__doc__.split("\n\n")[0],
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    where = p.add_mutually_exclusive_group()
    where.add_argument("--url", help="a running server on loopback (e.g. http://127.0.0.1:8080)")
    where.add_argument("-m", "--model", default="models/tiny-shakespeare/ggml-model-i2_s.gguf",
                       help="start run_server.py on this model on a free loopback port (default: %(default)s)")
    p.add_argument("--clients", type=int, default=8, help="concurrent streaming clients (default: 8)")
    p.add_argument("--duration", type=float, default=20, help="seconds (default: 20)")
    p.add_argument("--walk-away", type=float, default=0.2, help="share of streams abandoned after 1-4 tokens (default: 0.2)")
    p.add_argument("--max-tokens", type=int, default=48, help="each stream asks for 8..N tokens (default: 48)")
    p.add_argument("--rss-from", type=float, default=30, help="RSS growth is measured from this many seconds in (default: 30)")
    p.add_argument("--api-key", default=os.environ.get("BITNET_GGUF_API_KEY"), help="API key for the server, if it needs one")
    p.add_argument("-t", "--threads", type=int, default=1,
                   help="with -m: llama-server threads (default: 1, leaving the other cores to the clients)")
    p.add_argument("-np", "--parallel", type=int, default=4, help="with -m: slots (default: 4)")
    p.add_argument("--log", default="soak-server.log", help="with -m: the server's log file (default: %(default)s)")
    p.add_argument("--json", help="also write the report as JSON here")
    return p


def main(argv: list[str] | None = None) -> int:
    return run_cli(lambda: _main(argv))


def _main(argv: list[str] | None) -> int:
    args = parser().parse_args(argv)
    proc: subprocess.Popen[bytes] | None = None
    try:
        if args.url:
            url = args.url
        else:
            extra = ["--api-key", args.api_key] if args.api_key else []
            proc, url = start_server(args.model, args.threads, args.parallel, Path(args.log), extra)
        soak = Soak(url, args.clients, args.duration, api_key=args.api_key, walk_away=args.walk_away,
                    max_tokens=args.max_tokens, rss_from_s=args.rss_from)
        report = soak.run(progress=True)
    finally:
        if proc is not None and proc.poll() is None:
            proc.send_signal(signal.SIGTERM)
            try:
                proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                proc.kill()
    print("\n".join(report.lines()))
    if args.json:
        write_text_atomic(Path(args.json), json.dumps(asdict(report), indent=1) + "\n")
    return 0 if report.passed else 1


if __name__ == "__main__":
    sys.exit(main())
