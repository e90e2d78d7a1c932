"""The tg ceilings (bitnet_gguf/tools/ceilings.py): the bytes a token reads by type, the ceiling arithmetic, the
N = 1 kernel probe linked against the build, and the `ceilings` command end to end with llama-bench."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from bitnet_gguf.formats.gguf_read import GGUFFile
from bitnet_gguf.inspect.info import read_info
from bitnet_gguf.tools.bench import ceiling_line, tg_rows
from bitnet_gguf.tools.ceilings import Ceiling, TypeLoad, gemv_rate, token_loads

from .conftest import REPO_ROOT


def test_token_loads_are_the_bytes_a_token_reads(tiny_llama_i2s: Path, tiny_i2s: Path) -> None:
    for model in (tiny_llama_i2s, tiny_i2s):  # untied (embedding rows looked up only) and tied heads
        f = GGUFFile(model)
        loads = token_loads(model)
        assert sum(t.bytes for t in loads) == read_info(model).bytes_per_token
        i2s = next(t for t in loads if t.name == "i2_s")
        assert i2s.bytes == sum(t.nbytes for t in f.tensors.values() if t.ggml_type == 36)
        assert i2s.k == max((t for t in f.tensors.values() if t.ggml_type == 36), key=lambda t: t.nbytes).shape[0]
    # the tied model's head is its embedding: read whole
    assert read_info(tiny_i2s).bytes_per_token >= GGUFFile(tiny_i2s).tensors["token_embd.weight"].nbytes


def test_ceiling_arithmetic() -> None:
    loads = (TypeLoad("i2_s", 500_000_000, 2560, 40.0), TypeLoad("q6_k", 250_000_000, 2560, 20.0),
             TypeLoad("f32", 1_000_000, 2560, None))
    c = Ceiling(30.0, loads)
    assert c.bytes_per_token == 751_000_000
    assert c.memory_tps == pytest.approx(30e9 / 751e6)
    assert c.compute_tps == pytest.approx(1 / (0.5 / 40 + 0.25 / 20))  # f32 (0.13 %) is left out
    # i2_s at the bandwidth (30 < 40), q6_k at its kernel (20 < 30), f32 at the bandwidth
    assert c.tps == pytest.approx(1 / (0.5 / 30 + 0.25 / 20 + 0.001 / 30))
    assert c.tps <= min(c.memory_tps, c.compute_tps)
    # a type of real weight without a probe: the compute ceiling is unknown, the ceiling is memory's for it
    c2 = Ceiling(30.0, (TypeLoad("tl2", 400_000_000, 2560, None), *loads[1:]))
    assert c2.compute_tps is None
    assert c2.tps == pytest.approx(1 / (0.4 / 30 + 0.25 / 20 + 0.001 / 30))


@pytest.mark.parametrize("type_name", ["i2_s", "q6_k", "f16"])
def test_gemv_probe_runs_the_build_kernels(build_dir: Path, type_name: str) -> None:
    r = gemv_rate(build_dir, type_name, 2560, threads=1, seconds=0.2, cold_mib=64)
    assert r["kind"] == type_name and r["K"] == 2560 and r["threads"] == 1
    assert r["hot_gbs"] > 0.5 and r["cold_gbs"] > 0.1  # bytes of weights turned per second, from cache and memory


def test_tg_rows_of_a_llama_bench_table() -> None:
    table = """| model | size | params | backend | threads | test | t/s |
| --- | ---: | ---: | --- | ---: | ---: | ---: |
| bitnet-b1.58 2B I2_S - 2 bpw ternary | 755.42 MiB | 2.41 B | CPU | 2 | pp512 | 150.27 ± 1.03 |
| bitnet-b1.58 2B I2_S - 2 bpw ternary | 755.42 MiB | 2.41 B | CPU | 2 | tg128 | 24.06 ± 0.30 |
| bitnet-b1.58 2B I2_S - 2 bpw ternary | 755.42 MiB | 2.41 B | CPU | 1 | tg128 | 14.50 ± 0.02 |
"""
    assert tg_rows(table) == [(2, "tg128", 24.06), (1, "tg128", 14.5)]
    c = Ceiling(30.0, (TypeLoad("i2_s", 600_000_000, 2560, 40.0),))
    line = ceiling_line("tg128", 2, 24.06, c, 29.0, 31.0)
    assert line.startswith("tg128 at 2 threads: 24.06 t/s = 48% of min(memory, compute) 50.0 t/s")
    assert "probes 29.0/31.0" in line


def test_ceilings_command_with_rounds(tiny_llama_i2s: Path, build_dir: Path, tmp_path: Path) -> None:
    out = tmp_path / "c"
    r = subprocess.run([sys.executable, "-m", "bitnet_gguf", "ceilings", "-m", str(tiny_llama_i2s), "-t", "1",
                        "--rounds", "2", "-n", "4", "-r", "1", "--against", str(build_dir), "--out", str(out),
                        "--build-dir", str(build_dir)], capture_output=True, text=True, cwd=REPO_ROOT, timeout=600)
    assert r.returncode == 0, r.stderr
    assert "round 2/2" in r.stderr  # progress
    record = json.loads((out / "ceilings.json").read_text())
    assert len(record["rounds"]) == 2
    for rnd in record["rounds"]:
        assert rnd["probe_before"] > 0 and rnd["probe_after"] > 0
        assert set(rnd["tps"]) == {"this build", "against"} and min(rnd["tps"].values()) > 0
    assert record["ceiling"]["tps"] <= record["ceiling"]["memory_tps"] + 1e-9
    md = (out / "ceilings.md").read_text()
    assert md.strip() == r.stdout.strip()
    assert "| median |" in md and "this build / against" in md


def test_ceilings_refuses_bad_input_in_one_line(tmp_path: Path) -> None:
    bad = tmp_path / "x.gguf"
    bad.write_bytes(b"GGUF" + b"\0" * 10)
    for args, want in ((["-m", str(tmp_path / "missing.gguf")], "missing.gguf"), (["-m", str(bad)], "x.gguf"),
                       (["-m", str(bad), "--rounds", "-1"], "--rounds -1: expected at least 0")):
        r = subprocess.run([sys.executable, "-m", "bitnet_gguf", "ceilings", *args], capture_output=True, text=True,
                           cwd=REPO_ROOT, timeout=120)
        assert r.returncode != 0
        lines = r.stderr.strip().splitlines()
        assert len(lines) == 1 and lines[0].startswith("error:") and want in lines[0], r.stderr
