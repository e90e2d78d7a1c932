"""run_server.py: the model, template and build checks of run_inference.py's table, plus the server's own flags.
In process with --dry-run (a case that wrongly passed would print the command, exit 0 and fail the test, never
start a server); the port and host cases in a real process, since they bind."""

from __future__ import annotations

import socket
from pathlib import Path
from typing import Any

import pytest

from bitnet_gguf.serving.main import main

from .common import REPO_ROOT, Case, assert_one_line_failure, fill, params, run_in_process, run_subprocess, snapshot
from .test_bad_run_inference import MODEL_CASES


def _server_argv(argv: list[str]) -> list[str]:
    """run_inference.py's argv without its prompt and chat-mode flags (the server takes prompts per request)."""
    out: list[str] = []
    skip = False
    for i, a in enumerate(argv):
        if skip:
            skip = False
            continue
        if a == "-p" and i + 1 < len(argv):
            skip = True
            continue
        if a == "-cnv":
            continue
        out.append(a)
    return out


OK = ["-m", "{good}", "--build-dir", "{build}"]
SHARED = [Case(c.id, _server_argv(list(c.argv)), c.expect, c.make) for c in MODEL_CASES if c.id != "model-no-value"]
CASES = [
    *SHARED,
    Case("model-no-value", ["-m"], "argument -m/--model: expected one argument"),
    Case("port-zero", [*OK, "--port", "0"], "--port 0 is not a valid port (1-65535)"),
    Case("port-high", [*OK, "--port", "70000"], "--port 70000 is not a valid port"),
    Case("port-negative", [*OK, "--port", "-80"], "--port -80 is not a valid port"),
    Case("port-text", [*OK, "--port", "http"], "argument --port: invalid int value: 'http'"),
    Case("parallel-zero", [*OK, "-np", "0"], "--parallel must be at least 1"),
    Case("parallel-text", [*OK, "-np", "many"], "argument -np/--parallel: invalid int value: 'many'"),
    Case("max-body-small", [*OK, "--max-body", "10"], "--max-body 10 is too small"),
    Case("max-body-text", [*OK, "--max-body", "12Q"], "argument --max-body: '12Q' is not a size"),
    Case("max-tokens-zero", [*OK, "--max-tokens", "0"], "--max-tokens must be at least 1"),
    Case("n-predict-negative", [*OK, "-n", "-7"], "-n/--n-predict -7: expected a value at least -2"),
    Case("cache-ram-negative", [*OK, "--cache-ram", "-5"], "--cache-ram -5: expected a value at least -1"),
    Case("cache-ram-text", [*OK, "--cache-ram", "1G"], "argument --cache-ram: invalid int value: '1G'"),
    Case("api-key-no-value", [*OK, "--api-key"], "argument --api-key: expected one argument"),
    Case("host-no-value", [*OK, "--host"], "argument --host: expected one argument"),
    Case("prompt-flag", [*OK, "-p", "hi"], "unrecognized arguments: -p hi"),
    Case("rpc-empty-entry", [*OK, "--rpc", ",127.0.0.1:50052"], "--rpc ',127.0.0.1:50052': entry 1 is empty"),
    Case("rpc-port-text", [*OK, "--rpc", "127.0.0.1:http"], "port 'http' is not a port number"),
    Case("ts-without-rpc", [*OK, "--tensor-split", "3,1"], "-ts/--tensor-split needs --rpc"),
    Case("rpc-timeout-negative", [*OK, "--rpc", "127.0.0.1:50052", "--rpc-timeout", "-1"], "--rpc-timeout -1.0: expected"),
]


@pytest.fixture(scope="module")
def ctx_base(bad_ggufs: dict[str, Path], tiny_i2s: Path, build_dir: Path) -> dict[str, Any]:
    return {**bad_ggufs, "good": tiny_i2s, "build": build_dir}


@pytest.mark.parametrize("case", params(CASES))
def test_run_server_bad_input(case: Case, ctx_base: dict[str, Any], tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    ctx = {**ctx_base, "w": tmp_path}
    if case.make:
        case.make(ctx)
    before = snapshot([tmp_path])
    rc, err = run_in_process(main, [fill(a, ctx) for a in case.argv] + ["--dry-run"], capsys)
    expect = [case.expect] if isinstance(case.expect, str) else case.expect
    assert_one_line_failure(rc, err, [fill(e, ctx) for e in expect], before, [tmp_path])


def test_run_server_port_in_use(ctx_base: dict[str, Any], tmp_path: Path) -> None:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        s.listen()
        port = s.getsockname()[1]
        before = snapshot([tmp_path])
        r = run_subprocess([str(REPO_ROOT / "run_server.py"), "-m", str(ctx_base["good"]), "--port", str(port)], timeout=60, cwd=tmp_path)
    assert_one_line_failure(r.returncode, r.stderr, f"127.0.0.1:{port} is already in use", before, [tmp_path])


def test_run_server_unresolvable_host(ctx_base: dict[str, Any], tmp_path: Path) -> None:
    before = snapshot([tmp_path])
    r = run_subprocess([str(REPO_ROOT / "run_server.py"), "-m", str(ctx_base["good"]), "--host", "no-such-host.invalid", "--api-key", "k"],
                       timeout=60, cwd=tmp_path)
    assert_one_line_failure(r.returncode, r.stderr, "--host no-such-host.invalid", before, [tmp_path])
