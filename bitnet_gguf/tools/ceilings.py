"""The ceilings of token generation, measured on this machine, and where tg stands against them.

A generated token reads every weight once (all but the embedding rows it does not look up), so tg is bound by
- memory: bytes per token / read bandwidth (the C probe of bandwidth.py);
- compute: for each weight type, its bytes / the rate its N = 1 kernel turns them with the weights in cache
  (probes/gemv_ceiling.c, linked against the build, so it runs exactly the kernels the graph runs).
Each mat-mul is held by the slower of the two, so the ceiling is sum(bytes_t / min(bandwidth, rate_t)). Bandwidth
moves from minute to minute on a shared host: `ceilings --rounds` interleaves probe, tg, probe and reports each
round's share of the ceiling (and, with --against, the ratio to another build on the same file).
"""

from __future__ import annotations

import hashlib
import json
import os
import platform
import shutil
import subprocess
import sys
from dataclasses import asdict, dataclass
from pathlib import Path
from statistics import median

from .. import paths
from ..errors import ArgumentParser, BitnetError
from ..fileio import check_output_path, write_text_atomic
from ..formats.gguf_read import GGUFFile, check_whole
from ..inspect.info import lookup_only_bytes, type_name
from ..paths import BUILD_DIR_HELP
from ..runtime.locate import find_tool, library_dir
from ..runtime.threads import cpu_model
from .bandwidth import read_bandwidth

SOURCE = Path(__file__).with_name("probes") / "gemv_ceiling.c"
HOT_KIB = 1024  # per thread: fits L2 on the CPUs we meet (1-4 MiB per core)


@dataclass(frozen=True)
class TypeLoad:
    """The weights of one type that a token reads."""

    name: str  # ggml type name, lower case (what the probe takes)
    bytes: int
    k: int  # row length of the largest of those tensors (the probe's K)
    hot_gbs: float | None = None  # rate of its N = 1 kernel from cache; None: no probe for this type


@dataclass(frozen=True)
class Ceiling:
    bandwidth_gbs: float
    loads: tuple[TypeLoad, ...]

    @property
    def bytes_per_token(self) -> int:
        return sum(t.bytes for t in self.loads)

    @property
    def memory_tps(self) -> float:
        return self.bandwidth_gbs * 1e9 / self.bytes_per_token

    @property
    def compute_tps(self) -> float | None:
        """Tokens/s if memory were free; None when a type with a share above 1 % has no kernel probe."""
        if any(t.hot_gbs is None and t.bytes > self.bytes_per_token / 100 for t in self.loads):
            return None
        return 1.0 / sum(t.bytes / (t.hot_gbs * 1e9) for t in self.loads if t.hot_gbs)

    @property
    def tps(self) -> float:
        """min(memory, compute) per mat-mul: each type's bytes at the slower of its kernel and the bandwidth."""
        return 1.0 / sum(t.bytes / (min(self.bandwidth_gbs, t.hot_gbs or self.bandwidth_gbs) * 1e9) for t in self.loads)


def git_commit() -> str:
    """The checkout's short commit, recorded beside every benchmark figure."""
    try:
        out = subprocess.run(["git", "rev-parse", "--short", "HEAD"], capture_output=True, text=True, cwd=Path(__file__).parent).stdout
    except OSError:  # no git on PATH: the results still get written
        return "unknown"
    return out.strip() or "unknown"


def token_loads(model: Path) -> list[TypeLoad]:
    """Bytes a generated token reads, by tensor type (the embedding only when it is also the head)."""
    f = GGUFFile(model)
    skip = "token_embd.weight" if lookup_only_bytes(f) else None
    by_type: dict[int, list] = {}
    for t in f.tensors.values():
        if t.name != skip:
            by_type.setdefault(t.ggml_type, []).append(t)
    loads = []
    for gtype, ts in by_type.items():
        largest = max(ts, key=lambda t: t.nbytes)
        loads.append(TypeLoad(type_name(gtype).lower(), sum(t.nbytes for t in ts), int(largest.shape[0])))
    return sorted(loads, key=lambda t: -t.bytes)


def _probe_exe(build_dir: Path) -> Path:
    """gemv_ceiling.c compiled against this build's ggml (rebuilt when the source or the libraries change)."""
    libs = library_dir(build_dir)
    stamp = hashlib.sha256(SOURCE.read_bytes() + (paths.kernels_dir() / "ggml-cpu" / "bitnet-prefetch.h").read_bytes())
    for lib in sorted(libs.glob("libggml*")):
        stamp.update(f"{lib.name}:{lib.stat().st_mtime_ns}".encode())
    exe = build_dir / "bitnet-probes" / f"gemv_ceiling-{stamp.hexdigest()[:16]}"
    if exe.is_file():
        return exe
    cc = os.environ.get("CC") or shutil.which("cc") or shutil.which("gcc") or shutil.which("clang")
    if cc is None:
        raise BitnetError("the compute ceiling needs a C compiler (cc, gcc or clang) to build its probe")
    exe.parent.mkdir(parents=True, exist_ok=True)
    tmp = exe.with_name(f"{exe.name}.{os.getpid()}.tmp")
    kernels = paths.kernels_dir()
    cmd = [cc, "-O2", "-pthread", str(SOURCE), f"-I{paths.source_dir() / 'ggml' / 'include'}",
           f"-I{kernels / 'ggml-cpu'}", f"-I{kernels}", f"-L{libs}", "-lggml-cpu", "-lggml-base",
           f"-Wl,-rpath,{libs}", "-o", str(tmp)]
    proc = subprocess.run(cmd, capture_output=True, text=True)
    if proc.returncode != 0:
        tmp.unlink(missing_ok=True)
        raise BitnetError(f"cannot build the compute-ceiling probe: {proc.stderr.strip().splitlines()[-1:]}")
    os.replace(tmp, exe)
    return exe


def gemv_rate(build_dir: Path, type_name_: str, k: int, threads: int, seconds: float = 1.0,
              cold_mib: int = 0) -> dict[str, float]:
    """{'hot_gbs', 'cold_gbs'} of the build's N = 1 kernel for one type (cold_gbs 0 unless cold_mib)."""
    k = max(256, k // 256 * 256)  # the probe's rows are whole 256-blocks of every type
    proc = subprocess.run([str(_probe_exe(build_dir)), type_name_, str(k), str(HOT_KIB), str(cold_mib), str(threads),
                           str(seconds)], capture_output=True, text=True)
    if proc.returncode != 0:
        raise BitnetError(f"gemv probe for {type_name_} failed: {proc.stderr.strip() or proc.returncode}")
    return json.loads(proc.stdout)


def with_rates(build_dir: Path, loads: list[TypeLoad], threads: int) -> tuple[TypeLoad, ...]:
    """The loads with the hot rate of every type the probe can run (I2_S with our kernel, ggml types with theirs)."""
    out = []
    total = sum(t.bytes for t in loads)
    for t in loads:
        rate = None
        if t.bytes >= total / 100:  # norms and biases: not worth a probe
            try:
                rate = gemv_rate(build_dir, t.name, t.k, threads)["hot_gbs"]
            except BitnetError:  # TL1/TL2 (kernels generated per model) and types without a vec_dot
                rate = None
        out.append(TypeLoad(t.name, t.bytes, t.k, rate))
    return tuple(out)


def table(c: Ceiling, threads: int) -> str:
    lines = [f"| weights a token reads | bytes | kernel rate from cache, {threads} threads | time per token at it |",
             "|---|---|---|---|"]
    for t in c.loads:
        rate = f"{t.hot_gbs:.1f} GB/s" if t.hot_gbs else "(memory-bound: no probe)"
        tpt = f"{t.bytes / (t.hot_gbs * 1e9) * 1e3:.2f} ms" if t.hot_gbs else "-"
        lines.append(f"| {t.name} | {t.bytes / 1e6:,.1f} MB | {rate} | {tpt} |")
    compute = f"{c.compute_tps:.1f} t/s" if c.compute_tps else "unknown"
    lines += ["", f"- memory ceiling: {c.bytes_per_token / 1e9:.3f} GB per token at {c.bandwidth_gbs:.1f} GB/s = "
                  f"{c.memory_tps:.1f} t/s",
              f"- compute ceiling: {compute}",
              f"- min(memory, compute) per mat-mul: {c.tps:.1f} t/s"]
    return "\n".join(lines) + "\n"


def llama_bench_tps(build_dir: Path, model: Path, threads: int, args: list[str]) -> float:
    """t/s of one llama-bench test (args: its -p/-n/-r/... flags) of one model at `threads`."""
    cmd = [str(find_tool("llama-bench", build_dir)), "-m", str(model), "-t", str(threads), "-ngl", "0", "-o", "json",
           *args]
    proc = subprocess.run(cmd, capture_output=True, text=True)
    if proc.returncode != 0:
        tail = proc.stderr.strip().splitlines()[-1:] or [f"exit code {proc.returncode}"]
        raise BitnetError(f"llama-bench ({build_dir}) on {model.name} failed: {tail[0]}")
    return float(json.loads(proc.stdout)[0]["avg_ts"])


@dataclass
class Round:
    index: int
    probe_before: float
    probe_after: float
    tps: dict[str, float]  # build label -> tg t/s

    @property
    def bandwidth(self) -> float:
        return (self.probe_before + self.probe_after) / 2


def run_rounds(builds: dict[str, Path], model: Path, threads: int, n_gen: int, reps: int, rounds: int,
               probe_threads: int) -> list[Round]:
    """probe, tg of every build (order reversed every other round), probe; progress on stderr."""
    out = []
    labels = list(builds)
    for r in range(rounds):
        before = read_bandwidth(threads=probe_threads).gbs
        tps = {}
        for label in labels if r % 2 == 0 else labels[::-1]:
            tps[label] = llama_bench_tps(builds[label], model, threads, ["-p", "0", "-n", str(n_gen), "-r", str(reps)])
        after = read_bandwidth(threads=probe_threads).gbs
        out.append(Round(r + 1, before, after, tps))
        print(f"round {r + 1}/{rounds}: probe {before:.1f}/{after:.1f} GB/s, "
              + ", ".join(f"{k} {v:.2f} t/s" for k, v in tps.items()), file=sys.stderr, flush=True)
    return out


def rounds_table(rounds: list[Round], ceiling: Ceiling, n_gen: int, baseline: str | None) -> str:
    """Per round: probes, tg, the share of that round's ceiling (bandwidth = mean of its two probes), ratios."""
    labels = list(rounds[0].tps)
    head = ["round", "probe GB/s (before/after)", "ceiling t/s"]
    head += [f"{label} tg{n_gen} t/s (share)" for label in labels]
    if baseline:
        head += [f"{label} / {baseline}" for label in labels if label != baseline]
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    shares: dict[str, list[float]] = {label: [] for label in labels}
    ratios: dict[str, list[float]] = {label: [] for label in labels if label != baseline}
    for r in rounds:
        c = Ceiling(r.bandwidth, ceiling.loads)
        cells = [str(r.index), f"{r.probe_before:.1f} / {r.probe_after:.1f}", f"{c.tps:.1f}"]
        for label in labels:
            shares[label].append(r.tps[label] / c.tps)
            cells.append(f"{r.tps[label]:.2f} ({r.tps[label] / c.tps:.0%})")
        if baseline:
            for label in ratios:
                ratios[label].append(r.tps[label] / r.tps[baseline])
                cells.append(f"{ratios[label][-1]:.3f}")
        lines.append("| " + " | ".join(cells) + " |")
    cells = ["median", f"{median(r.bandwidth for r in rounds):.1f}", ""]
    cells += [f"{median(r.tps[label] for r in rounds):.2f} ({median(shares[label]):.0%})" for label in labels]
    if baseline:
        cells += [f"{median(ratios[label]):.3f}" for label in ratios]
    lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> int:
    p = ArgumentParser(prog="bitnet-gguf ceilings",
                       description="The memory and compute ceilings of token generation for a model on this machine, "
                                   "and (--rounds) where tg stands against them in interleaved rounds.")
    p.add_argument("-m", "--model", required=True, help="GGUF file")
    p.add_argument("-t", "--threads", type=int, default=2)
    p.add_argument("--rounds", type=int, default=0, help="rounds of probe, llama-bench tg, probe (default 0: ceilings only)")
    p.add_argument("-n", "--n-gen", type=int, default=32, help="tokens per tg run")
    p.add_argument("-r", "--repetitions", type=int, default=3, help="llama-bench -r per run")
    p.add_argument("--against", metavar="BUILD_DIR",
                   help="another llama.cpp build (e.g. an older commit) to run beside this one in every round")
    p.add_argument("--out", help="folder for ceilings.md and ceilings.json")
    p.add_argument("--build-dir", help=BUILD_DIR_HELP)
    args = p.parse_args(argv)
    for flag, v, lo in (("-t/--threads", args.threads, 1), ("--rounds", args.rounds, 0), ("-n/--n-gen", args.n_gen, 1),
                        ("-r/--repetitions", args.repetitions, 1)):
        if v < lo:
            raise BitnetError(f"{flag} {v}: expected at least {lo}")
    model = Path(args.model)
    check_whole(model)
    build = paths.build_dir(args.build_dir)
    builds = {"this build": build}
    if args.against:
        builds["against"] = Path(args.against)
        find_tool("llama-bench", builds["against"])
    if args.out:
        check_output_path(Path(args.out) / "ceilings.md", "--out")
    loads = with_rates(build, token_loads(model), args.threads)
    ceiling = Ceiling(read_bandwidth(threads=args.threads).gbs, loads)
    text = (f"- model: {model.name}, {args.threads} threads\n- bitnet-gguf commit: {git_commit()}"
            f"{'' if not args.against else f' (against: {args.against})'}\n"
            f"- machine: {platform.machine()}, {os.cpu_count()} cpus, {cpu_model()}\n"
            f"- rounds: probe, llama-bench -p 0 -n {args.n_gen} -r {args.repetitions} per build (order alternating), "
            f"probe\n\n" + table(ceiling, args.threads))
    rounds = []
    if args.rounds:
        rounds = run_rounds(builds, model, args.threads, args.n_gen, args.repetitions, args.rounds, args.threads)
        text += "\n" + rounds_table(rounds, ceiling, args.n_gen, "against" if args.against else None)
    print(text)
    if args.out:
        out = Path(args.out)
        out.mkdir(parents=True, exist_ok=True)
        write_text_atomic(out / "ceilings.md", text)
        record = {"model": str(model), "threads": args.threads, "builds": {k: str(v) for k, v in builds.items()},
                  "ceiling": {**asdict(ceiling), "tps": ceiling.tps, "memory_tps": ceiling.memory_tps,
                              "compute_tps": ceiling.compute_tps},
                  "rounds": [asdict(r) for r in rounds]}
        write_text_atomic(out / "ceilings.json", json.dumps(record, indent=1))
    return 0
