"""llama.cpp's RPC backend (docs/rpc.md): two ggml-rpc-server workers on loopback, each given layers of the model
by a tensor split, against one process.

For the default model, its TL2 form and a tiny model of each architecture: the Python API's logits (every prompt
row, one batch: the GEMM kernels; then one token at a time: the GEMV kernels) are within 1e-5 of the logit range
of one process's (measured: equal), the greedy tokens are the same, and run_inference.py's greedy text is the
same while each worker holds a KV cache (so layers). Then what a user meets when a worker goes: killed (llama.cpp
aborts at once; run_inference.py says which worker, in one line), frozen (llama.cpp would wait for ever;
run_inference.py stops it after --rpc-timeout), and the Python API (the process aborts). Workers listen on
127.0.0.1 only and are killed in fixture teardown.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from bitnet_gguf import paths
from bitnet_gguf.convert import convert
from bitnet_gguf.errors import BitnetError
from bitnet_gguf.formats.gguf_read import read_metadata
from bitnet_gguf.runtime import rpc
from bitnet_gguf.setup import build
from bitnet_gguf.synthetic.gguf_model import write_synthetic_gguf

from .conftest import REPO_ROOT, TINYSHAKESPEARE
from .server_helpers import HOST, RUN_INFERENCE, cli_generated_text, free_port, http_json, running_server, start_server

TOLERANCE = 1e-5  # of the one-process logits' range
PROMPT = TINYSHAKESPEARE.read_text()[:100]  # "First Citizen: ..."
N_GEN = 16
DEAD_WORKER_LIMIT_S = 20.0  # a killed or frozen worker must end the client within this

# The Python API in a child process: RPC devices stay registered for the life of a process, and a worker that
# dies makes llama.cpp abort the whole process; neither may reach the test process.
LOGITS_CHILD = r"""
import json, sys
import numpy as np
from bitnet_gguf import Llama

model, prompt, n_gen, out, kwargs = sys.argv[1], sys.argv[2], int(sys.argv[3]), sys.argv[4], json.loads(sys.argv[5])
llm = Llama(model, n_ctx=256, logits_all=True, n_threads=1, **kwargs)
tokens = llm.tokenize(prompt.encode())
n_prompt = len(tokens)
llm.eval(tokens)
for _ in range(n_gen):
    tokens.append(int(np.argmax(llm.scores[llm.n_tokens - 1])))
    llm.eval(tokens[-1:])
np.save(out, np.asarray(llm.scores[: llm.n_tokens], dtype=np.float32))
print(json.dumps({"tokens": tokens, "n_prompt": n_prompt}))
"""


def child_env() -> dict[str, str]:
    return {**os.environ, "PYTHONPATH": str(REPO_ROOT) + os.pathsep + os.environ.get("PYTHONPATH", "")}


# --- workers ---

@dataclass
class Worker:
    proc: subprocess.Popen[bytes]
    endpoint: rpc.Endpoint
    log: Path

    def log_tail(self) -> str:
        return self.log.read_text(errors="replace")[-2000:] if self.log.exists() else ""

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGCONT)  # a frozen one (test_frozen_worker) too
            self.proc.kill()
        self.proc.wait(timeout=10)


@pytest.fixture(scope="session")
def rpc_server_exe(build_dir: Path) -> Path:
    """ggml-rpc-server of the build; a build made before it was a target gets it from setup_env.py (incremental)."""
    exe = build_dir / "bin" / build.RPC_SERVER
    if not exe.exists():
        subprocess.run([sys.executable, str(REPO_ROOT / "setup_env.py"), "--build-dir", str(build_dir)], check=True)
    assert exe.exists(), f"{exe} missing after setup_env.py"
    return exe


def start_worker(exe: Path, log: Path) -> Worker:
    port = free_port()
    with open(log, "wb") as out:
        proc = subprocess.Popen([str(exe), "-H", HOST, "-p", str(port), "-t", "1"], stdout=out, stderr=subprocess.STDOUT)
    worker = Worker(proc, rpc.Endpoint(HOST, port), log)
    deadline = time.monotonic() + 15
    while True:  # listening = it answers the protocol's HELLO (rpc.probe, what run_inference.py asks first)
        if proc.poll() is not None:
            raise AssertionError(f"ggml-rpc-server exited with {proc.returncode}:\n{worker.log_tail()}")
        try:
            rpc.probe(worker.endpoint, timeout=1.0)
            return worker
        except BitnetError:
            if time.monotonic() > deadline:
                worker.stop()
                raise AssertionError(f"ggml-rpc-server not listening after 15 s:\n{worker.log_tail()}") from None
            time.sleep(0.1)


@contextlib.contextmanager
def running_workers(exe: Path, folder: Path, n: int = 2) -> Iterator[list[Worker]]:
    workers: list[Worker] = []
    try:
        for i in range(n):
            workers.append(start_worker(exe, folder / f"worker{i}.log"))
        yield workers
    finally:
        for w in workers:
            w.stop()


@pytest.fixture(scope="module")
def workers(rpc_server_exe: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[list[Worker]]:
    with running_workers(rpc_server_exe, tmp_path_factory.mktemp("rpc-workers")) as ws:
        yield ws


def rpc_list(ws: list[Worker]) -> str:
    return ",".join(str(w.endpoint) for w in ws)


# --- models ---

MODELS = ["tiny-shakespeare-i2_s", "tiny-shakespeare-tl2", "bitnet-b1.58-i2_s", "bitnet-25-i2_s", "bitnet-i2_s", "llama-i2_s"]


@pytest.fixture(scope="module")
def model_files(tiny_shakespeare_i2s: Path, tiny_i2s: Path, tiny_llama_i2s: Path, models_dir: Path,
                vocab_gguf: Path) -> Callable[[str], Path]:
    made = {"tiny-shakespeare-i2_s": tiny_shakespeare_i2s, "bitnet-b1.58-i2_s": tiny_i2s, "llama-i2_s": tiny_llama_i2s}

    def get(name: str) -> Path:
        if name not in made:
            if name == "tiny-shakespeare-tl2":
                made[name] = convert(REPO_ROOT / "models" / "tiny-shakespeare", "tl2", models_dir / "rpc-ts-tl2.gguf",
                                     progress=False).path
            else:
                arch = name.removesuffix("-i2_s")  # the architectures without a fixture, as the fixtures are made
                made[name] = write_synthetic_gguf(models_dir / f"rpc-{name}.gguf", arch, "tiny", "i2_s", vocab_gguf, seed=4,
                                                  progress=False)
        return made[name]

    return get


def split_for(model: Path) -> str:
    """-ts giving the first worker the first half of the layers and the second the rest (with the output layer).

    llama.cpp puts layer il (of n_layer + 1, the output last) on the first device whose cumulative share exceeds
    il / (n_layer + 1); a share of (k - 1/2) / (n_layer + 1) puts layers 0..k-1 on the first worker, away from any
    boundary a float could fall on either side of."""
    meta = read_metadata(model)
    n_layer = int(meta[f"{meta['general.architecture']}.block_count"])
    k = max(1, n_layer // 2)
    first = 2 * k - 1
    return f"{first},{2 * (n_layer + 1) - first}"


# --- comparisons against one process ---

def python_run(model: Path, out: Path, **kwargs: Any) -> tuple[list[int], int, np.ndarray, str]:
    """The Python API's greedy tokens, prompt length, logits rows and llama.cpp's log (verbose=True)."""
    r = subprocess.run([sys.executable, "-c", LOGITS_CHILD, str(model), PROMPT, str(N_GEN), str(out),
                        json.dumps({**kwargs, "verbose": True})],
                       capture_output=True, text=True, timeout=300, env=child_env(), cwd=REPO_ROOT)
    assert r.returncode == 0, r.stderr[-3000:]
    result = json.loads(r.stdout.strip().splitlines()[-1])
    return result["tokens"], result["n_prompt"], np.load(out), r.stderr


@pytest.mark.parametrize("name", MODELS)
def test_logits_and_greedy_tokens_equal_one_process(name: str, model_files: Callable[[str], Path], workers: list[Worker],
                                                    tmp_path: Path) -> None:
    model = model_files(name)
    tokens, n_prompt, ref, _ = python_run(model, tmp_path / "local.npy")
    got_tokens, _, got, log = python_run(model, tmp_path / "rpc.npy", rpc_servers=rpc_list(workers),
                                         tensor_split=split_for(model))
    assert kv_devices(log) == {f"RPC0[{w.endpoint}]" for w in workers}, log[-3000:]  # each worker holds layers
    assert ref.shape == got.shape == (n_prompt + N_GEN, ref.shape[1])
    assert got_tokens == tokens
    diff, span = float(np.abs(got - ref).max()), float(ref.max() - ref.min())
    print(f"{name}: {len(tokens) - n_prompt} greedy tokens equal after a {n_prompt}-token prompt; "
          f"max |logit diff| {diff:.3g} of range {span:.3g} over {ref.shape[0]} rows x {ref.shape[1]}")
    assert diff <= TOLERANCE * span


def kv_devices(log: str) -> set[str]:
    """The devices llama.cpp put a KV cache on (a device holds one when it holds a layer): 'RPC0[127.0.0.1:p]'."""
    return set(re.findall(r"llama_kv_cache: +(\S+) KV buffer size", log))


@pytest.mark.parametrize("name", MODELS)
def test_run_inference_greedy_text_equal(name: str, model_files: Callable[[str], Path], workers: list[Worker]) -> None:
    model = model_files(name)
    base = [sys.executable, str(RUN_INFERENCE), "-m", str(model), "-p", PROMPT, "-n", str(N_GEN), "-temp", "0", "-t", "1",
            "-c", "256"]
    local = subprocess.run(base, capture_output=True, text=True, timeout=120)
    assert local.returncode == 0, local.stderr[-2000:]
    # -v and llama-completion's own -v: llama.cpp's whole log, which says where the layers went
    remote = subprocess.run([*base, "--rpc", rpc_list(workers), "-ts", split_for(model), "-v", "--", "-v"],
                            capture_output=True, text=True, timeout=120)
    assert remote.returncode == 0, remote.stderr[-3000:]
    assert kv_devices(remote.stderr) == {f"RPC0[{w.endpoint}]" for w in workers}, remote.stderr[-3000:]
    assert "offloaded" in remote.stderr and "CPU KV buffer" not in remote.stderr
    text = cli_generated_text(local.stdout, PROMPT)
    assert text and cli_generated_text(remote.stdout, PROMPT) == text


def test_server_over_workers(model_files: Callable[[str], Path], workers: list[Worker], tmp_path: Path) -> None:
    """run_server.py --rpc: a greedy completion equals run_inference.py's in one process."""
    model = model_files("tiny-shakespeare-i2_s")
    local = subprocess.run([sys.executable, str(RUN_INFERENCE), "-m", str(model), "-p", PROMPT, "-n", str(N_GEN),
                            "-temp", "0", "-t", "1"], capture_output=True, text=True, timeout=120)
    assert local.returncode == 0, local.stderr[-2000:]
    with running_server(model, tmp_path / "server.log", "--rpc", rpc_list(workers), "-ts", split_for(model)) as srv:
        status, body = http_json(srv.url + "/v1/completions", {"prompt": PROMPT, "max_tokens": N_GEN, "temperature": 0})
    assert status == 200, body
    assert body["choices"][0]["text"] == cli_generated_text(local.stdout, PROMPT)


def test_server_names_a_lost_worker(rpc_server_exe: Path, model_files: Callable[[str], Path], tmp_path: Path) -> None:
    """A worker killed while run_server.py runs: the next request makes llama-server abort, each restart aborts
    too while the worker stays down, and the supervisor gives up with one line naming the worker."""
    model = model_files("tiny-shakespeare-i2_s")
    with running_workers(rpc_server_exe, tmp_path) as ws:
        srv = start_server(model, tmp_path / "server.log", "--rpc", rpc_list(ws), "-ts", split_for(model))
        try:
            srv.wait_ready()
            ws[1].proc.kill()
            ws[1].proc.wait(timeout=10)
            status, _ = http_json(srv.url + "/v1/completions", {"prompt": "ROMEO:", "max_tokens": 64}, timeout=60)
            assert status >= 500
            rc = srv.proc.wait(timeout=120)
        finally:
            srv.stop()
    last = [ln for ln in srv.log_tail(20000).splitlines() if ln.startswith("error:")][-1]
    assert rc != 0 and "restarts in a row failed" in last and f"lost RPC worker {ws[1].endpoint} (connection refused)" in last, last



def test_server_bounds_a_frozen_worker(rpc_server_exe: Path, model_files: Callable[[str], Path], tmp_path: Path) -> None:
    """A worker that stops answering (SIGSTOP: no reset ever comes) under run_server.py: the next request makes
    llama-server wait for it, using no CPU; after --rpc-timeout s of that with the request waiting, llama-server is
    killed with a line naming the worker, the request gets an error instead of waiting for ever, and the restarts
    (which hang on the same worker) are bounded the same way until the supervisor gives up, naming the worker."""
    model = model_files("tiny-shakespeare-i2_s")
    with running_workers(rpc_server_exe, tmp_path) as ws:
        srv = start_server(model, tmp_path / "server.log", "--rpc", rpc_list(ws), "-ts", split_for(model),
                           "--rpc-timeout", "2")
        try:
            srv.wait_ready()
            ws[1].proc.send_signal(signal.SIGSTOP)
            t0 = time.monotonic()
            status, _ = http_json(srv.url + "/v1/completions", {"prompt": "ROMEO:", "max_tokens": 32}, timeout=90)
            request_s = time.monotonic() - t0
            rc = srv.proc.wait(timeout=120)
            exit_s = time.monotonic() - t0
        finally:
            ws[1].proc.send_signal(signal.SIGCONT)
            srv.stop()
    print(f"frozen worker under run_server.py: the request got {status} after {request_s:.1f} s, the server exited "
          f"with {rc} after {exit_s:.1f} s")
    assert status >= 500
    errors = [ln for ln in srv.log_tail(20000).splitlines() if ln.startswith("error:")]
    # probed with llama-server gone: the live worker answers; the frozen one accepts into its backlog but does not
    # answer, or (once the backlog is full of the restarts' connections) does not accept either
    frozen = re.compile(rf"lost RPC worker {ws[1].endpoint} \((accepts connections but does not answer|no answer) "
                        r"within 2 s\)( |$)")
    assert errors[0].startswith("error: llama-server used no CPU for 2 s waiting for an RPC worker"), errors[0]
    assert "1 request(s) waiting: lost RPC worker" in errors[0] and frozen.search(errors[0]), errors[0]
    assert rc != 0 and "restarts in a row failed" in errors[-1] and frozen.search(errors[-1]), errors[-1]

# --- a worker that goes away ---

@dataclass
class LongRun:
    proc: subprocess.Popen[bytes]
    out: bytearray

    def wait_output(self, n: int, timeout: float = 60) -> None:
        """Until the client has printed n bytes: it is generating, with every layer on the workers."""
        deadline = time.monotonic() + timeout
        while len(self.out) < n:
            assert self.proc.poll() is None, f"the client exited with {self.proc.returncode} before generating"
            assert time.monotonic() < deadline, "no generated text"
            time.sleep(0.05)

    def wait_exit(self) -> tuple[int, float, str]:
        """(exit code, seconds, stderr); killed (and the test failed) when it outlives DEAD_WORKER_LIMIT_S."""
        t0 = time.monotonic()
        try:
            rc = self.proc.wait(timeout=DEAD_WORKER_LIMIT_S)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait(timeout=10)
            pytest.fail(f"the client still ran {DEAD_WORKER_LIMIT_S:g} s after the worker went")
        assert self.proc.stderr is not None
        return rc, time.monotonic() - t0, self.proc.stderr.read().decode(errors="replace")


@contextlib.contextmanager
def long_generation(argv: list[str]) -> Iterator[LongRun]:
    proc = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=child_env(), cwd=REPO_ROOT)
    run = LongRun(proc, bytearray())
    assert proc.stdout is not None
    stdout = proc.stdout

    def read() -> None:
        while chunk := stdout.read1(4096):
            run.out += chunk

    reader = threading.Thread(target=read, daemon=True)
    reader.start()
    try:
        yield run
    finally:
        if proc.poll() is None:
            proc.kill()
        proc.wait(timeout=10)
        reader.join(timeout=5)


def long_inference(model: Path, ws: list[Worker], *extra: str) -> list[str]:
    """run_inference.py generating far longer than the test lasts (sampled text, end of text ignored)."""
    return [sys.executable, str(RUN_INFERENCE), "-m", str(model), "-p", "ROMEO:", "-n", "100000", "-c", "8192",
            "-temp", "0.8", "-t", "1", "--rpc", rpc_list(ws), "-ts", split_for(model), *extra, "--", "--ignore-eos"]


def test_killed_worker_ends_the_run_with_one_line(rpc_server_exe: Path, model_files: Callable[[str], Path],
                                                  tmp_path: Path) -> None:
    """kill -9 of a worker mid-generation: its connection resets and llama.cpp dies (measured: ~0.6 s), by its own
    abort when a read fails first, by SIGPIPE when a write does; run_inference.py names the worker in one line."""
    model = model_files("tiny-shakespeare-i2_s")
    with running_workers(rpc_server_exe, tmp_path) as ws, long_generation(long_inference(model, ws)) as run:
        run.wait_output(2000)
        ws[1].proc.kill()
        rc, seconds, err = run.wait_exit()
    print(f"killed worker: the client exited with {rc} after {seconds:.2f} s: {err.strip()}")
    assert rc != 0
    lines = err.strip().splitlines()
    assert len(lines) == 1, err
    assert re.match(r"error: llama-completion was killed by SIG(ABRT|PIPE): lost RPC worker ", lines[0]), lines[0]
    assert f"RPC worker {ws[1].endpoint} (connection refused)" in lines[0]


def test_frozen_worker_is_bounded(rpc_server_exe: Path, model_files: Callable[[str], Path], tmp_path: Path) -> None:
    """A worker that stops answering (SIGSTOP: its kernel still acknowledges, as a hung worker's or a vanished
    host's connection gives no reset): llama.cpp waits for ever, using no CPU; --rpc-timeout bounds it."""
    model = model_files("tiny-shakespeare-i2_s")
    with running_workers(rpc_server_exe, tmp_path) as ws, \
            long_generation(long_inference(model, ws, "--rpc-timeout", "2")) as run:
        run.wait_output(2000)
        ws[1].proc.send_signal(signal.SIGSTOP)
        rc, seconds, err = run.wait_exit()
    print(f"frozen worker: the client exited with {rc} after {seconds:.2f} s: {err.strip()}")
    assert rc == 1
    lines = err.strip().splitlines()
    assert len(lines) == 1, err
    assert lines[0].startswith("error: llama-completion used no CPU for 2 s waiting for an RPC worker"), lines[0]
    assert f"RPC worker {ws[1].endpoint} (accepts connections but does not answer" in lines[0]


def test_killed_worker_ends_python_process_in_one_line(rpc_server_exe: Path, model_files: Callable[[str], Path],
                                                       tmp_path: Path) -> None:
    """The Python API has no front end between it and llama.cpp, whose RPC backend aborts on a lost worker: the
    process ends (documented), with one line naming the worker and exit code 1 instead of a backtrace and SIGABRT."""
    model = model_files("tiny-shakespeare-i2_s")
    with running_workers(rpc_server_exe, tmp_path) as ws:
        code = ("import sys\nfrom bitnet_gguf import Llama\n"
                f"llm = Llama({str(model)!r}, n_ctx=8192, n_threads=1, rpc_servers={rpc_list(ws)!r}, tensor_split='1,3')\n"
                "for c in llm('ROMEO:', max_tokens=8000, temperature=0.8, stream=True):\n"
                "    sys.stdout.write(c['choices'][0]['text']); sys.stdout.flush()\n")
        with long_generation([sys.executable, "-c", code]) as run:
            run.wait_output(2000)
            ws[1].proc.kill()
            rc, seconds, err = run.wait_exit()
    print(f"python API: exited with {rc} after {seconds:.2f} s: {err.strip()}")
    assert rc == 1
    lines = [ln for ln in err.strip().splitlines() if not ln.startswith("llama_context: ")]  # the -c warning
    assert len(lines) == 1, err
    assert lines[0].startswith(f"error: lost RPC worker {ws[1].endpoint} (connection refused); the process exits "
                               "(ggml: "), lines[0]
    assert "Remote RPC server crashed" in lines[0]


def test_python_later_model_leaves_the_workers_alone(rpc_server_exe: Path, model_files: Callable[[str], Path],
                                                     tmp_path: Path) -> None:
    """ggml cannot unregister RPC devices: a later Llama without rpc_servers in the same process must not use (or
    even ask for the memory of) the earlier workers, which would abort the process once they are gone."""
    model = model_files("tiny-shakespeare-i2_s")
    code = ("import sys\nfrom bitnet_gguf import Llama\n"
            "def text(llm): return llm('ROMEO:', max_tokens=8, temperature=0)['choices'][0]['text']\n"
            f"llm = Llama({str(model)!r}, n_ctx=256, n_threads=1, rpc_servers=sys.argv[1], tensor_split='1,3')\n"
            "first = text(llm); llm.close()\n"
            "print('loaded', flush=True); sys.stdin.readline()\n"
            f"print(text(Llama({str(model)!r}, n_ctx=256, n_threads=1)) == first, flush=True)\n")
    with running_workers(rpc_server_exe, tmp_path) as ws:
        proc = subprocess.Popen([sys.executable, "-c", code, rpc_list(ws)], stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                stderr=subprocess.PIPE, text=True, env=child_env(), cwd=REPO_ROOT)
        try:
            assert proc.stdout is not None and proc.stdin is not None
            assert proc.stdout.readline().strip() == "loaded", proc.stderr.read() if proc.stderr else ""
            for w in ws:
                w.stop()
            out, err = proc.communicate("\n", timeout=120)
        finally:
            if proc.poll() is None:
                proc.kill()
                proc.wait(timeout=10)
    assert proc.returncode == 0, err[-3000:]
    assert out.strip() == "True"


# --- the checks before llama.cpp starts ---

@contextlib.contextmanager
def fake_worker(behave: Callable[[socket.socket], None]) -> Iterator[rpc.Endpoint]:
    """A loopback listener that treats each connection with `behave`."""
    srv = socket.socket()
    srv.bind((HOST, 0))
    srv.listen(4)
    stop = threading.Event()

    def serve() -> None:
        srv.settimeout(0.1)
        while not stop.is_set():
            try:
                conn, _ = srv.accept()
            except TimeoutError:
                continue
            except OSError:
                return
            with conn:
                behave(conn)

    t = threading.Thread(target=serve, daemon=True)
    t.start()
    try:
        yield rpc.Endpoint(HOST, srv.getsockname()[1])
    finally:
        stop.set()
        t.join(timeout=5)
        srv.close()


def _hello_reply(version: tuple[int, int, int]) -> Callable[[socket.socket], None]:
    def behave(conn: socket.socket) -> None:
        conn.recv(1 + 8 + 24)
        conn.sendall((28).to_bytes(8, "little") + bytes([*version, 0]) + bytes(24))
    return behave


@pytest.mark.parametrize("behave, expect", [
    (lambda conn: None, "not a ggml-rpc-server"),  # accepts, then closes
    (lambda conn: conn.sendall(b"HTTP/1.1 400 Bad Request\r\n\r\n"), "not a ggml-rpc-server"),
    (_hello_reply((3, 0, 0)), "speaks RPC protocol 3.0.0, this build 7.0.0"),
    (lambda conn: time.sleep(1.0), "accepts connections but does not answer within 0.5 s"),
], ids=["closes", "http", "old-protocol", "silent"])
def test_probe_names_the_problem(behave: Callable[[socket.socket], None], expect: str) -> None:
    with fake_worker(behave) as ep, pytest.raises(rpc.WorkerProblem) as e:
        rpc.probe(ep, timeout=0.5)
    assert f"RPC worker {ep}" in str(e.value) and expect in str(e.value)


def test_probe_reports_devices(workers: list[Worker]) -> None:
    got = rpc.check_workers([w.endpoint for w in workers])
    assert [(w.version, w.devices) for w in got] == [(rpc.RPC_PROTO, 1)] * 2
    with pytest.raises(BitnetError, match=r"-ts: 3 proportions for 2 RPC devices"):
        rpc.check_split((1, 1, 1), got, "-ts")


def test_protocol_constants_match_the_pinned_header() -> None:
    header = (paths.source_dir() / "ggml" / "include" / "ggml-rpc.h").read_text()
    defines = dict(re.findall(r"#define (RPC_PROTO_\w+_VERSION|GGML_RPC_MAX_SERVERS)\s+(\d+)", header))
    assert tuple(int(defines[f"RPC_PROTO_{p}_VERSION"]) for p in ("MAJOR", "MINOR", "PATCH")) == rpc.RPC_PROTO
    assert int(defines["GGML_RPC_MAX_SERVERS"]) == rpc.MAX_SERVERS


@pytest.mark.parametrize("text, expect", [
    ("10.0.0.2:50052, worker-b:50053", (rpc.Endpoint("10.0.0.2", 50052), rpc.Endpoint("worker-b", 50053))),
    ("a:1,", "entry 2 is empty"),
    (" ", "entry 1 is empty"),
    ("a:", "port '' is not a port number"),
    ("a:65536", "port '65536' is not a port number"),
    ("a:-1", "port '-1' is not a port number"),
    (":50052", "is not HOST:PORT"),
    ("fe80::1:50052", "IPv6 addresses are not supported"),
    ("my host:1", "the host name holds a space"),
    (",".join(f"h{i}:1" for i in range(17)), "17 workers, ggml's RPC takes at most 16"),
])
def test_parse_rpc_servers(text: str, expect: tuple[rpc.Endpoint, ...] | str) -> None:
    if isinstance(expect, str):
        with pytest.raises(BitnetError, match=re.escape(expect)):
            rpc.parse_rpc_servers(text)
    else:
        assert rpc.parse_rpc_servers(text) == expect


@pytest.mark.parametrize("value, expect", [
    ("3,1", (3.0, 1.0)), ("3/1", (3.0, 1.0)), ([0, 2.5], (0.0, 2.5)),
    ("0,0", "at least one proportion must be above 0"), ("1,inf", "must be a finite number"),
    ("1,x", "entry 2 ('x') is not a number"), ([1, True], "entry 2 (True) is not a number"), (7, "got int"),
])
def test_parse_tensor_split(value: Any, expect: tuple[float, ...] | str) -> None:
    if isinstance(expect, str):
        with pytest.raises(BitnetError, match=re.escape(expect)):
            rpc.parse_tensor_split(value)
    else:
        assert rpc.parse_tensor_split(value) == expect


# --- the build ---

def test_build_has_the_rpc_backend(rpc_server_exe: Path, build_dir: Path) -> None:
    args = build.cmake_args(paths.load_pin(), "gcc", "g++", False, paths.source_dir(), build_dir / "bitnet-generated")
    assert "-DGGML_RPC=ON" in args and build.RPC_SERVER in build.TARGETS
    assert "GGML_RPC:BOOL=ON" in (build_dir / "CMakeCache.txt").read_text()
    r = subprocess.run([str(rpc_server_exe), "--help"], capture_output=True, text=True, timeout=30)
    assert "host to bind to (default: 127.0.0.1)" in r.stderr  # docs/rpc.md relies on this default


def test_changed_cmake_args_reconfigure(tmp_path: Path) -> None:
    """build.configure runs cmake again when the arguments differ from the stamp (an existing build gains -DGGML_RPC=ON)."""
    ran: list[list[str]] = []

    class Runner:
        def run(self, cmd: list[str], log: Any, name: str, env: dict[str, str] | None = None) -> None:
            ran.append(cmd)
            (tmp_path / "CMakeCache.txt").write_text("")

    old = ["-S", "src", "-DGGML_NATIVE=ON"]
    new = [*old, "-DGGML_RPC=ON"]
    log = open(os.devnull, "w")
    with log:
        assert build.configure(Runner(), log, tmp_path, old)  # type: ignore[arg-type]
        assert not build.configure(Runner(), log, tmp_path, old)  # type: ignore[arg-type]
        assert build.configure(Runner(), log, tmp_path, new)  # type: ignore[arg-type]
    assert [c[3:] for c in ran] == [old, new]
