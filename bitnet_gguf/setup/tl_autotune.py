"""A short on-machine tuning of the TL2 kernels' speed parameters (never their results, never the file layout).

For each candidate, the generated header is written into a scratch folder and kernels/tune/tl2-tune.c is compiled
with it and timed on the model's largest K, reading weights from DRAM as generation does; candidates alternate
over three rounds (the host's memory bandwidth moves) and the median decides. The choice and every timing are
recorded in <build>/bitnet-generated/tl2-tune.json and reused while the CPU and the shape stay the same.
"""

from __future__ import annotations

import json
import subprocess
import tempfile
import time
from pathlib import Path
from statistics import median
from typing import IO

from ..errors import BitnetError
from ..fileio import read_json_record, write_text_atomic
from ..paths import kernels_dir
from ..runtime.threads import cpu_model
from . import kernel_gen
from .steps import say

RECORD = "tl2-tune.json"
PREFETCH_CANDIDATES = (1024, 2048, 2560, 4096)  # bytes ahead; about one DRAM latency of one core's stream
TUNE_ROWS = 4096
ROUNDS = 3


def _compile(cc: str, gen: Path, out: Path) -> None:
    k = kernels_dir()
    cpu = k / "ggml-cpu"
    cmd = [cc, "-O3", "-march=native", "-std=c11", f"-I{k}", f"-I{cpu}", f"-I{gen}", str(k / "tune" / "tl2-tune.c"),
           str(k / "tl2-quants.c"), str(k / "i2s-quants.c"), str(cpu / "arch" / "x86" / "tl2-gemm-x86.c"), "-o", str(out), "-lm"]
    proc = subprocess.run(cmd, capture_output=True, text=True)
    if proc.returncode != 0:
        raise BitnetError(f"TL2 autotune: compiling {out.name} failed: {(proc.stderr.strip().splitlines() or ['?'])[-1]}")


def _has_avx512_kernels(cc: str) -> bool:
    """Whether -march=native gives this compiler the AVX-512 TL2 kernels (BW, VBMI, VNNI), the ones tuned here."""
    proc = subprocess.run([cc, "-march=native", "-dM", "-E", "-x", "c", "/dev/null"], capture_output=True, text=True)
    macros = {ln.split()[1] for ln in proc.stdout.splitlines() if ln.startswith("#define ")}
    return {"__AVX512BW__", "__AVX512VBMI__", "__AVX512VNNI__"} <= macros


def autotune(build_dir: Path, k_values: list[int], cc: str = "gcc", log: IO[str] | None = None) -> kernel_gen.TunedParams:
    """The tuned parameters for this CPU and shape (from the record when it matches); defaults where nothing runs."""
    if not _has_avx512_kernels(cc):
        say(log, "no AVX-512 TL2 kernel on this CPU: nothing to tune, defaults kept")
        return kernel_gen.TunedParams()
    k = max(k_values) if k_values else 4096
    key = {"cpu": cpu_model(), "K": k, "M": TUNE_ROWS, "candidates": list(PREFETCH_CANDIDATES)}
    record = kernel_gen.generated_dir(build_dir) / RECORD
    saved = read_json_record(record)
    if isinstance(saved, dict) and saved.get("key") == key:
        say(log, f"tuned before for this CPU and K = {k}: gemv prefetch {saved['params']['gemv_prefetch']} bytes")
        return kernel_gen.TunedParams(**saved["params"])
    start = time.monotonic()
    times: dict[int, list[float]] = {pf: [] for pf in PREFETCH_CANDIDATES}
    with tempfile.TemporaryDirectory(prefix="tl2-tune-") as tmp:
        exes = {}
        for pf in PREFETCH_CANDIDATES:
            gen = kernel_gen.emit(Path(tmp) / f"pf{pf}", k_values, kernel_gen.TunedParams(gemv_prefetch=pf))
            exes[pf] = Path(tmp) / f"tl2-tune-{pf}"
            _compile(cc, gen, exes[pf])
        for r in range(ROUNDS):
            for pf in PREFETCH_CANDIDATES if r % 2 == 0 else PREFETCH_CANDIDATES[::-1]:
                proc = subprocess.run([str(exes[pf]), str(k), str(TUNE_ROWS)], capture_output=True, text=True, timeout=120)
                if proc.returncode != 0 or not proc.stdout.startswith("ns_per_call"):
                    raise BitnetError(f"TL2 autotune: {exes[pf].name} failed: {proc.stderr.strip() or proc.stdout.strip()}")
                times[pf].append(float(proc.stdout.split()[1]))
                say(log, f"round {r + 1}: prefetch {pf} bytes: {times[pf][-1] / 1e3:.1f} us per {TUNE_ROWS}x{k} GEMV")
    best = min(PREFETCH_CANDIDATES, key=lambda pf: median(times[pf]))
    params = kernel_gen.TunedParams(gemv_prefetch=best)
    record.parent.mkdir(parents=True, exist_ok=True)
    write_text_atomic(record, json.dumps({"key": key, "params": params.as_dict(), "ns_per_call": times,
                                          "seconds": round(time.monotonic() - start, 1)}, indent=1))
    say(log, f"chose gemv prefetch {best} bytes ({time.monotonic() - start:.0f} s); recorded in {record}")
    return params


def recorded_params(build_dir: Path) -> kernel_gen.TunedParams:
    """What the last autotune of this build chose (defaults when it never ran), so a rebuild keeps it."""
    saved = read_json_record(kernel_gen.generated_dir(build_dir) / RECORD)
    try:
        return kernel_gen.TunedParams(**saved["params"])
    except (TypeError, KeyError):
        return kernel_gen.TunedParams()  # never tuned, or a damaged record
