"""Whether a model fits in memory before llama.cpp starts on it.

llama.cpp maps the GGUF (mmap) and generation reads every weight once per token. When the file does not fit in the
memory that is available, the kernel drops pages that the next token needs again, so every token reads the model
from disk: a 2.0 GiB 7B-shape file in a 1.5 GiB cgroup generated 0.61 t/s instead of 9.8, reading 9.7 GB for 8
tokens (docs/bench/sweep.md "Beyond RAM"). The front ends refuse that case in one line, before loading, unless
asked not to.
"""

from __future__ import annotations

from pathlib import Path

from ..errors import BitnetError

NO_CHECK_FLAG = "--no-memory-check"


def meminfo() -> dict[str, int]:
    """/proc/meminfo in bytes (empty where there is none)."""
    out = {}
    try:
        text = Path("/proc/meminfo").read_text()
    except OSError:
        return out
    for line in text.splitlines():
        key, _, value = line.partition(":")
        if value.strip().endswith("kB"):
            out[key] = int(value.split()[0]) * 1024
    return out


def _cgroup_dirs() -> list[tuple[Path, bool]]:
    """This process's memory cgroup folders, (path, is_v2), from /proc/self/cgroup."""
    out = []
    try:
        lines = Path("/proc/self/cgroup").read_text().splitlines()
    except OSError:
        return out
    for line in lines:
        _, controllers, rel = line.split(":", 2)
        rel = rel.strip().lstrip("/")
        if controllers == "":
            out.append((Path("/sys/fs/cgroup") / rel, True))
            out.append((Path("/sys/fs/cgroup/unified") / rel, True))
        elif "memory" in controllers.split(","):
            out.append((Path("/sys/fs/cgroup/memory") / rel, False))
    return out


def _cgroup_room() -> int | None:
    """Bytes this process's memory cgroup may still charge, its page cache counted as room (the kernel drops that
    for the model); None without a limit. cgroup v2 (memory.max) and v1 (memory.limit_in_bytes)."""
    rooms = []
    for base, v2 in _cgroup_dirs():
        names = ("memory.max", "memory.current", "file") if v2 else ("memory.limit_in_bytes", "memory.usage_in_bytes", "cache")
        try:
            limit = (base / names[0]).read_text().strip()
            if limit == "max" or int(limit) >= 1 << 60:  # v1 writes "no limit" as a huge number
                continue
            stat = dict(line.split() for line in (base / "memory.stat").read_text().splitlines())
            rooms.append(int(limit) - int((base / names[1]).read_text()) + int(stat.get(names[2], 0)))
        except (OSError, ValueError):
            continue
    return min(rooms) if rooms else None


def available_memory() -> int | None:
    """Memory a model may use without pushing its own pages out: MemAvailable, capped by a cgroup limit."""
    avail = meminfo().get("MemAvailable")
    room = _cgroup_room()
    if avail is None:
        return room
    return avail if room is None else min(avail, room)


def check_fits(model: Path, ctx: int, flag: str = NO_CHECK_FLAG) -> None:
    """One line when the model cannot stay in memory: generation would read it from disk for every token."""
    avail = available_memory()
    if avail is None:
        return  # no /proc/meminfo (not Linux): nothing to compare with
    from ..inspect.info import read_info

    need = read_info(model, ctx).memory_bytes
    if need > avail:
        raise BitnetError(f"{model}: needs {need / 2**30:.1f} GiB in memory (weights + KV cache at -c {ctx}), "
                          f"{avail / 2**30:.1f} GiB is available: every token would re-read the file from disk "
                          f"(minutes per token); free memory, use a smaller -c, or pass {flag} to run anyway")
