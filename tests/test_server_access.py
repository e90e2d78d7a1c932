"""Access and limits: --api-key / $BITNET_GGUF_API_KEY (401 without it, /health open), the warning for a
non-loopback host without a key, and the operator's limits: parallel slots, request body size, max_tokens."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import urllib.error
import urllib.request
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import pytest

from bitnet_gguf.serving import guard
from bitnet_gguf.serving.options import Limits, open_warning, parser

from .server_helpers import RUN_SERVER, ServerProc, start_server

openai = pytest.importorskip("openai")

KEY = "s3cret-key-for-tests"
MAX_BODY = 64 << 10
MAX_TOKENS = 16
SLOTS = 2
MESSAGES = [{"role": "user", "content": "Speak of the sea."}]


def request(url: str, body: bytes | None = None, key: str | None = None, method: str | None = None,
            headers: dict[str, str] | None = None) -> tuple[int, Any, dict[str, str]]:
    h = {"Content-Type": "application/json", **(headers or {})}
    if key is not None:
        h["Authorization"] = f"Bearer {key}"
    req = urllib.request.Request(url, data=body, headers=h, method=method)
    try:
        with urllib.request.urlopen(req, timeout=60) as r:
            raw, status, hdrs = r.read(), r.status, dict(r.headers)
    except urllib.error.HTTPError as e:
        raw, status, hdrs = e.read(), e.code, dict(e.headers)
    try:
        return status, json.loads(raw), hdrs
    except ValueError:
        return status, raw.decode(errors="replace"), hdrs


def error_message(body: Any) -> str:
    assert isinstance(body, dict) and isinstance(body["error"]["message"], str) and body["error"]["message"], body
    return body["error"]["message"]


@pytest.fixture(scope="module")
def server(tiny_shakespeare_i2s: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProc]:
    """The key comes from the environment variable; the limits from the command line."""
    os.environ["BITNET_GGUF_API_KEY"] = KEY
    try:
        srv = start_server(tiny_shakespeare_i2s, tmp_path_factory.mktemp("access") / "server.log", "-t", "1",
                           "--parallel", str(SLOTS), "--max-body", "64K", "--max-tokens", str(MAX_TOKENS))
    finally:
        del os.environ["BITNET_GGUF_API_KEY"]
    try:
        srv.wait_ready()
        yield srv
    finally:
        srv.stop()


@pytest.fixture(scope="module")
def client(server: ServerProc) -> Any:
    return openai.OpenAI(base_url=server.url + "/v1", api_key=KEY, timeout=60, max_retries=0)


def chat_body(**extra: Any) -> bytes:
    return json.dumps({"messages": MESSAGES, "max_tokens": 4, **extra}).encode()


@pytest.mark.parametrize("path,method", [("/v1/chat/completions", "POST"), ("/v1/completions", "POST"),
                                         ("/v1/models", "GET"), ("/metrics.json", "GET"), ("/metrics", "GET"),
                                         ("/props", "GET"), ("/tokenize", "POST")])
def test_no_key_gets_401(server: ServerProc, path: str, method: str) -> None:
    body = chat_body() if method == "POST" else None
    for key in (None, "wrong-key", KEY + "x", ""):
        status, resp, headers = request(server.url + path, body, key=key, method=method)
        assert status == 401, (path, key, status, resp)
        assert "API key" in error_message(resp) and resp["error"]["type"] == "authentication_error"
        assert headers.get("WWW-Authenticate") == "Bearer"


def test_health_and_pages_stay_open(server: ServerProc) -> None:
    assert request(server.url + "/health")[:2] == (200, {"status": "ok"})
    for page in ("/", "/dashboard", "/static/dashboard.js"):
        status, _, headers = request(server.url + page)
        assert status == 200, page
        assert "default-src 'self'" in headers["Content-Security-Policy"]


def test_key_lets_requests_through(server: ServerProc, client: Any) -> None:
    r = client.chat.completions.create(model="bitnet", messages=MESSAGES, max_tokens=4)
    assert r.choices[0].message.content
    assert request(server.url + "/metrics.json?history=0", key=KEY)[0] == 200
    # X-Api-Key works too, for tools that cannot set Authorization
    assert request(server.url + "/v1/models", headers={"X-Api-Key": KEY})[0] == 200


def test_body_limit(server: ServerProc) -> None:
    filler = "a" * (MAX_BODY + 10)
    big = json.dumps({"messages": [{"role": "user", "content": filler}], "max_tokens": 4}).encode()
    status, resp, _ = request(server.url + "/v1/chat/completions", big, key=KEY)
    assert status == 413 and str(MAX_BODY) in error_message(resp)
    # just under the limit: not refused for its size (the prompt is then too long for the context: 400)
    under = json.dumps({"messages": [{"role": "user", "content": "word " * ((MAX_BODY - 200) // 5)}], "max_tokens": 4}).encode()
    assert len(under) < MAX_BODY
    status, resp, _ = request(server.url + "/v1/chat/completions", under, key=KEY)
    assert status == 400 and "context" in error_message(resp)


def test_max_tokens_limit(server: ServerProc, client: Any) -> None:
    status, resp, _ = request(server.url + "/v1/chat/completions", chat_body(max_tokens=MAX_TOKENS + 1), key=KEY)
    assert status == 400 and f"limit of {MAX_TOKENS}" in error_message(resp)
    with pytest.raises(openai.BadRequestError):
        client.completions.create(model="bitnet", prompt="ROMEO:", max_tokens=10_000)
    r = client.chat.completions.create(model="bitnet", messages=MESSAGES, max_tokens=MAX_TOKENS, temperature=1.5,
                                       seed=1, frequency_penalty=0)
    assert 0 < r.usage.completion_tokens <= MAX_TOKENS
    # a request that names no limit gets the operator's (llama-server's -n follows --max-tokens)
    status, resp, _ = request(server.url + "/v1/completions", json.dumps({"prompt": "ROMEO:", "ignore_eos": True}).encode(),
                              key=KEY)
    assert status == 200 and resp["usage"]["completion_tokens"] == MAX_TOKENS, resp


def test_parallel_slots_limit(server: ServerProc, client: Any) -> None:
    status, props, _ = request(server.url + "/props", key=KEY)
    assert status == 200 and props["total_slots"] == SLOTS

    def one(i: int) -> int:
        r = client.completions.create(model="bitnet", prompt=f"Story {i}:", max_tokens=MAX_TOKENS, seed=i)
        return r.usage.completion_tokens

    with ThreadPoolExecutor(max_workers=3 * SLOTS) as pool:
        done = list(pool.map(one, range(3 * SLOTS), timeout=120))
    assert all(n > 0 for n in done), done  # more requests than slots: the extra ones queued, none failed
    status, text, _ = request(server.url + "/metrics", key=KEY)
    busy = float(next(line.split()[1] for line in text.splitlines() if line.startswith("llamacpp:n_busy_slots_per_decode")))
    assert 0 < busy <= SLOTS, busy


def test_unknown_model_name(server: ServerProc, client: Any) -> None:
    with pytest.raises(openai.NotFoundError, match="does not exist"):
        client.chat.completions.create(model="gpt-4o", messages=MESSAGES, max_tokens=4)
    for name in ("bitnet", "tiny-shakespeare", "ggml-model-i2_s.gguf"):
        assert client.chat.completions.create(model=name, messages=MESSAGES, max_tokens=2).choices


def test_api_key_flag_wins_over_environment() -> None:
    args = parser().parse_args(["--api-key", "flag"])
    assert args.api_key == "flag" and args.host == "127.0.0.1"  # loopback stays the default


def test_open_host_without_key_warns() -> None:
    assert open_warning("127.0.0.1", None) is None
    assert open_warning("localhost", None) is None
    assert open_warning("0.0.0.0", "key") is None
    line = open_warning("0.0.0.0", None)
    assert line and line.startswith("warning: ") and "\n" not in line and "--api-key" in line


@pytest.mark.parametrize("host,key,warned", [("0.0.0.0", None, True), ("0.0.0.0", "k", False), ("127.0.0.1", None, False)])
def test_warning_is_printed_once(tiny_shakespeare_i2s: Path, host: str, key: str | None, warned: bool) -> None:
    """--dry-run binds nothing, so this checks the warning without opening a port to the network."""
    env = {k: v for k, v in os.environ.items() if k != "BITNET_GGUF_API_KEY"}
    r = subprocess.run([sys.executable, str(RUN_SERVER), "-m", str(tiny_shakespeare_i2s), "--host", host, "--dry-run",
                        *(["--api-key", key] if key else [])], capture_output=True, text=True, timeout=60, env=env)
    assert r.returncode == 0, r.stderr
    assert r.stdout.count("llama-server") >= 1 and "--host 127.0.0.1" in r.stdout  # the child stays on loopback
    lines = r.stderr.strip().splitlines()
    assert lines == ([open_warning(host, key)] if warned else []), r.stderr


def test_guard_refusals_are_openai_errors() -> None:
    limits = Limits(max_body=1024, model_names=frozenset({"bitnet"}))
    for body, code in [(b"{", "invalid_json"), (b"\xff", "invalid_utf8"), (b"[1]", "invalid_json"),
                       (b'{"a": NaN}', "invalid_json"), (b"[" * 5000 + b"]" * 5000, "invalid_json")]:
        with pytest.raises(guard.ApiError) as e:
            guard.parse_json_body(body)
        assert e.value.status == 400 and e.value.code == code
        err = json.loads(e.value.body())["error"]
        assert set(err) == {"message", "type", "code"} and err["message"]
    with pytest.raises(guard.ApiError) as e:
        guard.check_length({"Content-Length": "2048"}, limits)
    assert e.value.status == 413
    with pytest.raises(guard.ApiError) as e:
        guard.check_length({"Transfer-Encoding": "chunked"}, limits)
    assert e.value.status == 411
    with pytest.raises(guard.ApiError) as e:
        guard.check_generation("/v1/chat/completions", {"messages": [{"role": 1}]}, limits, 16)
    assert e.value.status == 400 and "messages[0].role" in e.value.message
