"""The CPU this runs on: its model name, and the default thread count (physical cores, since hyper-threads slow
ternary mat-muls down)."""

from __future__ import annotations

import os
import platform
import subprocess
import sys
from pathlib import Path


def _linux_physical_cores() -> int | None:
    try:
        cpus = sorted(os.sched_getaffinity(0))  # respect taskset / cgroup cpusets
    except (AttributeError, OSError):
        cpus = list(range(os.cpu_count() or 1))
    cores: set[str] = set()
    for cpu in cpus:
        topo = Path(f"/sys/devices/system/cpu/cpu{cpu}/topology")
        # Every hardware thread of one core lists the same sibling set, so distinct sets = physical cores.
        for name in ("core_cpus_list", "thread_siblings_list"):
            try:
                cores.add((topo / name).read_text().strip())
                break
            except OSError:
                continue
        else:
            return None
    return len(cores) or None


def physical_cores() -> int:
    """Physical cores usable by this process: hyper-threads slow ternary matmuls down, so they are not counted."""
    n: int | None = None
    if sys.platform.startswith("linux"):
        n = _linux_physical_cores()
    elif sys.platform == "darwin":
        try:
            n = int(subprocess.run(["sysctl", "-n", "hw.physicalcpu"], capture_output=True, text=True, timeout=5).stdout)
        except (OSError, ValueError, subprocess.SubprocessError):
            n = None
    if not n:
        try:
            import psutil  # type: ignore[import-untyped]  # optional; the only portable source on Windows

            n = psutil.cpu_count(logical=False)
        except ImportError:
            n = None
    return max(1, n or os.cpu_count() or 1)


def cpu_model() -> str:
    """The CPU's model name (benchmarks and tuning records say which machine they ran on)."""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()
