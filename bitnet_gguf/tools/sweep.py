"""The size sweep (`bench-suite --sizes`): one synthetic model per size, written straight to GGUF (I2_S weights, the
product's default Q6_K head), measured at each thread count: pp, tg with a bandwidth probe right before and after it,
file size, peak RSS and load time, bytes read per token and the share of the memory roofline reached.

Sizes that do not fit the disk (the file) or the memory (the file must stay in the page cache, or every token reads
it from disk) are skipped with a note. Big files are removed once measured unless --keep-models.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import IO

from .. import paths
from ..errors import BitnetError
from ..fileio import write_text_atomic
from ..formats.gguf_read import GGUFFile
from ..runtime.locate import find_tool
from ..runtime.memory_fit import available_memory
from ..runtime.threads import cpu_model
from ..synthetic.shapes import SHAPES
from .bandwidth import read_bandwidth
from .ceilings import Ceiling, git_commit, llama_bench_tps, token_loads, with_rates

ARCH = "bitnet-b1.58"  # the presets are bitnet.cpp's dummy-model shapes, with the tied head of that architecture
KEEP_BELOW = 4 << 30  # files under 4 GiB stay in the work folder for the next run
MARGIN = 2 << 30  # disk and memory kept free beside the model


@dataclass
class SizeResult:
    size: str
    params: int
    file_bytes: int
    bytes_per_token: int
    threads: int
    pp_tps: float
    tg_tps: float
    probe_before: float
    probe_after: float
    load_s: float
    peak_rss: int
    compute_tps: float | None

    @property
    def bandwidth(self) -> float:
        return (self.probe_before + self.probe_after) / 2

    @property
    def roofline_tps(self) -> float:
        return self.bandwidth * 1e9 / self.bytes_per_token

    @property
    def share(self) -> float:
        return self.tg_tps / self.roofline_tps


TOKENIZER_BYTES = 8 << 20  # the keys of llama.cpp's llama-bpe vocab (128256 tokens, their merges)


def estimated_file_bytes(size: str) -> int:
    """I2_S weights (2 bits) + a tied Q6_K embedding of that vocab (6.5625 bits) + the tokenizer."""
    s = SHAPES[size]
    kv = s.kv_heads * s.head_dim
    per_layer = s.hidden * (2 * s.hidden + 2 * kv) + 3 * s.hidden * s.ffn
    return s.layers * per_layer // 4 + 128256 * s.hidden * 210 // 256 + TOKENIZER_BYTES


def fits(size: str, work: Path, model: Path) -> str | None:
    """Why a size cannot be measured here, or None."""
    need = estimated_file_bytes(size)
    free_disk = shutil.disk_usage(work).free + (model.stat().st_size if model.exists() else 0)
    if need + MARGIN > free_disk:
        return f"the file (~{need / 2**30:.1f} GiB) does not fit the free disk ({free_disk / 2**30:.1f} GiB)"
    # the page cache must hold the whole file beside the process (see docs/bench/sweep.md "Beyond RAM")
    avail = available_memory()
    if avail is None:
        raise BitnetError("the sweep needs /proc/meminfo to know which sizes fit in memory")
    if need + MARGIN > avail + (model.stat().st_size if model.exists() else 0):
        return (f"the file (~{need / 2**30:.1f} GiB) does not fit the available memory "
                f"({avail / 2**30:.1f} GiB): every token would read it from disk")
    return None


def write_model(size: str, out: Path) -> None:
    from ..synthetic.gguf_model import write_synthetic_gguf

    if out.exists():
        return
    print(f"writing the {size} model ({estimated_file_bytes(size) / 2**30:.1f} GiB) ...", file=sys.stderr, flush=True)
    write_synthetic_gguf(out, ARCH, size, "i2_s", paths.vocab_gguf("ggml-vocab-llama-bpe.gguf"), seed=0,
                         embd_type="q6_k")


# runs argv, then writes "<exit code> <ru_maxrss KiB>" of it to the file in argv[1]
_WRAPPER = ("import os, subprocess, sys; p = subprocess.Popen(sys.argv[2:]); _, st, ru = os.wait4(p.pid, 0); "
            "open(sys.argv[1], 'w').write(f'{os.waitstatus_to_exitcode(st)} {ru.ru_maxrss}')")


def run_with_peak_rss(argv: list[str], stdout: int | IO[str] | None = None, stderr: int | IO[str] | None = None,
                      timeout: float | None = None) -> tuple[int, int]:
    """(exit code, peak RSS in bytes) of argv. A small interpreter starts it and reads its wait4: a child forked
    straight from a big process (pytest, this sweep) inherits the parent's high-water mark (Linux keeps the peak
    of the memory it had before exec), which would add the parent's RSS to a small child's."""
    with tempfile.NamedTemporaryFile("r", suffix=".rss") as report:
        proc = subprocess.Popen([sys.executable, "-c", _WRAPPER, report.name, *argv], stdout=stdout, stderr=stderr,
                                start_new_session=True)
        try:
            proc.wait(timeout)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
            raise
        rc, kib = report.read().split()
    return int(rc), int(kib) * 1024


def load_and_rss(build: Path, model: Path, threads: int) -> tuple[float, int]:
    """llama-completion's own load time (seconds) and its peak RSS, for a prompt and 4 generated tokens."""
    cmd = [str(find_tool("llama-completion", build)), "-m", str(model), "-p", "Hello", "-n", "4", "-t", str(threads),
           "-no-cnv", "--no-warmup", "-c", "512"]
    with tempfile.TemporaryFile("w+") as log:
        rc, rss = run_with_peak_rss(cmd, stdout=subprocess.DEVNULL, stderr=log)
        log.seek(0)
        err = log.read()
    if rc:
        tail = err.strip().splitlines()[-1:] or [f"exit code {rc}"]
        raise BitnetError(f"llama-completion on {model.name} failed: {tail[0]}")
    m = re.search(r"load time =\s*([\d.]+) ms", err)
    return (float(m.group(1)) / 1e3 if m else float("nan")), rss


def cache_only(model: Path) -> None:
    """Leave the measured model alone in the page cache among the sweep's files: the others beside it are dropped
    (POSIX_FADV_DONTNEED; kept big models would crowd it out) and it is read through once. With a kept 70B file in
    the cache, the 7B-30B files lost pages during their runs and their tokens read the disk: 70-81 % of the roofline
    where they reach 92-100 % alone."""
    for other in model.parent.glob("sweep-*.gguf"):
        if other != model:
            fd = os.open(other, os.O_RDONLY)
            try:
                os.posix_fadvise(fd, 0, 0, os.POSIX_FADV_DONTNEED)
            finally:
                os.close(fd)
    buf = bytearray(1 << 20)
    with open(model, "rb", buffering=0) as f:
        while f.readinto(buf):
            pass


def measure(build: Path, size: str, model: Path, threads: list[int], n_prompt: int, n_gen: int,
            reps: int) -> list[SizeResult]:
    cache_only(model)
    f = GGUFFile(model)
    params = sum(int(t.shape[0]) * (int(t.shape[1]) if len(t.shape) > 1 else 1) for t in f.tensors.values())
    loads = token_loads(model)
    out = []
    for t in threads:
        load_s, rss = load_and_rss(build, model, t)
        # no warmup run: the whole file is in the page cache (cache_only, then load_and_rss), and a warmup would
        # double the time of the big sizes
        pp = llama_bench_tps(build, model, t, ["--no-warmup", "-p", str(n_prompt), "-n", "0", "-r", str(reps)]) if n_prompt else 0.0
        before = read_bandwidth(threads=t).gbs
        tg = llama_bench_tps(build, model, t, ["--no-warmup", "-p", "0", "-n", str(n_gen), "-r", str(reps)])
        after = read_bandwidth(threads=t).gbs
        compute = Ceiling(1.0, with_rates(build, loads, t)).compute_tps
        r = SizeResult(size, params, model.stat().st_size, sum(x.bytes for x in loads), t, pp, tg, before, after,
                       load_s, rss, compute)
        print(f"{size} t={t}: pp{n_prompt} {pp:.2f}, tg{n_gen} {tg:.2f} t/s = {r.share:.0%} of the roofline "
              f"({before:.1f}/{after:.1f} GB/s), load {load_s:.1f} s, peak RSS {rss / 2**30:.2f} GiB",
              file=sys.stderr, flush=True)
        out.append(r)
    return out


def markdown(results: list[SizeResult], skipped: dict[str, str], meta: dict[str, str], n_prompt: int,
             n_gen: int) -> str:
    lines = [f"- {k}: {v}" for k, v in meta.items()] + [""]
    lines += [f"| size | params | file | bytes/token | threads | pp{n_prompt} t/s | tg{n_gen} t/s | probe GB/s "
              "(before/after) | memory roofline t/s | share of roofline | compute ceiling t/s | load s | peak RSS |",
              "|" + "---|" * 13]
    for r in results:
        compute = f"{r.compute_tps:.1f}" if r.compute_tps else "-"
        lines.append(f"| {r.size} | {r.params / 1e9:.2f} B | {r.file_bytes / 2**30:.2f} GiB | "
                     f"{r.bytes_per_token / 1e9:.3f} GB | {r.threads} | {r.pp_tps:.2f} | {r.tg_tps:.2f} | "
                     f"{r.probe_before:.1f} / {r.probe_after:.1f} | {r.roofline_tps:.2f} | {r.share:.0%} | {compute} | "
                     f"{r.load_s:.2f} | {r.peak_rss / 2**30:.2f} GiB |")
    if skipped:
        lines += ["", "Skipped:"] + [f"- {size}: {why}" for size, why in skipped.items()]
    lines += ["", "Choosing a machine (from the rows above, at the most threads measured): the disk holds the file; "
              "memory holds the file (mapped, read every token), the KV cache and llama.cpp's buffers; tg scales with "
              "read bandwidth at the share of the roofline measured here.", "",
              "| size | disk | memory at -c 4096 | tg t/s per 10 GB/s of read bandwidth |", "|---|---|---|---|"]
    for r in [max((x for x in results if x.size == size), key=lambda x: x.threads)
              for size in dict.fromkeys(x.size for x in results)]:
        s = SHAPES[r.size]
        kv = s.layers * 2 * s.kv_heads * s.head_dim * 2 * 4096  # K and V at F16, 4096 tokens
        per_10 = r.share * 10e9 / r.bytes_per_token
        lines.append(f"| {r.size} | {r.file_bytes / 2**30:.1f} GiB | {(r.peak_rss + kv) / 2**30:.1f} GiB | {per_10:.2f} |")
    return "\n".join(lines) + "\n"


def chart(results: list[SizeResult], out: Path, n_gen: int) -> bool:
    """tg t/s against bytes per token (log-log) per thread count, with the memory roofline of each point's probes."""
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        return False
    fig, ax = plt.subplots(figsize=(8, 5))
    for t, marker in zip(sorted({r.threads for r in results}), "os^v", strict=False):
        rs = [r for r in results if r.threads == t]
        x = [r.bytes_per_token / 1e9 for r in rs]
        ax.plot(x, [r.tg_tps for r in rs], marker=marker, label=f"tg{n_gen}, {t} thread{'s' * (t > 1)}")
        ax.plot(x, [r.roofline_tps for r in rs], linestyle="--", marker=marker, alpha=0.5,
                label=f"memory roofline (probe, {t} thread{'s' * (t > 1)})")
        for r in rs:
            ax.annotate(r.size, (r.bytes_per_token / 1e9, r.tg_tps), textcoords="offset points", xytext=(4, 4),
                        fontsize=7)
    ax.set_xscale("log")
    ax.set_yscale("log")
    ax.set_xlabel("GB read per token (I2_S weights + Q6_K head)")
    ax.set_ylabel("tokens/s")
    ax.set_title("Token generation against the memory roofline, by model size")
    ax.grid(True, which="both", alpha=0.3)
    ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(out, dpi=110)
    plt.close(fig)
    return True


def run_sweep(build: Path, work: Path, out: Path, sizes: list[str], threads: list[int], n_prompt: int, n_gen: int,
              reps: int, keep: bool) -> int:
    work.mkdir(parents=True, exist_ok=True)
    out.mkdir(parents=True, exist_ok=True)
    results: list[SizeResult] = []
    skipped: dict[str, str] = {}
    start = time.time()
    for size in sorted(sizes, key=estimated_file_bytes):
        model = work / f"sweep-{size.lower()}-i2_s-head-q6_k.gguf"
        why = fits(size, work, model)
        if why:
            skipped[size] = why
            print(f"{size}: skipped: {why}", file=sys.stderr, flush=True)
        else:
            write_model(size, model)
            try:
                results += measure(build, size, model, threads, n_prompt, n_gen, reps)
            finally:
                if not keep and model.stat().st_size >= KEEP_BELOW:
                    model.unlink()
        # written after every size: a sweep that stops half way still leaves its numbers
        pin = paths.load_pin()
        meta = {"models": f"{ARCH} presets (synthetic/shapes.py), random ternary I2_S weights, tied Q6_K embedding/head",
                "llama.cpp": f"b{pin.llama_cpp_build} ({pin.llama_cpp_commit}) + patches/",
                "bitnet-gguf commit": git_commit(),
                "machine": f"{os.uname().machine}, {os.cpu_count()} cpus, {cpu_model()}",
                "command": f"per size and thread count: llama-completion -n 4 (load time, peak RSS), llama-bench "
                           f"--no-warmup -p {n_prompt} -n 0 -r {reps}, probe, llama-bench --no-warmup -p 0 "
                           f"-n {n_gen} -r {reps}, probe ({time.time() - start:.0f} s so far)"}
        write_text_atomic(out / "results.md", markdown(results, skipped, meta, n_prompt, n_gen))
        write_text_atomic(out / "results.json", json.dumps(
            {"meta": meta, "skipped": skipped, "results": [{**asdict(r), "share": r.share} for r in results]}, indent=1))
        if results:
            chart(results, out / "results.png", n_gen)
    print((out / "results.md").read_text() if results else "no size could be measured", flush=True)
    return 0 if results else 1

