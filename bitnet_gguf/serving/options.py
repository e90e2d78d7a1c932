"""run_server.py's command line: our options, the limits an operator sets, and the llama-server child's command."""

from __future__ import annotations

import argparse
import errno
import ipaddress
import os
import re
import socket
from dataclasses import dataclass, field
from pathlib import Path

from ..errors import ArgumentParser, BitnetError
from ..formats.gguf_read import read_metadata
from ..paths import build_dir
from ..runtime import chat_templates, rpc
from ..runtime.inference import INFERENCE_RULES, add_shared_options, check_numbers
from ..runtime.locate import find_tool, resolve_model
from ..runtime.threads import physical_cores

API_KEY_ENV = "BITNET_GGUF_API_KEY"
DEFAULT_MAX_BODY = 1 << 20  # 1 MiB: a full 128k-token prompt is ~0.5 MB of text
CHILD_HOST = "127.0.0.1"  # the llama-server child is never reachable from other machines


def parse_size(text: str) -> int:
    """Bytes from '1048576', '512K', '4M' or '1G' (binary units)."""
    m = re.fullmatch(r"\s*(\d+)\s*([kKmMgG]?)[iI]?[bB]?\s*", text)
    if not m:
        raise argparse.ArgumentTypeError(f"{text!r} is not a size (examples: 1048576, 512K, 4M)")
    return int(m.group(1)) << {"": 0, "k": 10, "m": 20, "g": 30}[m.group(2).lower()]


def parser() -> argparse.ArgumentParser:
    p = ArgumentParser(  # one-line errors for bad flags, as every entry point
        prog="run_server.py",
        description="Serve a BitNet GGUF over an OpenAI-compatible HTTP API (llama-server with continuous batching, "
                    "supervised and restarted if it dies), with a chat page at / and a live dashboard at /dashboard. "
                    "Options after -- go to llama-server unchanged.")
    add_shared_options(p, "llama-server", "/v1/chat/completions")
    p.add_argument("--host", default="127.0.0.1", help="address to listen on (default: 127.0.0.1; 0.0.0.0 = every interface)")
    p.add_argument("--port", type=int, default=8080, help="port (default: 8080)")
    p.add_argument("-c", "--ctx-size", type=int, default=2048,
                   help="KV cache size in tokens, shared by all parallel requests (default: 2048)")
    p.add_argument("-n", "--n-predict", type=int, default=4096,
                   help="token limit for requests that set no max_tokens (default: 4096, as bitnet.cpp)")
    p.add_argument("-np", "--parallel", type=int, default=4,
                   help="max parallel slots: requests decoded together, later ones queue (default: 4)")
    p.add_argument("-temp", "--temperature", type=float, default=0.8,
                   help="temperature for requests that set none (default: 0.8)")
    p.add_argument("--cache-ram", type=int, default=0, metavar="MiB",
                   help="RAM for llama-server's cache of earlier prompts beyond the slots' own (default: 0 = off, so "
                        "memory stays flat; llama-server alone would let it grow to 8 GiB)")
    p.add_argument("--api-key", default=None,
                   help=f"require 'Authorization: Bearer KEY' on every route but /health and the static pages "
                        f"(default: ${API_KEY_ENV}, else no key)")
    p.add_argument("--max-body", type=parse_size, default=DEFAULT_MAX_BODY, metavar="BYTES",
                   help="largest request body accepted, e.g. 512K or 4M (default: 1M); larger ones get 413")
    p.add_argument("--max-tokens", type=int, default=None, metavar="N",
                   help="largest max_tokens a request may ask for; above it: 400 (default: the model's context size)")
    p.add_argument("--alias", action="append", default=[], metavar="NAME",
                   help="another model name requests may use (repeatable); 'bitnet', the file name and the model's "
                        "own name are always accepted")
    # a worker that dies makes llama-server abort, and the supervisor restarts it (each restart fails while the
    # worker stays down, and it gives up after a few); a frozen one is bounded by --rpc-timeout (rpc_watch.py)
    rpc.add_rpc_options(p, stall=True)
    return p


@dataclass(frozen=True)
class Limits:
    """What the front enforces before a request reaches llama-server."""

    max_body: int = DEFAULT_MAX_BODY
    max_tokens: int | None = None  # None: the child's context size, learned once it is loaded
    api_key: str | None = None
    model_names: frozenset[str] = field(default_factory=frozenset)


@dataclass(frozen=True)
class ServeConfig:
    host: str
    port: int
    model: Path
    limits: Limits
    child_args: list[str]  # llama-server's arguments without --host/--port (the supervisor picks the port)
    exe: Path
    name: str  # what the pages call the model: the GGUF's general.name, else the file name
    rpc_plan: rpc.RpcPlan | None = None  # RPC workers, checked before llama-server starts

    def child_command(self, port: int) -> list[str]:
        return [str(self.exe), "--host", CHILD_HOST, "--port", str(port), *self.child_args]


def model_names(model: Path, meta_name: object, aliases: list[str]) -> frozenset[str]:
    """Names a request's "model" may carry: a generic one, the file, its folder, the GGUF's general.name, --alias."""
    names = {"bitnet", model.name, model.stem, model.parent.name, str(model), *aliases}
    if isinstance(meta_name, str) and meta_name:
        names.add(meta_name)
    return frozenset(n for n in names if n)


def build_config(args: argparse.Namespace, passthrough: list[str]) -> ServeConfig:
    if not 0 < args.port < 65536:
        raise BitnetError(f"--port {args.port} is not a valid port (1-65535)")
    if args.parallel < 1:
        raise BitnetError("--parallel must be at least 1")
    if args.max_body < 1024:
        raise BitnetError(f"--max-body {args.max_body} is too small (at least 1K)")
    if args.max_tokens is not None and args.max_tokens < 1:
        raise BitnetError("--max-tokens must be at least 1")
    shared = {k: INFERENCE_RULES[k] for k in ("threads", "ctx_size", "n_predict", "temperature")}
    check_numbers(args, {**shared, "cache_ram": ("--cache-ram", -1, None)})
    exe = find_tool("llama-server", build_dir(args.build_dir))
    model = resolve_model(args.model)
    meta = read_metadata(model)
    template = chat_templates.select(meta, args.chat_template)
    threads = args.threads if args.threads and args.threads > 0 else physical_cores()
    n_predict = args.n_predict if args.max_tokens is None else min(args.n_predict, args.max_tokens)
    plan = rpc.plan_from_args(args)
    child_args = [
        "-m", str(model), "-t", str(threads), "-c", str(args.ctx_size), "-n", str(n_predict),
        "--temp", str(args.temperature),
        # -cb: continuous batching (new requests join the running batch); -kvu: one KV pool for all slots, so
        # a single request may still use the whole -c instead of -c / --parallel
        "-cb", "-np", str(args.parallel), "-kvu", "--metrics",
        *chat_templates.llama_cpp_args(template),
        *(plan.args if plan is not None else []),
        # llama-server serves HTTP with max(np + 2, cores - 1) threads; a request waiting for a slot holds one, so
        # with more requests than that even /health and /metrics would wait. Threads that wait cost little.
        *([] if "--threads-http" in passthrough else ["--threads-http", str(max(32, 2 * args.parallel + 8))]),
        *([] if {"-cram", "--cache-ram"} & set(passthrough) else ["--cache-ram", str(args.cache_ram)]),
        *passthrough,
    ]
    key = args.api_key if args.api_key is not None else os.environ.get(API_KEY_ENV) or None
    limits = Limits(max_body=args.max_body, max_tokens=args.max_tokens, api_key=key or None,
                    model_names=model_names(model, meta.get("general.name"), args.alias))
    meta_name = meta.get("general.name")
    name = meta_name if isinstance(meta_name, str) and meta_name else model.name
    return ServeConfig(args.host, args.port, model, limits, child_args, exe, name, plan)


def child_environment() -> dict[str, str]:
    """llama-server's environment: ours, with glibc's malloc held to two arenas unless the operator chose otherwise.
    Each of its HTTP threads would otherwise get an arena of its own, and RSS creeps up under load (soak: +7 MB
    and still rising after two minutes with the default, flat with two)."""
    env = dict(os.environ)
    env.setdefault("MALLOC_ARENA_MAX", "2")
    return env


def is_loopback(host: str) -> bool:
    """True when every address `host` names is a loopback one (so other machines cannot connect)."""
    try:
        infos = socket.getaddrinfo(host or None, None, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE)
    except socket.gaierror:
        return False
    return all(ipaddress.ip_address(str(info[4][0]).split("%")[0]).is_loopback for info in infos)


def open_warning(host: str, api_key: str | None) -> str | None:
    if api_key or is_loopback(host):
        return None
    return (f"warning: listening on {host} without --api-key: anyone who can reach this port can use the model "
            f"(set --api-key or ${API_KEY_ENV})")


def base_url(host: str, port: int) -> str:
    """URL for reaching the server from this machine (a wildcard address is reached through loopback)."""
    reach = {"0.0.0.0": "127.0.0.1", "::": "::1", "": "127.0.0.1"}.get(host, host)
    return f"http://[{reach}]:{port}" if ":" in reach else f"http://{reach}:{port}"


def bind_error(host: str, port: int, e: OSError) -> BitnetError:
    if e.errno == errno.EADDRINUSE:
        return BitnetError(f"{host}:{port} is already in use (another server running?); choose another --port")
    return BitnetError(f"cannot listen on {host}:{port}: {e.strerror or e}")


def free_loopback_port() -> int:
    """A port the kernel just handed out on loopback, for the child (it binds it a moment later)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind((CHILD_HOST, 0))
        return int(s.getsockname()[1])
