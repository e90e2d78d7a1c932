"""llama.cpp's RPC backend from our front ends: `--rpc HOST:PORT,...` spreads a model's layers over
ggml-rpc-server workers on other hosts (docs/rpc.md).

llama.cpp itself takes the list as it is: an empty entry, a bad port or a worker that is down or of another
llama.cpp version aborts the client with a backtrace, and a busy worker (one client at a time) makes it wait. Here the list is
checked in one line first, and each worker is asked the RPC protocol's HELLO and DEVICE_COUNT (what llama.cpp's
client asks first) before llama.cpp starts. While a run goes on, a worker that dies is noticed by llama.cpp (it
aborts); one that freezes or vanishes with its host is not (the client waits for ever), so the front ends watch
for a client that stopped using the CPU (`StallGuard`).
"""

from __future__ import annotations

import argparse
import math
import re
import socket
import struct
import time
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

from ..errors import BitnetError

# ggml-rpc.h at the pin: RPC_PROTO_{MAJOR,MINOR,PATCH}_VERSION (tests/test_rpc.py reads the header to keep these
# equal). The client accepts a worker of the same major version and a minor version up to its own.
RPC_PROTO = (7, 0, 0)
MAX_SERVERS = 16  # GGML_RPC_MAX_SERVERS
DEFAULT_PORT = 50052  # ggml-rpc-server's default
PROBE_TIMEOUT_S = 5.0
DEFAULT_STALL_S = 120.0
# the protocol's framing: request = cmd (u8) | size (u64) | data; reply = size (u64) | data (little-endian)
_CMD_HELLO = 14
_CMD_DEVICE_COUNT = 15
_CONN_CAPS = 24  # RPC_CONN_CAPS_SIZE: transport capabilities; all zero = plain TCP
_ENTRY = "HOST:PORT[,HOST:PORT...]"


@dataclass(frozen=True)
class Endpoint:
    host: str
    port: int

    def __str__(self) -> str:
        return f"{self.host}:{self.port}"


@dataclass(frozen=True)
class Worker:
    endpoint: Endpoint
    version: tuple[int, int, int]
    devices: int  # ggml devices the worker exposes (its CPU, or each of its GPUs)


def parse_rpc_servers(text: object, flag: str = "--rpc") -> tuple[Endpoint, ...]:
    """`host:port,host:port` -> endpoints; anything llama.cpp would mishandle is one line naming the entry."""
    if not isinstance(text, str):
        raise BitnetError(f"{flag}: expected a string {_ENTRY}, got {type(text).__name__}")
    entries = text.split(",")
    out: list[Endpoint] = []
    for i, raw in enumerate(entries, 1):
        entry = raw.strip()
        if not entry:
            raise BitnetError(f"{flag} {text!r}: entry {i} is empty; expected {_ENTRY}")
        where = f"{flag} {text!r}: entry {i} ({entry!r})" if len(entries) > 1 else f"{flag} {text!r}"
        host, sep, port = entry.rpartition(":")
        if not sep or not host:
            raise BitnetError(f"{where} is not HOST:PORT, e.g. 192.168.1.10:{DEFAULT_PORT}")
        if ":" in host or host.startswith("["):
            # ggml's client splits at the first ':' and resolves with gethostbyname: IPv4 and host names only
            raise BitnetError(f"{where}: IPv6 addresses are not supported by ggml's RPC; use an IPv4 address or a host name")
        if any(c.isspace() for c in host):
            raise BitnetError(f"{where}: the host name holds a space")
        if not re.fullmatch(r"[0-9]{1,5}", port) or not 1 <= int(port) <= 65535:
            raise BitnetError(f"{where}: port {port!r} is not a port number (1-65535)")
        ep = Endpoint(host, int(port))
        if ep in out:
            raise BitnetError(f"{where}: {ep} is listed twice")
        out.append(ep)
    if len(out) > MAX_SERVERS:
        raise BitnetError(f"{flag}: {len(out)} workers, ggml's RPC takes at most {MAX_SERVERS}")
    return tuple(out)


def parse_tensor_split(value: object, flag: str = "--tensor-split") -> tuple[float, ...]:
    """`3,1` (or `3/1`, as llama.cpp) or a sequence of numbers -> the proportions of each device, checked."""
    if isinstance(value, str):
        parts = re.split(r"[,/]", value)
        shown = repr(value)
    elif isinstance(value, Sequence) and not isinstance(value, (bytes, bytearray)):
        parts = list(value)
        shown = repr(list(value))
    else:
        raise BitnetError(f"{flag}: expected proportions such as '3,1' or [3, 1], got {type(value).__name__}")
    out: list[float] = []
    for i, p in enumerate(parts, 1):
        if isinstance(p, str):
            if not p.strip():
                raise BitnetError(f"{flag} {shown}: entry {i} is empty; expected numbers such as 3,1")
            try:
                v = float(p)
            except ValueError:
                raise BitnetError(f"{flag} {shown}: entry {i} ({p!r}) is not a number") from None
        elif isinstance(p, (int, float)) and not isinstance(p, bool):
            v = float(p)
        else:
            raise BitnetError(f"{flag} {shown}: entry {i} ({p!r}) is not a number")
        if not math.isfinite(v) or v < 0:
            raise BitnetError(f"{flag} {shown}: entry {i} ({p}) must be a finite number >= 0")
        out.append(v)
    if not out or not any(out):
        raise BitnetError(f"{flag} {shown}: at least one proportion must be above 0")
    return tuple(out)


def _recv_exact(sock: socket.socket, n: int) -> bytes:
    data = b""
    while len(data) < n:
        chunk = sock.recv(n - len(data))
        if not chunk:
            raise ConnectionError("closed")
        data += chunk
    return data


def _reply(sock: socket.socket, size: int) -> bytes:
    (got,) = struct.unpack("<Q", _recv_exact(sock, 8))
    if got != size:
        raise ValueError(f"reply of {got} bytes, expected {size}")
    return _recv_exact(sock, size)


class WorkerProblem(BitnetError):
    """A worker that cannot serve: the whole line, and a short `reason` for lists of workers."""

    def __init__(self, endpoint: Endpoint, reason: str, hint: str = "", silent: bool = False) -> None:
        super().__init__(f"RPC worker {endpoint}: {reason}{': ' + hint if hint else ''}")
        self.endpoint = endpoint
        self.reason = reason
        self.silent = silent  # it accepted the connection but did not answer: frozen, or serving another client


def probe(ep: Endpoint, timeout: float = PROBE_TIMEOUT_S) -> Worker:
    """Ask a worker what llama.cpp's client asks first (HELLO, DEVICE_COUNT); any problem is a WorkerProblem."""
    try:
        infos = socket.getaddrinfo(ep.host, ep.port, socket.AF_INET, socket.SOCK_STREAM)
    except socket.gaierror as e:
        raise WorkerProblem(ep, f"cannot resolve {ep.host!r} ({e.strerror})") from None
    try:
        sock = socket.create_connection(infos[0][4][:2], timeout=timeout)
    except ConnectionRefusedError:
        raise WorkerProblem(ep, "connection refused", f"is ggml-rpc-server running there (ggml-rpc-server -H ADDRESS "
                                                      f"-p {ep.port})?") from None
    except TimeoutError:
        raise WorkerProblem(ep, f"no answer within {timeout:g} s", "host down, wrong address or a firewall") from None
    except OSError as e:
        raise WorkerProblem(ep, f"cannot connect ({e.strerror or e})") from None
    try:
        sock.sendall(struct.pack("<BQ", _CMD_HELLO, _CONN_CAPS) + bytes(_CONN_CAPS))
        major, minor, patch = _reply(sock, 4 + _CONN_CAPS)[:3]
        if major != RPC_PROTO[0] or minor > RPC_PROTO[1]:
            want = ".".join(map(str, RPC_PROTO))
            _abort(sock)
            raise WorkerProblem(ep, f"speaks RPC protocol {major}.{minor}.{patch}, this build {want}",
                                "run the ggml-rpc-server of the same llama.cpp build on every host")
        sock.sendall(struct.pack("<BQ", _CMD_DEVICE_COUNT, 0))
        (devices,) = struct.unpack("<I", _reply(sock, 4))
        sock.close()  # after reading every reply: the worker sees a clean end of session
        return Worker(ep, (major, minor, patch), devices)
    except TimeoutError:
        _abort(sock)
        raise WorkerProblem(ep, f"accepts connections but does not answer within {timeout:g} s",
                            "it is serving another client (a ggml-rpc-server serves one at a time) or is frozen",
                            silent=True) from None
    except (OSError, ValueError):
        _abort(sock)
        raise WorkerProblem(ep, "not a ggml-rpc-server (no valid reply to the protocol's HELLO)") from None


def _abort(sock: socket.socket) -> None:
    """Close with a reset: a worker that accepts this connection later finds it dead at once and never writes to
    it (ggml-rpc-server dies of SIGPIPE when it writes to a closed connection)."""
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    except OSError:
        pass
    sock.close()


def probe_all(endpoints: Sequence[Endpoint], timeout: float = PROBE_TIMEOUT_S) -> list[Worker | WorkerProblem]:
    """Every worker probed at once (the wait is one timeout, not one per worker); a result or the problem, in order."""
    def one(ep: Endpoint) -> Worker | WorkerProblem:
        try:
            return probe(ep, timeout)
        except WorkerProblem as e:
            return e

    with ThreadPoolExecutor(max_workers=max(1, len(endpoints))) as pool:
        return list(pool.map(one, endpoints))


def check_workers(endpoints: Sequence[Endpoint], timeout: float = PROBE_TIMEOUT_S) -> list[Worker]:
    """All workers answer, or the first problem as one line."""
    results = probe_all(endpoints, timeout)
    for r in results:
        if isinstance(r, WorkerProblem):
            raise r
    return [r for r in results if isinstance(r, Worker)]


def check_split(split: Sequence[float], workers: Sequence[Worker], flag: str = "--tensor-split") -> None:
    """One proportion per device at most: the workers' devices in --rpc order (a CPU worker has one)."""
    n = sum(w.devices for w in workers)
    if len(split) > n:
        raise BitnetError(f"{flag}: {len(split)} proportions for {n} RPC device{'s' if n != 1 else ''} "
                          f"({', '.join(f'{w.endpoint}: {w.devices}' for w in workers)})")


# --- command-line options shared by run_inference.py and run_server.py ---

def add_rpc_options(p: argparse.ArgumentParser, stall: bool) -> None:
    g = p.add_argument_group("distributed inference (llama.cpp RPC, docs/rpc.md)")
    g.add_argument("--rpc", metavar=_ENTRY,
                   help="ggml-rpc-server workers to spread the model's layers over (each gets a share of the weights)")
    g.add_argument("-ts", "--tensor-split", metavar="N0,N1,...",
                   help="proportion of the offloaded layers for each worker, in --rpc order (default: by free memory)")
    g.add_argument("-ngl", "--gpu-layers", metavar="N|all",
                   help="layers (counting the output layer) on the workers, the rest on this machine's CPU "
                        "(default with --rpc: all)")
    if stall:
        g.add_argument("--rpc-timeout", type=float, default=DEFAULT_STALL_S, metavar="SECONDS",
                       help=f"stop when llama.cpp has used no CPU for this long while waiting for a worker (a frozen "
                            f"or vanished host; default: {DEFAULT_STALL_S:g}, 0 = never)")


@dataclass(frozen=True)
class RpcPlan:
    endpoints: tuple[Endpoint, ...]
    split: tuple[float, ...] | None
    args: list[str]  # llama.cpp's flags: --rpc, -ngl, -ts


def plan_from_args(args: argparse.Namespace) -> RpcPlan | None:
    """The RPC flags checked (syntax only: no network) and turned into llama.cpp's; None without --rpc."""
    if args.rpc is None:
        for attr, flag in (("tensor_split", "-ts/--tensor-split"), ("gpu_layers", "-ngl/--gpu-layers")):
            if getattr(args, attr, None) is not None:
                raise BitnetError(f"{flag} needs --rpc (this build computes on the CPU; the split is over RPC workers)")
        return None
    endpoints = parse_rpc_servers(args.rpc)
    ngl = "all" if args.gpu_layers is None else args.gpu_layers.strip()
    if ngl != "all" and not re.fullmatch(r"[0-9]{1,9}", ngl):
        raise BitnetError(f"-ngl/--gpu-layers {args.gpu_layers!r}: expected a number of layers >= 0 or 'all'")
    out = ["--rpc", ",".join(map(str, endpoints)), "-ngl", ngl]
    split = None
    if args.tensor_split is not None:
        split = parse_tensor_split(args.tensor_split, "-ts/--tensor-split")
        out += ["-ts", ",".join(f"{v:g}" for v in split)]
    timeout = getattr(args, "rpc_timeout", None)
    if timeout is not None and not timeout >= 0:  # `not >=`: NaN too
        raise BitnetError(f"--rpc-timeout {timeout}: expected seconds >= 0 (0 = never)")
    return RpcPlan(endpoints, split, out)


def check_plan(plan: RpcPlan) -> list[Worker]:
    """Before llama.cpp starts: every worker answers, and -ts has no more entries than their devices."""
    workers = check_workers(plan.endpoints)
    if plan.split is not None:
        check_split(plan.split, workers, "-ts/--tensor-split")
    return workers


# --- while llama.cpp runs ---

def cpu_ticks(pid: int) -> int | None:
    """User + system CPU time of a process in clock ticks (Linux /proc), None where unavailable."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    fields = stat[stat.rfind(")") + 2:].split()  # after "pid (comm) ": field 3 (state) is fields[0]
    try:
        return int(fields[11]) + int(fields[12])  # utime, stime: fields 14 and 15
    except (IndexError, ValueError):
        return None


class StallGuard:
    """Watches a llama.cpp client of RPC workers (quiet_run.RunGuard).

    A worker that dies resets its connection and llama.cpp aborts on its own. A frozen worker, or one whose host
    vanished (no reset ever comes), leaves the client waiting in recv() for ever, using no CPU at all; the bound
    is `stall_s` seconds of no CPU use. Waiting for a worker's long computation looks the same, so the bound must
    exceed the longest step of the model on the slowest worker (a prompt batch); waiting for a user (-cnv) does
    too, so interactive runs pass stall_s=0.
    """

    def __init__(self, endpoints: Sequence[Endpoint], stall_s: float, program: str) -> None:
        self.endpoints = tuple(endpoints)
        self.stall_s = stall_s
        self.program = program
        self._last: int | None = None
        self._since = time.monotonic()

    def check(self, pid: int) -> str | None:
        if self.stall_s <= 0:
            return None
        ticks = cpu_ticks(pid)
        now = time.monotonic()
        if ticks is None or ticks != self._last:
            self._last, self._since = ticks, now
            return None
        if now - self._since < self.stall_s:
            return None
        return (f"{self.program} used no CPU for {self.stall_s:g} s waiting for an RPC worker (frozen, unreachable "
                "or serving another client), stopped it (--rpc-timeout sets this bound)")

    def explain(self, log: str) -> str | None:
        """After llama.cpp failed or was stopped: the workers that do not answer now, else whether the log shows
        the RPC connection failing."""
        lost = lost_workers(self.endpoints)
        if lost:
            return lost
        for mark in ("Remote RPC server crashed", "RPC handshake failed", "Failed to connect"):
            if mark in log:
                return f"the connection to an RPC worker failed ({mark})"
        return None


def lost_workers(endpoints: Sequence[Endpoint], connected: bool = False) -> str | None:
    """'lost RPC worker H:P (why), ...' for the workers that do not answer now (a short probe), else None.
    connected: this process still holds its connections to them, and a worker serves one client at a time, so one
    that accepts the probe but does not answer may be busy with us: only refusals and unreachable hosts count."""
    bad = [r for r in probe_all(endpoints, timeout=2.0) if isinstance(r, WorkerProblem)
           and not (connected and r.silent)]
    return ("lost " + ", ".join(f"RPC worker {p.endpoint} ({p.reason})" for p in bad)) if bad else None
