"""The memory check of the front ends (bitnet_gguf/runtime/memory_fit.py), in a real memory cgroup: a model whose
weights + KV cache exceed what the process may use is refused in one line before llama.cpp loads it."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from collections.abc import Iterator
from pathlib import Path

import pytest

from bitnet_gguf.inspect.info import read_info
from bitnet_gguf.runtime.memory_fit import available_memory, meminfo

from .conftest import REPO_ROOT

CGROUP_V1 = Path("/sys/fs/cgroup/memory")
LIMIT = 160 << 20  # above what python + numpy use, below the KV cache of a long context


@pytest.fixture
def cgroup() -> Iterator[Path]:
    """A memory cgroup (v1, as on this project's machines) limited to LIMIT bytes."""
    if not (CGROUP_V1 / "memory.limit_in_bytes").exists() or os.geteuid() != 0:
        pytest.skip("needs root and the cgroup v1 memory controller at /sys/fs/cgroup/memory")
    cg = CGROUP_V1 / f"bitnet-test-{os.getpid()}"
    cg.mkdir()
    try:
        (cg / "memory.limit_in_bytes").write_text(str(LIMIT))
        yield cg
    finally:
        cg.rmdir()


def in_cgroup(cg: Path, args: list[str]) -> subprocess.CompletedProcess[str]:
    """args run as a process of the cgroup (the shell moves itself in, then execs)."""
    return subprocess.run(["sh", "-c", f'echo $$ > {cg}/cgroup.procs && exec "$@"', "sh", *args], capture_output=True,
                          text=True, cwd=REPO_ROOT, timeout=300)


def test_available_memory_is_at_most_memavailable() -> None:
    avail = available_memory()
    assert avail is not None and 0 < avail <= meminfo()["MemAvailable"]


def test_cgroup_limit_caps_available_memory(cgroup: Path) -> None:
    r = in_cgroup(cgroup, [sys.executable, "-c", "from bitnet_gguf.runtime.memory_fit import available_memory; "
                                                 "print(available_memory())"])
    assert r.returncode == 0, r.stderr
    assert 0 < int(r.stdout) <= LIMIT


def test_a_model_that_does_not_fit_is_refused_in_one_line(cgroup: Path, tiny_llama_i2s: Path) -> None:
    fits_ctx, big_ctx = 512, 400_000  # the tiny model's KV cache: ~1 KiB per token
    assert read_info(tiny_llama_i2s, big_ctx).memory_bytes > LIMIT > read_info(tiny_llama_i2s, fits_ctx).memory_bytes
    code = textwrap.dedent(f"""
        from pathlib import Path
        from bitnet_gguf.errors import run_cli
        from bitnet_gguf.runtime.memory_fit import check_fits
        run_cli(lambda: check_fits(Path({str(tiny_llama_i2s)!r}), {fits_ctx}) or print("fits"))
        raise SystemExit(run_cli(lambda: check_fits(Path({str(tiny_llama_i2s)!r}), {big_ctx})))
    """)
    r = in_cgroup(cgroup, [sys.executable, "-c", code])
    assert r.returncode != 0 and r.stdout.strip() == "fits"
    lines = r.stderr.strip().splitlines()
    assert len(lines) == 1, r.stderr
    assert lines[0].startswith(f"error: {tiny_llama_i2s}: needs ") and "--no-memory-check" in lines[0]
    assert "re-read the file from disk" in lines[0]


def test_front_ends_refuse_before_loading(cgroup: Path, tiny_llama_i2s: Path) -> None:
    """run_inference.py, run_server.py and bitnet_gguf.Llama check before llama.cpp starts (nothing is loaded: the
    refusal comes in a second, with no llama.cpp log)."""
    big_ctx = 400_000
    runs = {
        "run_inference.py": [sys.executable, "run_inference.py", "-m", str(tiny_llama_i2s), "-c", str(big_ctx), "-p", "hi"],
        "run_server.py": [sys.executable, "run_server.py", "-m", str(tiny_llama_i2s), "-c", str(big_ctx)],
        "Llama": [sys.executable, "-c", "from bitnet_gguf.errors import run_cli; from bitnet_gguf import Llama; "
                  f"raise SystemExit(run_cli(lambda: Llama({str(tiny_llama_i2s)!r}, n_ctx={big_ctx})))"],
    }
    for what, args in runs.items():
        r = in_cgroup(cgroup, args)
        lines = r.stderr.strip().splitlines()
        assert r.returncode != 0 and len(lines) == 1, (what, r.stderr)
        assert "needs " in lines[0] and "is available" in lines[0], (what, lines[0])
        assert ("memory_check=False" if what == "Llama" else "--no-memory-check") in lines[0]
    # the escape hatch: with the flag llama-completion starts, and the cgroup's limit stops it (its KV cache alone
    # is 400 MiB): an error from llama.cpp's side, not the refusal
    r = in_cgroup(cgroup, [*runs["run_inference.py"], "-n", "1", "--no-memory-check"])
    assert r.returncode != 0 and "is available" not in r.stderr and "llama-completion" in r.stderr, r.stderr
