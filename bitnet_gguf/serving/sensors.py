"""System figures for the dashboard, read from /proc and /sys: CPU % and RSS of a process and of the machine,
CPU temperature (thermal zones) and package power (RAPL powercap energy counters). A figure the machine does
not expose is reported as unavailable with the reason, never guessed."""

from __future__ import annotations

import os
import time
from dataclasses import dataclass
from pathlib import Path

CLK_TCK = os.sysconf("SC_CLK_TCK") if hasattr(os, "sysconf") else 100
PAGE_SIZE = os.sysconf("SC_PAGE_SIZE") if hasattr(os, "sysconf") else 4096
THERMAL_ROOT = Path("/sys/class/thermal")
POWERCAP_ROOT = Path("/sys/class/powercap")


@dataclass
class Reading:
    value: float | None
    detail: str  # where the value came from, or why there is none

    def as_json(self) -> dict[str, object]:
        v = None if self.value is None else round(self.value, 2)
        return {"available": self.value is not None, "value": v, "detail": self.detail}


def process_cpu_seconds(pid: int) -> float | None:
    """utime + stime of a process, from /proc/<pid>/stat (fields 14 and 15, after the parenthesised name)."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    fields = stat[stat.rfind(")") + 2:].split()
    return (int(fields[11]) + int(fields[12])) / CLK_TCK


def process_rss_bytes(pid: int) -> int | None:
    try:
        return int(Path(f"/proc/{pid}/statm").read_text().split()[1]) * PAGE_SIZE
    except (OSError, IndexError, ValueError):
        return None


def machine_cpu_ticks() -> tuple[int, int] | None:
    """(busy, total) jiffies of all CPUs from the first line of /proc/stat."""
    try:
        with open("/proc/stat") as f:
            parts = [int(x) for x in f.readline().split()[1:]]
    except (OSError, ValueError):
        return None
    idle = parts[3] + (parts[4] if len(parts) > 4 else 0)  # idle + iowait
    total = sum(parts[:8])  # guest time is already inside user/nice
    return total - idle, total


class ProcessCpu:
    """CPU % of one process since the previous call (100 = one core busy)."""

    def __init__(self) -> None:
        self._last: tuple[int, float, float] | None = None  # pid, cpu seconds, wall time

    def percent(self, pid: int | None) -> float | None:
        if pid is None:
            self._last = None
            return None
        cpu, now = process_cpu_seconds(pid), time.monotonic()
        if cpu is None:
            self._last = None
            return None
        last, self._last = self._last, (pid, cpu, now)
        if last is None or last[0] != pid or now <= last[2]:
            return None  # a new process (restarted child): no interval yet
        return max(0.0, 100.0 * (cpu - last[1]) / (now - last[2]))


class MachineCpu:
    """CPU % of the whole machine since the previous call (100 = every core busy)."""

    def __init__(self) -> None:
        self._last = machine_cpu_ticks()

    def percent(self) -> float | None:
        now = machine_cpu_ticks()
        last, self._last = self._last, now
        if now is None or last is None or now[1] <= last[1]:
            return None
        return 100.0 * (now[0] - last[0]) / (now[1] - last[1])


def cpu_temperature(root: Path = THERMAL_ROOT) -> Reading:
    """The hottest thermal zone in °C; zones named like a CPU/package are preferred when there are any."""
    zones = sorted(root.glob("thermal_zone*/temp"))
    if not zones:
        return Reading(None, f"not available: this machine exposes no thermal zones ({root}/thermal_zone*/temp)")
    found: dict[str, float] = {}
    for z in zones:
        try:
            milli = int(z.read_text().strip())
        except (OSError, ValueError):
            continue
        try:
            kind = (z.parent / "type").read_text().strip()
        except OSError:
            kind = z.parent.name
        found[f"{z.parent.name} ({kind})"] = milli / 1000.0
    if not found:
        return Reading(None, f"not available: {len(zones)} thermal zones could not be read (permissions?)")
    cpu_like = {k: v for k, v in found.items() if any(s in k.lower() for s in ("cpu", "pkg", "package", "soc", "x86"))}
    pool = cpu_like or found
    name = max(pool, key=lambda k: pool[k])
    return Reading(pool[name], f"{name}, hottest of {len(found)} zone(s)")


class PackagePower:
    """Package power in watts from RAPL energy counters (µJ) between two calls; wrap-around is handled."""

    def __init__(self, root: Path = POWERCAP_ROOT) -> None:
        self.root = root
        self._last: tuple[dict[Path, int], float] | None = None

    def _domains(self) -> list[Path]:
        # top-level domains (intel-rapl:0, intel-rapl:1 ...) are packages; intel-rapl:0:0 etc. are parts of them
        return sorted(d for d in self.root.glob("intel-rapl:*") if d.name.count(":") == 1)

    def read(self) -> Reading:
        domains = self._domains()
        if not domains:
            return Reading(None, f"not available: this machine exposes no RAPL powercap ({self.root}/intel-rapl:*)")
        energy: dict[Path, int] = {}
        for d in domains:
            try:
                energy[d] = int((d / "energy_uj").read_text())
            except PermissionError:
                return Reading(None, f"not available: {d}/energy_uj is readable only by root")
            except (OSError, ValueError):
                continue
        if not energy:
            return Reading(None, "not available: RAPL energy counters could not be read")
        now = time.monotonic()
        last, self._last = self._last, (energy, now)
        if last is None or now <= last[1]:
            return Reading(None, "measuring (needs two readings)")
        watts = 0.0
        for d, uj in energy.items():
            prev = last[0].get(d)
            if prev is None:
                continue
            delta = uj - prev
            if delta < 0:  # the counter wrapped
                try:
                    delta += int((d / "max_energy_range_uj").read_text())
                except (OSError, ValueError):
                    continue
            watts += delta / 1e6 / (now - last[1])
        return Reading(watts, f"RAPL, {len(energy)} package(s)")
