"""run_server.py, run_inference.py and bitnet_gguf.Llama as real processes on tiny random I2_S models.

One server (module fixture) answers the OpenAI-client tests; the lifecycle tests start their own.
"""

from __future__ import annotations

import re
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import pytest

from bitnet_gguf.runtime import chat_templates

from .server_helpers import (
    HOST,
    RUN_SERVER,
    ServerProc,
    cli_generated_text,
    free_port,
    http_json,
    port_is_free,
    run_inference,
    running_server,
    start_server,
)

openai = pytest.importorskip("openai")

PROMPT = "Once upon a time"
N_GREEDY = 16
MESSAGES = [{"role": "system", "content": "You are a helpful assistant."},
            {"role": "user", "content": "Write a line about the sea."}]


@pytest.fixture(scope="module")
def server(tiny_i2s: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProc]:
    with running_server(tiny_i2s, tmp_path_factory.mktemp("server") / "server.log", "--alias", "tiny") as srv:
        yield srv


@pytest.fixture(scope="module")
def client(server: ServerProc) -> Any:
    return openai.OpenAI(base_url=server.url + "/v1", api_key="not-needed", timeout=120, max_retries=0)


def metric(server: ServerProc, name: str) -> float:
    status, text = http_json(server.url + "/metrics")
    assert status == 200, text
    m = re.search(rf"^llamacpp:{name} (\S+)$", text, re.M)
    assert m, f"{name} missing from /metrics:\n{text}"
    return float(m.group(1))


def test_health_and_metrics(server: ServerProc) -> None:
    assert http_json(server.url + "/health") == (200, {"status": "ok"})
    assert metric(server, "prompt_tokens_total") >= 0


def test_chat_completion_uses_bitnet_template(server: ServerProc, client: Any) -> None:
    r = client.chat.completions.create(model="tiny", messages=MESSAGES, max_tokens=8, temperature=0)
    msg = r.choices[0].message
    assert msg.role == "assistant"
    assert isinstance(msg.content, str) and msg.content != ""
    assert r.usage.completion_tokens > 0
    # The server formats chats with bitnet.cpp's template (the GGUF has none): same text as our renderer.
    status, body = http_json(server.url + "/apply-template", {"messages": MESSAGES})
    assert status == 200, body
    expected = chat_templates.render(chat_templates.BUILTIN["bitnet"], MESSAGES, bos_token="<|begin_of_text|>")
    assert body["prompt"] in (expected, expected.removeprefix("<|begin_of_text|>"))
    assert "System: You are a helpful assistant.User: Write a line about the sea.<|eot_id|>Assistant: " in body["prompt"]


def test_streamed_completion(client: Any) -> None:
    pieces = []
    stream = client.completions.create(model="tiny", prompt=PROMPT, max_tokens=8, temperature=0, stream=True)
    for chunk in stream:
        if chunk.choices and chunk.choices[0].text:
            pieces.append(chunk.choices[0].text)
    assert len(pieces) >= 2, pieces  # arrived token by token, not as one block
    whole = client.completions.create(model="tiny", prompt=PROMPT, max_tokens=8, temperature=0)
    assert "".join(pieces) == whole.choices[0].text != ""


def test_streamed_chat(client: Any) -> None:
    deltas = [c.choices[0].delta.content for c in client.chat.completions.create(
        model="tiny", messages=MESSAGES, max_tokens=6, temperature=0, stream=True) if c.choices and c.choices[0].delta.content]
    assert deltas and "".join(deltas) != ""


def test_concurrent_requests_are_batched(server: ServerProc, client: Any) -> None:
    n_requests, n_tokens = 8, 8
    decodes_before = metric(server, "n_decode_total")
    predicted_before = metric(server, "tokens_predicted_total")

    def one(i: int) -> str:
        if i % 2:
            r = client.chat.completions.create(model="tiny", max_tokens=n_tokens, temperature=0.8, seed=i,
                                               messages=[{"role": "user", "content": f"Tell me fact number {i}."}])
            return r.choices[0].message.content or ""
        r = client.completions.create(model="tiny", prompt=f"Story {i}: once upon a time", max_tokens=n_tokens, seed=i)
        return r.choices[0].text

    with ThreadPoolExecutor(max_workers=n_requests) as pool:
        results = list(pool.map(one, range(n_requests), timeout=180))
    assert len(results) == n_requests
    assert all(isinstance(t, str) and t != "" for t in results), results
    predicted = metric(server, "tokens_predicted_total") - predicted_before
    decodes = metric(server, "n_decode_total") - decodes_before
    assert predicted >= n_requests  # every request generated
    # continuous batching: slots share llama_decode calls, so there are fewer calls than generated tokens
    assert decodes < predicted, (decodes, predicted)


@pytest.fixture(scope="module")
def py_llm(tiny_i2s: Path) -> Iterator[Any]:
    from bitnet_gguf import Llama

    llm = Llama(tiny_i2s, n_ctx=2048, n_threads=2)
    yield llm
    llm.close()


def greedy_three_ways(srv: ServerProc, model: Path, llm: Any) -> dict[str, tuple[str, int]]:
    """(generated text, prompt token count) for one greedy completion through the server, the CLI and Python."""
    status, body = http_json(srv.url + "/v1/completions", {"prompt": PROMPT, "max_tokens": N_GREEDY, "temperature": 0})
    assert status == 200, body
    out = {"server": (body["choices"][0]["text"], body["usage"]["prompt_tokens"])}

    cli = run_inference("-m", str(model), "-p", PROMPT, "-n", str(N_GREEDY), "-temp", "0", "-t", "2", "-c", "2048", "-v",
                        "--", "--verbose-prompt")
    assert cli.returncode == 0, cli.stderr[-3000:]
    m = re.search(r"number of tokens in prompt = (\d+)", cli.stderr)
    assert m, cli.stderr[-3000:]
    out["cli"] = (cli_generated_text(cli.stdout, PROMPT), int(m.group(1)))

    r = llm.create_completion(PROMPT, max_tokens=N_GREEDY, temperature=0)
    out["python"] = (r["choices"][0]["text"], r["usage"]["prompt_tokens"])
    return out


def test_greedy_identical_server_cli_python(server: ServerProc, tiny_i2s: Path, py_llm: Any) -> None:
    tokens = py_llm.tokenize(PROMPT.encode(), add_bos=True, special=True)
    assert tokens[0] == py_llm.token_bos() and tokens.count(py_llm.token_bos()) == 1
    status, body = http_json(server.url + "/tokenize", {"content": PROMPT, "add_special": True})
    assert status == 200 and body["tokens"] == tokens, body

    out = greedy_three_ways(server, tiny_i2s, py_llm)
    assert out["server"] == out["cli"] == out["python"], out
    text, n_prompt = out["server"]
    assert text.strip() and n_prompt == len(tokens)


def test_greedy_chat_identical_server_python(client: Any, py_llm: Any) -> None:
    s = client.chat.completions.create(model="tiny", messages=MESSAGES, max_tokens=8, temperature=0)
    p = py_llm.create_chat_completion(MESSAGES, max_tokens=8, temperature=0)
    assert s.choices[0].message.content == p["choices"][0]["message"]["content"]
    assert s.usage.prompt_tokens == p["usage"]["prompt_tokens"]


def test_greedy_identical_on_varied_text(tiny_llama_i2s: Path, tmp_path: Path) -> None:
    """tiny_i2s only repeats the last prompt token; this model's greedy text changes every token, so a
    tokenization or sampling difference between the three ways would show."""
    from bitnet_gguf import Llama

    srv = start_server(tiny_llama_i2s, tmp_path / "server.log")
    llm = Llama(tiny_llama_i2s, n_ctx=2048, n_threads=2)
    try:
        srv.wait_ready()
        out = greedy_three_ways(srv, tiny_llama_i2s, llm)
    finally:
        llm.close()
        assert srv.stop() == 0
    assert out["server"] == out["cli"] == out["python"], out
    assert len(set(out["server"][0].split())) > 3, out  # really varied


def one_line_error(stderr: str) -> str:
    lines = stderr.strip().splitlines()
    assert len(lines) == 1, stderr
    assert lines[0].startswith("error: "), stderr
    return lines[0]


def test_taken_port_is_reported(tiny_i2s: Path) -> None:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind((HOST, 0))
        s.listen()
        port = s.getsockname()[1]
        t0 = time.monotonic()
        r = subprocess.run([sys.executable, str(RUN_SERVER), "-m", str(tiny_i2s), "--host", HOST, "--port", str(port)],
                           capture_output=True, text=True, timeout=60)
    assert r.returncode == 1
    line = one_line_error(r.stderr)
    assert f"{HOST}:{port}" in line and "in use" in line
    assert time.monotonic() - t0 < 20  # refused before loading anything


def test_missing_model_server(tmp_path: Path) -> None:
    missing = tmp_path / "nope" / "ggml-model-i2_s.gguf"
    r = subprocess.run([sys.executable, str(RUN_SERVER), "-m", str(missing), "--port", str(free_port())],
                       capture_output=True, text=True, timeout=60)
    assert r.returncode == 1
    line = one_line_error(r.stderr)
    assert str(missing) in line and "python setup_env.py" in line


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGINT], ids=["SIGTERM", "SIGINT"])
def test_signal_stops_server_cleanly(sig: int, tiny_i2s: Path, tmp_path: Path) -> None:
    srv = start_server(tiny_i2s, tmp_path / "server.log")
    try:
        srv.wait_ready()
    except BaseException:
        srv.stop(signal.SIGKILL)
        raise
    t0 = time.monotonic()
    rc = srv.stop(sig)
    elapsed = time.monotonic() - t0
    assert rc == 0, srv.log_tail()
    assert elapsed < 10, elapsed
    # llama-server is gone too: its port can be bound again
    deadline = time.monotonic() + 5
    while not port_is_free(srv.port) and time.monotonic() < deadline:
        time.sleep(0.1)
    assert port_is_free(srv.port), "llama-server still listening after the wrapper exited"
