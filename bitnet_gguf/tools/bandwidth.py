"""The memory read-bandwidth probe: generation speed is bounded by it (bytes read per token / bandwidth).

A small C program (probes/bandwidth.c) is compiled once per compiler and source into the cache and run as a
child, so it measures what vectorised kernels can read; without a C compiler a numpy read (about half of that
on x86, a relative indicator only) stands in and says so.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import subprocess
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

from ..errors import BitnetError
from ..paths import cache_dir

SOURCE = Path(__file__).with_name("probes") / "bandwidth.c"


@dataclass(frozen=True)
class Probe:
    gbs: float
    threads: int
    how: str  # "C read loop" or "numpy (no C compiler)"


def _compiled() -> Path | None:
    cc = os.environ.get("CC") or shutil.which("cc") or shutil.which("gcc") or shutil.which("clang")
    if cc is None:
        return None
    key = hashlib.sha256(SOURCE.read_bytes() + cc.encode()).hexdigest()[:16]
    exe = cache_dir() / "probes" / f"bandwidth-{key}"
    if exe.is_file():
        return exe
    exe.parent.mkdir(parents=True, exist_ok=True)
    tmp = exe.with_name(f"{exe.name}.{os.getpid()}.tmp")
    # -O3: the read loop must be vectorised to reach the bandwidth (at -O2 GCC 12 reads half as fast)
    proc = subprocess.run([cc, "-O3", "-march=native", "-pthread", str(SOURCE), "-o", str(tmp)],
                          capture_output=True, text=True)
    if proc.returncode != 0:
        tmp.unlink(missing_ok=True)
        return None
    os.replace(tmp, exe)
    return exe


def _numpy_probe(mib: int, threads: int, passes: int) -> float:
    import numpy as np

    data = np.ones(mib << 17, dtype=np.int64)
    parts = np.array_split(data, threads)
    best = 0.0
    with ThreadPoolExecutor(threads) as pool:  # numpy reductions release the GIL
        for _ in range(passes):
            start = time.perf_counter()
            list(pool.map(np.max, parts))  # max: the fastest numpy reduction over int64 here
            best = max(best, data.nbytes / (time.perf_counter() - start) / 1e9)
    return best


def read_bandwidth(mib: int = 512, threads: int = 2, passes: int = 3) -> Probe:
    """Best GB/s over `passes` reads of `mib` MiB by `threads` threads."""
    exe = _compiled()
    if exe is None:
        return Probe(_numpy_probe(mib, threads, passes), threads, "numpy (no C compiler)")
    proc = subprocess.run([str(exe), str(mib), str(threads), str(passes)], capture_output=True, text=True)
    if proc.returncode != 0:
        raise BitnetError(f"bandwidth probe failed: {proc.stderr.strip() or proc.returncode}")
    return Probe(float(proc.stdout), threads, "C read loop")
