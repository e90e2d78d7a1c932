"""`python -m bitnet_gguf doctor`: one screen of checks for a user whose generation is slow or does not start.

Each line is OK, WARN, FAIL or N/A (the machine does not expose the value), with the fix where there is one.
Generation speed is bounded by memory bandwidth / bytes read per token, so the bandwidth probe and the model's
bytes per token give the ceiling a user can expect on this machine, now.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from dataclasses import dataclass
from pathlib import Path

from ..errors import BitnetError
from ..paths import BUILD_DIR_HELP, build_dir, kernels_dir, load_pin, patches_dir, source_dir
from ..runtime.locate import DEFAULT_MODEL, find_tool, resolve_model
from ..runtime.memory_fit import available_memory
from ..runtime.threads import cpu_model, physical_cores
from ..serving.sensors import cpu_temperature, process_cpu_seconds
from .kernel_choice import KERNEL_FEATURES, cpu_flags, cpu_kernel_families, kernel_choice

OK, WARN, FAIL, NA = "OK", "WARN", "FAIL", "N/A"
HOT_C = 85.0  # above this, laptop and desktop CPUs start to throttle
BUSY_SHARE = 0.2  # other processes using more than a fifth of a core slow a 2-thread generation visibly


@dataclass
class Check:
    status: str
    what: str
    detail: str
    fix: str = ""

    def line(self) -> str:
        return f"{self.status:<4}  {self.what:<11} {self.detail}" + (f"\n{'':<17} fix: {self.fix}" if self.fix else "")


def _read(path: Path) -> str | None:
    try:
        return path.read_text().strip()
    except OSError:
        return None


def check_build(build: Path) -> Check:
    from ..setup.source import STAMP_NAME, source_is_current

    try:
        lib = find_tool("llama-completion", build)
    except BitnetError:
        return Check(FAIL, "build", f"no llama-completion in {build / 'bin'}", "python setup_env.py")
    src = source_dir()
    if not source_is_current(load_pin(), src, patches_dir()):
        return Check(FAIL, "build", f"{src} is not the pinned llama.cpp with this checkout's patches/",
                     "python setup_env.py (re-applies the patches and rebuilds)")
    newest = max((p.stat().st_mtime for p in (src / STAMP_NAME, *kernels_dir().rglob("*.[ch]")) if p.exists()),
                 default=0.0)
    if lib.stat().st_mtime < newest:
        return Check(WARN, "build", "the kernels or the patched source changed after the last build",
                     "python setup_env.py")
    return Check(OK, "build", f"{build}: the pinned llama.cpp {load_pin().llama_cpp_commit} with "
                              f"{len(list(patches_dir().glob('*.patch')))} patches, built after the last change")


def check_kernels(build: Path) -> Check:
    flags = cpu_flags()
    try:
        k = kernel_choice(build)
    except BitnetError as e:
        return Check(FAIL, "kernels", str(e), "python setup_env.py")
    can = cpu_kernel_families(flags)
    missing = [f for f in k.i2s_kernels if f in KERNEL_FEATURES and f not in can]
    if missing and flags:
        return Check(FAIL, "kernels", f"the build has {', '.join(missing)} kernels, which this CPU lacks "
                                      f"(built on another machine?)", "python setup_env.py on this machine, or --portable")
    if can and can[0] not in k.i2s_kernels:
        return Check(WARN, "kernels", f"running {k.i2s_chosen}; this CPU could run {can[0]}, which the build lacks",
                     "python setup_env.py (a native build compiles every kernel this CPU supports)")
    return Check(OK, "kernels", f"I2_S/TL run {k.i2s_chosen} ({k.why(flags)}) on {cpu_model()}")


def check_threads(threads: int | None) -> Check:
    phys, logical = physical_cores(), os.cpu_count() or 1
    if threads is not None and threads > phys:
        return Check(WARN, "threads", f"-t {threads} is more than the {phys} physical cores: hyper-threads slow ternary "
                                      "mat-muls down", f"-t {phys} (the default)")
    return Check(OK, "threads", f"default -t {phys} = physical cores ({logical} logical CPUs)")


def check_governor() -> Check:
    cpu0 = Path("/sys/devices/system/cpu/cpu0/cpufreq")
    gov = _read(cpu0 / "scaling_governor")
    cur, top = _read(cpu0 / "scaling_cur_freq"), _read(cpu0 / "cpuinfo_max_freq")
    freq = f", {int(cur) / 1e6:.2f} of {int(top) / 1e6:.2f} GHz" if cur and top and cur.isdigit() and top.isdigit() else ""
    if gov is None:
        return Check(NA, "governor", "not available (no cpufreq in /sys: a VM or a fixed-frequency CPU)")
    if gov in ("powersave", "conservative") and _read(cpu0 / "scaling_driver") not in ("intel_pstate", "amd-pstate-epp"):
        return Check(WARN, "governor", f"{gov}{freq}: the clock ramps up slowly under bursty load",
                     "sudo cpupower frequency-set -g performance")
    return Check(OK, "governor", f"{gov}{freq}")


def check_memory(need: int | None, model: str) -> Check:
    avail = available_memory()
    if avail is None:
        return Check(NA, "memory", "not available (no /proc/meminfo)")
    if need is None:
        return Check(OK, "memory", f"{avail / 2**30:.1f} GiB available (no model given)")
    detail = f"{avail / 2**30:.1f} GiB available, {model} needs {need / 2**30:.2f} GiB (weights + KV cache)"
    if need > avail:
        return Check(FAIL, "memory", detail + ": it would page from disk", "a smaller -c, a smaller model, or close programs")
    if need > 0.8 * avail:
        return Check(WARN, "memory", detail, "close programs or use a smaller -c")
    return Check(OK, "memory", detail)


def check_bandwidth(bytes_per_token: int | None, model: str) -> Check:
    from ..tools.bandwidth import read_bandwidth

    start = time.perf_counter()
    probe = read_bandwidth(threads=physical_cores())
    gbs = probe.gbs
    detail = f"{gbs:.1f} GB/s read on {probe.threads} threads ({probe.how}, {time.perf_counter() - start:.1f} s)"
    if bytes_per_token:
        detail += (f"; {model} reads {bytes_per_token / 1e9:.3f} GB per token, so memory allows tg up to "
                   f"~{gbs * 1e9 / bytes_per_token:.0f} t/s")
    return Check(OK, "bandwidth", detail)


def check_thermal() -> Check:
    t = cpu_temperature()  # the dashboard's reader: the hottest CPU-like zone
    if t.value is None:
        return Check(NA, "thermal", t.detail)
    detail = f"{t.value:.0f} °C, {t.detail}"
    if t.value >= HOT_C:
        return Check(WARN, "thermal", detail + ": the CPU may throttle", "cooling, or fewer threads")
    return Check(OK, "thermal", detail)


def _cpu_seconds() -> dict[int, float]:
    """CPU seconds (user + system) of every process, by pid."""
    out = {}
    for proc in Path("/proc").glob("[0-9]*"):
        seconds = process_cpu_seconds(int(proc.name))
        if seconds is not None:
            out[int(proc.name)] = seconds
    return out


def check_load(seconds: float = 1.0) -> Check:
    if not Path("/proc/self/stat").exists():
        return Check(NA, "load", "not available (no /proc)")
    before = _cpu_seconds()
    time.sleep(seconds)
    after = _cpu_seconds()
    me = os.getpid()
    busy = sorted(((t - before[p]) / seconds, _read(Path(f"/proc/{p}/comm")) or "?", p) for p, t in after.items()
                  if p in before and p != me)
    busy = [b for b in busy if b[0] > 0.02][::-1]
    total = sum(b[0] for b in busy)
    top = ", ".join(f"{name} (pid {p}) {share:.0%}" for share, name, p in busy[:3])
    if total > BUSY_SHARE:
        return Check(WARN, "load", f"other processes use {total:.0%} of a core: {top}",
                     "stop them, or expect generation to slow down")
    return Check(OK, "load", f"the CPU is idle apart from this check ({total:.0%} of a core elsewhere)")


def model_needs(model: Path, ctx: int) -> tuple[int | None, int | None]:
    """Memory for the weights + KV cache at ctx, and the bytes generation reads per token."""
    from .info import read_info

    info = read_info(model, ctx)
    return info.memory_bytes, info.bytes_per_token


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="bitnet-gguf doctor",
                                description="Check the build, CPU, memory and bandwidth against what generation needs.")
    p.add_argument("-m", "--model", default=str(DEFAULT_MODEL), help=f"GGUF to check against (default: {DEFAULT_MODEL})")
    p.add_argument("-c", "--ctx-size", type=int, default=2048, help="context size for the memory check (default: 2048)")
    p.add_argument("-t", "--threads", type=int, help="threads you intend to use")
    p.add_argument("--build-dir", help=BUILD_DIR_HELP)
    args = p.parse_args(argv)
    build = build_dir(args.build_dir)
    need = per_token = None
    try:
        model = resolve_model(args.model)
        need, per_token = model_needs(model, args.ctx_size)
        model_name = model.name
    except BitnetError as e:
        model_name = args.model
        print(f"note: {e}", file=sys.stderr)
    checks = [check_build(build), check_kernels(build), check_threads(args.threads), check_governor(),
              check_memory(need, model_name), check_load(), check_bandwidth(per_token, model_name), check_thermal()]
    for c in checks:
        print(c.line(), flush=True)
    return 1 if any(c.status == FAIL for c in checks) else 0
