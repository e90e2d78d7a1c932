"""Live figures for /dashboard and /metrics.json: request counts, latency and time-to-first-token percentiles,
tokens/s, slots, and the system sensors, sampled once a second into a short history.

Generation tokens are counted by the front as they stream past (llama-server adds them to its own counter only
when a request ends, which would make the rate jump); prompt tokens come from llama-server's /metrics, which
counts them per batch.
"""

from __future__ import annotations

import http.client
import json
import math
import os
import re
import threading
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from .options import CHILD_HOST
from .sensors import MachineCpu, PackagePower, ProcessCpu, cpu_temperature, process_rss_bytes

WINDOW_S = 60.0  # latency percentiles cover the requests that ended in the last minute
HISTORY = 300  # samples kept (5 minutes at one a second)
MAX_SSE_BUFFER = 1 << 20
PROM_LINE = re.compile(rb"^llamacpp:(\w+) (\S+)$", re.M)


def percentile(sorted_values: list[float], q: float) -> float | None:
    """Nearest-rank percentile of an ascending list."""
    if not sorted_values:
        return None
    rank = max(1, math.ceil(q / 100.0 * len(sorted_values)))
    return sorted_values[rank - 1]


def _text_of(event: dict[str, Any]) -> str:
    """The generated text one streamed event carries (chat delta, completion text, or llama.cpp's /completion)."""
    choices = event.get("choices")
    if isinstance(choices, list) and choices and isinstance(choices[0], dict):
        c = choices[0]
        delta = c.get("delta")
        if isinstance(delta, dict):
            return str(delta.get("content") or "") + str(delta.get("reasoning_content") or "")
        return str(c.get("text") or "")
    return str(event.get("content") or "")


def _predicted(obj: dict[str, Any]) -> int | None:
    """The generated-token count a final event or a whole response reports, if any."""
    timings = obj.get("timings")
    if isinstance(timings, dict) and isinstance(timings.get("predicted_n"), int):
        return int(timings["predicted_n"])
    usage = obj.get("usage")
    if isinstance(usage, dict) and isinstance(usage.get("completion_tokens"), int):
        return int(usage["completion_tokens"])
    if isinstance(obj.get("tokens_predicted"), int):
        return int(obj["tokens_predicted"])
    return None


@dataclass
class StreamTally:
    """Follows a server-sent-event stream as it passes through: tokens so far, first-token time, errors."""

    started: float
    on_tokens: Callable[[int], None]
    tokens: int = 0
    first_token_at: float | None = None
    reported: int | None = None
    _buf: bytes = b""

    def feed(self, data: bytes) -> None:
        self._buf += data
        while True:
            i = self._buf.find(b"\n\n")
            if i < 0:
                break
            event, self._buf = self._buf[:i], self._buf[i + 2:]
            for line in event.split(b"\n"):
                if line.startswith(b"data:"):
                    self._event(line[5:].strip())
        if len(self._buf) > MAX_SSE_BUFFER:  # not SSE after all: stop looking rather than grow
            self._buf = b""

    def _event(self, payload: bytes) -> None:
        if not payload.startswith(b"{"):
            return  # [DONE]
        try:
            obj = json.loads(payload)
        except ValueError:
            return
        if not isinstance(obj, dict):
            return
        if _text_of(obj):
            if self.first_token_at is None:
                self.first_token_at = time.monotonic()
            self.tokens += 1
            self.on_tokens(1)
        n = _predicted(obj)
        if n is not None:
            self.reported = n

    def finish(self) -> None:
        """Tokens that streamed without text of their own (or several per event) still count, once."""
        if self.reported is not None and self.reported > self.tokens:
            self.on_tokens(self.reported - self.tokens)
            self.tokens = self.reported


def tokens_in_response(body: bytes) -> int | None:
    try:
        obj = json.loads(body)
    except ValueError:
        return None
    return _predicted(obj) if isinstance(obj, dict) else None


@dataclass
class RequestStats:
    """Counters the front updates per request; thread-safe."""

    lock: threading.Lock = field(default_factory=threading.Lock)
    active: int = 0
    total: int = 0
    ok: int = 0
    client_errors: int = 0
    server_errors: int = 0
    cancelled: int = 0
    unauthorized: int = 0
    generation_tokens: int = 0
    latencies: deque[tuple[float, float]] = field(default_factory=deque)  # (ended at, seconds)
    ttfts: deque[tuple[float, float]] = field(default_factory=deque)

    def begin(self) -> None:
        with self.lock:
            self.active += 1

    def add_tokens(self, n: int) -> None:
        with self.lock:
            self.generation_tokens += n

    def end(self, status: int, latency_s: float | None = None, ttft_s: float | None = None,
            cancelled: bool = False, proxied: bool = True) -> None:
        now = time.monotonic()
        with self.lock:
            if proxied:
                self.active -= 1
            self.total += 1
            if cancelled:
                self.cancelled += 1
            elif status < 400:
                self.ok += 1
            elif status < 500:
                self.client_errors += 1
                self.unauthorized += status == 401
            else:
                self.server_errors += 1
            if latency_s is not None and not cancelled and status < 400:
                self.latencies.append((now, latency_s))
            if ttft_s is not None:
                self.ttfts.append((now, ttft_s))

    def window(self) -> tuple[list[float], list[float]]:
        """Latencies and times to first token of the requests that ended in the last WINDOW_S, ascending."""
        cutoff = time.monotonic() - WINDOW_S
        with self.lock:
            for d in (self.latencies, self.ttfts):
                while d and d[0][0] < cutoff:
                    d.popleft()
            return sorted(v for _, v in self.latencies), sorted(v for _, v in self.ttfts)


def fetch_child_metrics(port: int, timeout: float = 2.0) -> dict[str, float]:
    """llama-server's Prometheus /metrics as {name: value}; {} when it does not answer."""
    conn = http.client.HTTPConnection(CHILD_HOST, port, timeout=timeout)
    try:
        conn.request("GET", "/metrics")
        r = conn.getresponse()
        body = r.read()
        if r.status != 200:
            return {}
        return {m.group(1).decode(): float(m.group(2)) for m in PROM_LINE.finditer(body)}
    except (OSError, http.client.HTTPException, ValueError):
        return {}
    finally:
        conn.close()


def to_ms(v: float | None) -> float | None:
    return None if v is None else round(v * 1000.0, 1)


def rounded(v: float | None, nd: int = 1) -> float | None:
    return None if v is None else round(v, nd)


HISTORY_FIELDS = ("t", "prompt_tps", "generation_tps", "latency_p50_ms", "latency_p95_ms", "latency_p99_ms",
                  "ttft_p50_ms", "ttft_p95_ms", "active", "queued", "slots_busy", "cpu_front", "cpu_llama_server",
                  "cpu_machine", "rss_front_mb", "rss_llama_server_mb", "temperature_c", "power_w")


class Sampler:
    """Once a second: one sample of every figure, kept in a ring for the dashboard's charts."""

    def __init__(self, stats: RequestStats, supervisor: Any, static_info: Callable[[], dict[str, Any]],
                 interval_s: float = 1.0) -> None:
        self.stats = stats
        self.supervisor = supervisor
        self.static_info = static_info
        self.interval_s = interval_s
        self.history: deque[dict[str, Any]] = deque(maxlen=HISTORY)
        self.latest: dict[str, Any] = {}
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._front_cpu, self._child_cpu, self._machine_cpu = ProcessCpu(), ProcessCpu(), MachineCpu()
        self._power = PackagePower()
        self._prev: tuple[float, int, float, int] | None = None  # time, generation tokens, prompt tokens, child start
        self._started = time.time()
        self._thread = threading.Thread(target=self._run, name="metrics-sampler", daemon=True)

    def start(self) -> None:
        self.sample()
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()

    def _run(self) -> None:
        while not self._stop.wait(self.interval_s):
            try:
                self.sample()
            except Exception as e:  # a sensor failing must not stop the dashboard
                self.latest = {**self.latest, "sampler_error": f"{type(e).__name__}: {e}"}

    def sample(self) -> None:
        sup = self.supervisor
        port = sup.port if sup.state == "ready" else None
        child = fetch_child_metrics(port) if port else {}
        now = time.monotonic()
        with self.stats.lock:
            gen_total = self.stats.generation_tokens
            counts = {k: getattr(self.stats, k) for k in
                      ("active", "total", "ok", "client_errors", "server_errors", "cancelled", "unauthorized")}
        prompt_total = child.get("prompt_tokens_total")
        prompt_tps = gen_tps = None
        prev = self._prev
        if prev is not None and now > prev[0]:
            dt = now - prev[0]
            gen_tps = (gen_total - prev[1]) / dt
            if prompt_total is not None:
                # a restarted llama-server counts from zero again
                base = prev[2] if prev[3] == sup.starts and prompt_total >= prev[2] else 0.0
                prompt_tps = (prompt_total - base) / dt
        if prompt_total is not None or prev is None:
            self._prev = (now, gen_total, prompt_total or 0.0, sup.starts)
        else:
            self._prev = (now, gen_total, prev[2], prev[3])

        lat, ttft = self.stats.window()
        front_pid, child_pid = os.getpid(), sup.child_pid
        rss_front, rss_child = process_rss_bytes(front_pid), process_rss_bytes(child_pid) if child_pid else None
        temp, power = cpu_temperature(), self._power.read()
        busy = child.get("requests_processing")
        queued = child.get("requests_deferred")
        snap: dict[str, Any] = {
            "time": round(time.time(), 3),
            "interval_s": self.interval_s,
            **self.static_info(),
            "server": self._server(),
            "requests": {**counts, "queued": None if queued is None else int(queued),
                         "slots_busy": None if busy is None else int(busy)},
            "tokens_per_s": {"prompt": rounded(prompt_tps), "generation": rounded(gen_tps)},
            "tokens_total": {"prompt": None if prompt_total is None else int(prompt_total), "generation": gen_total},
            "latency_ms": {"p50": to_ms(percentile(lat, 50)), "p95": to_ms(percentile(lat, 95)), "p99": to_ms(percentile(lat, 99)),
                           "count": len(lat), "window_s": WINDOW_S},
            "ttft_ms": {"p50": to_ms(percentile(ttft, 50)), "p95": to_ms(percentile(ttft, 95)), "p99": to_ms(percentile(ttft, 99)),
                        "count": len(ttft), "window_s": WINDOW_S},
            "system": {
                "cpu_count": os.cpu_count(),
                "cpu_percent": {"front": rounded(self._front_cpu.percent(front_pid)),
                                "llama_server": rounded(self._child_cpu.percent(child_pid)),
                                "machine": rounded(self._machine_cpu.percent())},
                "rss_bytes": {"front": rss_front, "llama_server": rss_child},
                "temperature_c": temp.as_json(),
                "package_power_w": power.as_json(),
            },
        }
        mb = 1 << 20
        row = {
            "t": snap["time"], "prompt_tps": snap["tokens_per_s"]["prompt"], "generation_tps": snap["tokens_per_s"]["generation"],
            "latency_p50_ms": snap["latency_ms"]["p50"], "latency_p95_ms": snap["latency_ms"]["p95"],
            "latency_p99_ms": snap["latency_ms"]["p99"], "ttft_p50_ms": snap["ttft_ms"]["p50"],
            "ttft_p95_ms": snap["ttft_ms"]["p95"], "active": counts["active"],
            "queued": snap["requests"]["queued"], "slots_busy": snap["requests"]["slots_busy"],
            "cpu_front": snap["system"]["cpu_percent"]["front"], "cpu_llama_server": snap["system"]["cpu_percent"]["llama_server"],
            "cpu_machine": snap["system"]["cpu_percent"]["machine"],
            "rss_front_mb": rounded(rss_front / mb if rss_front else None),
            "rss_llama_server_mb": rounded(rss_child / mb if rss_child else None),
            "temperature_c": snap["system"]["temperature_c"]["value"], "power_w": snap["system"]["package_power_w"]["value"],
        }
        with self._lock:
            self.history.append(row)
            self.latest = snap

    def _server(self) -> dict[str, Any]:
        sup = self.supervisor
        return {"state": sup.state, "uptime_s": round(time.time() - self._started, 1), "restarts": sup.restarts,
                "last_restart_s": rounded(sup.last_restart_s, 2), "front_pid": os.getpid(), "llama_server_pid": sup.child_pid}

    def snapshot(self, with_history: bool = True) -> dict[str, Any]:
        with self._lock:
            out = dict(self.latest)
            out["server"] = self._server()  # live, not up to a second old: a restart shows at once
            if with_history:
                out["history"] = {f: [row[f] for row in self.history] for f in HISTORY_FIELDS}
        return out
