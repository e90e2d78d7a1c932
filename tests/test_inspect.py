"""`bitnet-gguf info` and `doctor`: the figures they print are the file's and the build's, checked independently."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from bitnet_gguf.formats.constants import GGML_TYPE_I2_S, GGML_TYPE_TL2
from bitnet_gguf.formats.gguf_read import GGUFFile
from bitnet_gguf.setup.kernel_gen import recorded_k_values
from bitnet_gguf.synthetic.gguf_model import write_synthetic_gguf
from bitnet_gguf.tools.bandwidth import read_bandwidth

from .conftest import REPO_ROOT
from .ggml_ctypes import Ggml


def cli(*args: str, env: dict[str, str] | None = None, timeout: float = 120) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "bitnet_gguf", *args], capture_output=True, text=True, cwd=REPO_ROOT,
                          env=env, timeout=timeout)


def info_json(path: Path, *args: str, env: dict[str, str] | None = None) -> dict:
    r = cli("info", str(path), "--json", *args, env=env)
    assert r.returncode == 0, r.stderr
    return json.loads(r.stdout)


def test_info_figures_match_the_file(tiny_i2s: Path) -> None:
    f = GGUFFile(tiny_i2s)
    d = info_json(tiny_i2s, "-c", "1000")
    meta = f.metadata
    assert d["architecture"] == "bitnet-b1.58"
    assert d["parameters"] == sum(t.n_elements for t in f.tensors.values())
    assert d["weight_bytes"] == sum(t.nbytes for t in f.tensors.values())
    i2s = [t for t in f.tensors.values() if t.ggml_type == GGML_TYPE_I2_S]
    row = next(r for r in d["types"] if r["name"] == "I2_S")
    assert row["tensors"] == len(i2s) == 7 * meta["bitnet-b1.58.block_count"]
    assert row["bytes"] == sum(t.nbytes for t in i2s) == sum(t.n_elements // 4 + 32 for t in i2s)
    # KV cache: layers x kv_heads x (K + V head dims) x 2 bytes (F16) per token
    arch = "bitnet-b1.58"
    head_dim = meta[f"{arch}.embedding_length"] // meta[f"{arch}.attention.head_count"]
    per_token = meta[f"{arch}.block_count"] * meta[f"{arch}.attention.head_count_kv"] * 2 * head_dim * 2
    assert d["kv_bytes_per_token"] == per_token and d["kv_bytes"] == 1000 * per_token
    # tied embeddings (no output.weight): the head reads the whole token_embd for every token
    assert "output.weight" not in f.tensors and d["bytes_per_token"] == d["weight_bytes"]
    assert d["tokenizer"].startswith("gpt2") and d["vocab"] == len(meta["tokenizer.ggml.tokens"])


def test_info_kernel_is_the_builds_choice(tiny_i2s: Path, ggml: Ggml, build_dir: Path) -> None:
    native = ggml.reload_kernel()
    d = info_json(tiny_i2s, "--build-dir", str(build_dir))
    assert d["kernels"][0].startswith(f"I2_S: {native} (")
    forced = dict(os.environ, BITNET_I2S_KERNEL="generic")
    d = info_json(tiny_i2s, "--build-dir", str(build_dir), env=forced)
    assert d["kernels"][0].startswith("I2_S: generic (BITNET_I2S_KERNEL=generic asks for it")


def test_info_text_on_tl2_and_upstream_files(tmp_path: Path, vocab_gguf: Path, build_dir: Path) -> None:
    tl2 = write_synthetic_gguf(tmp_path / "tl2.gguf", "llama", "tiny", "tl2", vocab_gguf, seed=3)
    r = cli("info", str(tl2), "--build-dir", str(build_dir))
    assert r.returncode == 0, r.stderr
    assert re.search(r"^TL2 +\d+ ", r.stdout, re.M) and "TL2: " in r.stdout
    # the generated-copy line names the file's K values the build has no GEMV copy for
    ks = sorted({t.shape[0] for t in GGUFFile(tl2).tensors.values() if t.ggml_type == GGML_TYPE_TL2})
    missing = [k for k in ks if k not in recorded_k_values(build_dir)]
    assert (f"no generated GEMV copy for K = {', '.join(map(str, missing))} (" if missing
            else "generated GEMV copies for every K") in r.stdout
    # a file with only upstream types: llama.cpp's own kernels
    f16 = write_synthetic_gguf(tmp_path / "f16.gguf", "llama", "tiny", "f16", vocab_gguf, seed=3)
    r = cli("info", str(f16))
    assert r.returncode == 0, r.stderr
    assert "no ternary tensors" in r.stdout and re.search(r"^F16 +\d+ ", r.stdout, re.M)
    assert "stock llama.cpp loads it" in r.stdout


def test_info_says_our_types_need_this_build(tiny_i2s: Path) -> None:
    ok, why = info_json(tiny_i2s)["stock_llama_cpp"]
    assert not ok and "I2_S" in why


@pytest.mark.parametrize("args, message", [
    (["/no/such/model.gguf"], "/no/such/model.gguf: no such file"),
    (["README.md"], "README.md: not a readable GGUF file"),
    (["@MODEL", "-c", "0"], "-c/--ctx-size must be positive"),
])
def test_info_bad_input_one_line(args: list[str], message: str, tiny_i2s: Path) -> None:
    r = cli("info", *[str(tiny_i2s) if a == "@MODEL" else a for a in args])
    assert r.returncode == 1
    assert r.stderr.strip().count("\n") == 0 and message in r.stderr and "Traceback" not in r.stderr


def test_bandwidth_probe_is_the_c_loop() -> None:
    p = read_bandwidth(mib=64, threads=1, passes=2)
    assert p.how == "C read loop" and 0.5 < p.gbs < 2000


DOCTOR_LINE = re.compile(r"^(OK|WARN|FAIL|N/A) +(build|kernels|threads|governor|memory|load|bandwidth|thermal) ")


def doctor_lines(stdout: str) -> dict[str, str]:
    lines = [ln for ln in stdout.splitlines() if not ln.lstrip().startswith("fix:")]
    assert all(DOCTOR_LINE.match(ln) for ln in lines), stdout
    return {DOCTOR_LINE.match(ln).group(2): ln for ln in lines}  # type: ignore[union-attr]


def test_doctor_on_this_machine(tiny_i2s: Path, build_dir: Path) -> None:
    r = cli("doctor", "-m", str(tiny_i2s), "--build-dir", str(build_dir))
    assert r.returncode == 0, r.stdout + r.stderr
    lines = doctor_lines(r.stdout)
    assert len(lines) == 8
    assert lines["build"].startswith("OK") and lines["kernels"].startswith("OK")
    gbs = float(re.search(r"([\d.]+) GB/s", lines["bandwidth"]).group(1))  # type: ignore[union-attr]
    per_token = GGUFFile(tiny_i2s).tensors  # the ceiling is bandwidth / bytes per token
    nbytes = sum(t.nbytes for t in per_token.values())
    ceiling = int(re.search(r"up to ~(\d+) t/s", lines["bandwidth"]).group(1))  # type: ignore[union-attr]
    assert abs(ceiling - gbs * 1e9 / nbytes) <= 0.01 * ceiling + 1
    # /sys values this VM may not expose are reported, not guessed
    for key, path in (("thermal", "/sys/class/thermal/thermal_zone0/temp"),
                      ("governor", "/sys/devices/system/cpu/cpu0/cpufreq/scaling_governor")):
        assert lines[key].startswith("N/A") == (not Path(path).exists())


def test_doctor_flags_problems(tmp_path: Path, tiny_i2s: Path) -> None:
    r = cli("doctor", "-m", str(tiny_i2s), "--build-dir", str(tmp_path), "-t", "999", "-c", "100000000")
    assert r.returncode == 1
    lines = doctor_lines(r.stdout)
    assert lines["build"].startswith("FAIL") and lines["kernels"].startswith("FAIL")
    assert lines["threads"].startswith("WARN") and "-t 999" in lines["threads"]
    assert lines["memory"].startswith("FAIL")  # 10^8 tokens of KV cache cannot fit
