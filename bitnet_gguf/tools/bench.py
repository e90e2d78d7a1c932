"""Benchmarks with llama-bench: bitnet.cpp's e2e_benchmark flags, and the comparison suite (I2_S against upstream's
types in one llama-bench run, or I2_S against TL2 in interleaved rounds with a bandwidth probe beside each)."""

from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

from .. import paths
from ..errors import ArgumentParser, BitnetError
from ..fileio import atomic_output, check_output_path, write_text_atomic
from ..formats.gguf_read import check_whole
from ..paths import BUILD_DIR_HELP
from ..runtime.locate import find_tool
from ..runtime.threads import cpu_model
from .bandwidth import read_bandwidth
from .ceilings import Ceiling, git_commit, token_loads, with_rates


def e2e_main(argv: list[str] | None = None) -> int:
    """`python -m bitnet_gguf bench`: bitnet.cpp's utils/e2e_benchmark.py flags, forwarded to llama-bench."""
    p = ArgumentParser(prog="bitnet-gguf bench", description="llama-bench on one model (bitnet.cpp's e2e_benchmark flags)")
    p.add_argument("-m", "--model", required=True)
    p.add_argument("-n", "--n-token", type=int, default=128, help="tokens to generate (tg)")
    p.add_argument("-p", "--n-prompt", type=int, default=512, help="prompt tokens (pp)")
    p.add_argument("-t", "--threads", default="2", help="threads, or a list such as 1,2")
    p.add_argument("-r", "--repetitions", type=int, default=5)
    p.add_argument("-b", "--batch-size", type=int, help="llama-bench -b (bitnet.cpp forced 1; default: llama.cpp's)")
    p.add_argument("--build-dir", help=BUILD_DIR_HELP)
    args = p.parse_args(argv)
    model = Path(args.model)
    if not model.is_file():
        raise BitnetError(f"-m/--model {model}: model file not found" if not model.is_dir() else
                          f"-m/--model {model}: is a folder, expected a GGUF file")
    for flag, v, lo in (("-n/--n-token", args.n_token, 0), ("-p/--n-prompt", args.n_prompt, 0),
                        ("-r/--repetitions", args.repetitions, 1), ("-b/--batch-size", args.batch_size, 1)):
        if v is not None and v < lo:
            raise BitnetError(f"{flag} {v}: expected at least {lo}")
    check_int_list("-t/--threads", args.threads)
    check_whole(model)  # llama-bench would otherwise fail after pages of log (or measure nothing)
    cmd = [str(find_tool("llama-bench", paths.build_dir(args.build_dir))), "-m", str(model), "-n", str(args.n_token),
           "-p", str(args.n_prompt), "-t", args.threads, "-ngl", "0", "-r", str(args.repetitions)]
    if args.batch_size:
        cmd += ["-b", str(args.batch_size)]
    if args.n_token == 0:
        return subprocess.call(cmd)
    before = read_bandwidth(threads=2).gbs
    proc = subprocess.run(cmd, stdout=subprocess.PIPE, text=True)
    sys.stdout.write(proc.stdout)
    if proc.returncode != 0:
        return proc.returncode
    after = read_bandwidth(threads=2).gbs
    build = paths.build_dir(args.build_dir)
    for threads, test, tps in tg_rows(proc.stdout):
        c = Ceiling((before + after) / 2, with_rates(build, token_loads(model), threads))
        print(ceiling_line(test, threads, tps, c, before, after))
    return 0


def tg_rows(table: str) -> list[tuple[int, str, float]]:
    """(threads, test, t/s) of the tg rows of llama-bench's markdown table."""
    rows = []
    for line in table.splitlines():
        cells = [c.strip() for c in line.strip().strip("|").split("|")]
        if len(cells) >= 3 and cells[-2].startswith("tg") and cells[-3].isdigit():
            rows.append((int(cells[-3]), cells[-2], float(cells[-1].split("±")[0])))
    return rows


def ceiling_line(test: str, threads: int, tps: float, c: Ceiling, before: float, after: float) -> str:
    compute = f"{c.compute_tps:.1f}" if c.compute_tps else "unknown"
    return (f"{test} at {threads} threads: {tps:.2f} t/s = {tps / c.tps:.0%} of min(memory, compute) {c.tps:.1f} t/s "
            f"(memory {c.memory_tps:.1f} t/s at {c.bandwidth_gbs:.1f} GB/s, probes {before:.1f}/{after:.1f}; "
            f"compute {compute} t/s; `python -m bitnet_gguf ceilings` for the table)")


# --- comparison suite ------------------------------------------------------------------------------------

SUITE_TYPES = ("I2_S", "TQ2_0", "TQ1_0", "Q8_0", "F16")
BASELINE = "TQ2_0"
NATIVE = "native"  # the kernels this build picks by itself (no BITNET_I2S_KERNEL)


@dataclass
class Result:
    qtype: str  # the model's weight type, with "/kernel" when a kernel was forced
    threads: int
    test: str
    tps: float
    stddev: float
    round: int = 0
    probe_gbs: float = 0.0  # with --rounds: the mean of the probes before and after the round


def check_int_list(flag: str, text: str, minimum: int = 1) -> None:
    """llama-bench's comma lists (-t 1,2 / -p 128,512): integers >= minimum, else one line here, not its usage page."""
    items = [t.strip() for t in str(text).split(",")]
    if not items or not all(t.isdigit() and int(t) >= minimum for t in items):
        kind = "positive integers" if minimum == 1 else f"integers >= {minimum}"
        raise BitnetError(f"{flag} {text!r}: expected {kind} separated by commas, e.g. 1,2")


def _quantize(build_dir: Path, src: Path, dst: Path, qtype: str, head_type: str) -> None:
    if dst.exists():
        return
    cmd = [str(find_tool("llama-quantize", build_dir)), "--allow-requantize"]
    if head_type != "auto":
        cmd += ["--token-embedding-type", head_type, "--output-tensor-type", head_type]
    with atomic_output(dst) as tmp:  # a failed or killed llama-quantize leaves no half model to be benchmarked later
        proc = subprocess.run([*cmd, str(src), str(tmp), qtype, str(os.cpu_count() or 2)], capture_output=True, text=True)
        if proc.returncode != 0:
            last = (proc.stderr.strip().splitlines() or [f"exit code {proc.returncode}, no message"])[-1]
            raise BitnetError(f"llama-quantize to {qtype} failed: {last}")


def prepare_models(build_dir: Path, work: Path, head_type: str, types: tuple[str, ...], shape: str = "2B-4T") -> dict[str, Path]:
    """The model of `shape` as I2_S (written directly), then every other type by llama-quantize from it.

    Requantizing from I2_S is lossless for TL2/TQ2_0/TQ1_0/Q8_0/F16 (values are s*{-1,0,1}); the token embedding
    (which is also the tied lm_head) gets the same type `head_type` in every file.
    """
    from ..synthetic.gguf_model import write_synthetic_gguf

    work.mkdir(parents=True, exist_ok=True)
    tag = "" if shape == "2B-4T" else f"{shape.lower()}-"  # the 2B-4T names of earlier runs stay valid
    source = work / f"bitnet-{shape}-shape-i2_s-f32embd.gguf"
    if not source.exists():
        print(f"writing the {shape}-shape I2_S model ...", flush=True)  # progress on stdout: stderr is for errors
        write_synthetic_gguf(source, "bitnet-b1.58", shape, "i2_s", paths.vocab_gguf("ggml-vocab-llama-bpe.gguf"),
                             seed=0, embd_type="f32")
    models = {}
    for qtype in types:
        print(f"preparing {qtype} (lm_head {head_type}) ...", flush=True)
        models[qtype] = work / f"model-{tag}{qtype.lower()}-head-{head_type.lower()}.gguf"
        _quantize(build_dir, source, models[qtype], qtype, head_type)
    return models


def run_llama_bench(build_dir: Path, models: dict[str, Path], threads: str, prompts: str, gen: str, reps: int,
                    kernel: str = NATIVE) -> list[Result]:
    cmd = [str(find_tool("llama-bench", build_dir)), "-o", "json", "--progress", "-t", threads, "-p", prompts, "-n", gen,
           "-r", str(reps), "-ngl", "0"]
    for path in models.values():
        cmd += ["-m", str(path)]
    env = dict(os.environ)
    env.pop("BITNET_I2S_KERNEL", None)
    if kernel != NATIVE:
        env["BITNET_I2S_KERNEL"] = kernel
    print(f"$ {'' if kernel == NATIVE else f'BITNET_I2S_KERNEL={kernel} '}" + " ".join(cmd), file=sys.stderr, flush=True)
    # stderr (llama-bench's progress lines) goes to the terminal: this runs for many minutes
    proc = subprocess.run(cmd, stdout=subprocess.PIPE, text=True, env=env)
    if proc.returncode != 0:
        raise BitnetError(f"llama-bench failed with exit code {proc.returncode} (its messages are above)")
    by_path = {str(p): q if kernel == NATIVE else f"{q}/{kernel}" for q, p in models.items()}
    results = []
    for row in json.loads(proc.stdout):
        test = f"pp{row['n_prompt']}" if row["n_gen"] == 0 else f"tg{row['n_gen']}"
        results.append(Result(by_path[row["model_filename"]], int(row["n_threads"]), test, float(row["avg_ts"]), float(row["stddev_ts"])))
    return results


def run_rounds(build_dir: Path, models: dict[str, Path], kernels: tuple[str, ...], rounds: int, threads: str,
               prompts: str, gen: str, reps: int) -> list[Result]:
    """Every (model, kernel) once per round, the order reversed every other round, a bandwidth probe first."""
    runs = [(q, k) for k in kernels for q in models]
    results = []
    for r in range(rounds):
        before = read_bandwidth(threads=2).gbs
        print(f"round {r + 1}/{rounds}: probe {before:.1f} GB/s", file=sys.stderr, flush=True)
        this_round = []
        for q, k in runs if r % 2 == 0 else runs[::-1]:
            this_round += run_llama_bench(build_dir, {q: models[q]}, threads, prompts, gen, reps, k)
        after = read_bandwidth(threads=2).gbs
        for res in this_round:
            res.round, res.probe_gbs = r + 1, (before + after) / 2
        results += this_round
    return results


def ceiling_shares(build_dir: Path, models: dict[str, Path], results: list[Result]) -> dict[tuple[str, int, str, int], float]:
    """tg t/s / min(memory, compute) for every tg result of the rounds (the round's bandwidth, the build's kernels)."""
    loads: dict[tuple[str, int], tuple] = {}
    shares = {}
    for r in results:
        if not r.test.startswith("tg"):
            continue
        q = r.qtype.split("/")[0]
        if (q, r.threads) not in loads:
            loads[(q, r.threads)] = with_rates(build_dir, token_loads(models[q]), r.threads)
        shares[(r.qtype, r.threads, r.test, r.round)] = r.tps / Ceiling(r.probe_gbs, loads[(q, r.threads)]).tps
    return shares


def rounds_markdown(results: list[Result], baseline: str, meta: dict[str, str],
                    shares: dict[tuple[str, int, str, int], float] | None = None) -> str:
    """Medians over rounds, the median of the per-round ratios to the baseline of the same kernel, and the probes;
    for tg, the median share of each round's ceiling (`shares`, from ceiling_shares)."""
    from statistics import median

    def base_of(q: str) -> str:
        return baseline + q[len(q.split("/")[0]):]  # the baseline type with the same forced kernel

    get = {(r.qtype, r.threads, r.test, r.round): r.tps for r in results}
    keys = list(dict.fromkeys((r.qtype, r.threads, r.test) for r in results))
    probes = {r.round: r.probe_gbs for r in results}
    lines = [f"- {k}: {v}" for k, v in meta.items()]
    lines += [f"- bandwidth probe per round (GB/s, mean of before and after): "
              f"{', '.join(f'{probes[r]:.1f}' for r in sorted(probes))}", ""]
    lines += [f"| type | threads | test | median t/s | per round t/s | median ×{baseline} | per-round × | "
              "median share of min(memory, compute) |",
              "|---|---|---|---|---|---|---|---|"]
    shares = shares or {}
    for q, th, test in keys:
        rows = sorted(r for (qq, tt, te, r) in get if (qq, tt, te) == (q, th, test))
        tps = [get[(q, th, test, r)] for r in rows]
        ratios = [get[(q, th, test, r)] / get[(base_of(q), th, test, r)] for r in rows if (base_of(q), th, test, r) in get]
        share = [shares[(q, th, test, r)] for r in rows if (q, th, test, r) in shares]
        lines.append(f"| {q} | {th} | {test} | {median(tps):.2f} | {' '.join(f'{x:.2f}' for x in tps)} | "
                     + (f"{median(ratios):.3f} | {' '.join(f'{x:.3f}' for x in ratios)} | " if ratios else "- | - | ")
                     + (f"{median(share):.0%} |" if share else "- |"))
    return "\n".join(lines) + "\n"


def markdown(results: list[Result], meta: dict[str, str], baseline: str = BASELINE) -> str:
    tests = sorted({r.test for r in results}, key=lambda t: (t[:2] != "pp", int(t[2:])))
    threads = sorted({r.threads for r in results})
    types = list(dict.fromkeys(r.qtype for r in results))
    get = {(r.qtype, r.threads, r.test): r for r in results}
    lines = [f"- {k}: {v}" for k, v in meta.items()] + [""]
    head = "| type | threads | " + " | ".join(f"{t} t/s | ×{baseline}" for t in tests) + " |"
    lines += [head, "|" + "---|" * (2 + 2 * len(tests))]
    for q in types:
        for th in threads:
            cells = []
            for t in tests:
                r, base = get.get((q, th, t)), get.get((baseline, th, t))
                cells.append(f"{r.tps:.2f} ± {r.stddev:.2f}" if r else "-")
                cells.append(f"{r.tps / base.tps:.2f}" if r and base else "-")
            lines.append(f"| {q} | {th} | " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"


def chart(results: list[Result], out: Path) -> bool:
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        return False
    tests = sorted({(r.test, r.threads) for r in results}, key=lambda x: (x[0][:2] != "pp", int(x[0][2:]), x[1]))
    types = list(dict.fromkeys(r.qtype for r in results))
    get = {(r.qtype, r.threads, r.test): r.tps for r in results}
    fig, axes = plt.subplots(1, len(tests), figsize=(3.2 * len(tests), 3.6))
    for ax, (test, th) in zip(axes if len(tests) > 1 else [axes], tests, strict=True):
        vals = [get.get((q, th, test), 0.0) for q in types]
        ax.bar(types, vals, color=["#d62728" if q == "I2_S" else "#7f7f7f" for q in types])
        ax.set_title(f"{test}, {th} thread{'s' if th > 1 else ''}")
        ax.set_ylabel("tokens/s")
        ax.tick_params(axis="x", rotation=45)
    fig.tight_layout()
    fig.savefig(out, dpi=110)
    return True


SUITE_QUANT_TYPES = ("I2_S", "TL1", "TL2", "TQ1_0", "TQ2_0", "Q8_0", "F16", "F32", "BF16", "Q4_0", "Q4_K", "Q6_K")
HEAD_TYPES = ("auto", "f32", "f16", "bf16", "q8_0", "q6_k", "q5_k", "q4_k", "q5_0", "q4_0")
KERNELS = (NATIVE, "avx512vnni", "avxvnni", "avx2", "dotprod", "neon", "generic")


def check_suite_args(args: argparse.Namespace, types: tuple[str, ...], kernels: tuple[str, ...]) -> None:
    """Everything a typo could break, refused before ~6 GB of models are written or a long run starts."""
    for t in types:
        if t not in SUITE_QUANT_TYPES:
            raise BitnetError(f"--types {args.types}: {t or 'an empty name'} is not a type, expected some of {','.join(SUITE_QUANT_TYPES)}")
    if len(set(types)) != len(types):
        raise BitnetError(f"--types {args.types}: a type is named twice")
    if args.baseline.upper() not in types:
        raise BitnetError(f"--baseline {args.baseline} is not one of --types {args.types}")
    if args.head_type.lower() not in HEAD_TYPES:
        raise BitnetError(f"--head-type {args.head_type}: expected one of {', '.join(HEAD_TYPES)}")
    for k in kernels:
        if k not in KERNELS:
            raise BitnetError(f"--kernels {args.kernels}: {k or 'an empty name'} is not a kernel, expected some of {','.join(KERNELS)}")
    if kernels != (NATIVE,) and args.rounds < 2:
        raise BitnetError(f"--kernels {args.kernels}: forcing kernels needs --rounds 2 or more")
    if args.rounds < 1:
        raise BitnetError(f"--rounds {args.rounds}: expected at least 1")
    if args.repetitions < 1:
        raise BitnetError(f"-r/--repetitions {args.repetitions}: expected at least 1")
    check_int_list("-t/--threads", args.threads)
    check_int_list("-p/--n-prompt", args.n_prompt, minimum=0)
    check_int_list("-n/--n-gen", args.n_gen, minimum=0)
    for flag, value in (("--out", args.out), ("--work-dir", args.work_dir)):
        if value is None:
            continue
        p = Path(value)
        if p.exists() and not p.is_dir():
            raise BitnetError(f"{flag} {value}: is a file, expected a folder")
        check_output_path(p / "results.md", flag)


def _sweep(args: argparse.Namespace, shapes: dict) -> int:
    from .sweep import run_sweep

    sizes = [x.strip() for x in args.sizes.split(",")]
    unknown = [x for x in sizes if x not in shapes]
    if unknown or not sizes:
        raise BitnetError(f"--sizes {args.sizes}: unknown size {', '.join(unknown) or '(empty)'}; "
                          f"expected some of {', '.join(shapes)}")
    for flag, text in (("-t/--threads", args.threads), ("-p/--n-prompt", args.n_prompt), ("-n/--n-gen", args.n_gen)):
        check_int_list(flag, text, minimum=0 if flag != "-t/--threads" else 1)
    if args.repetitions < 1:
        raise BitnetError(f"-r/--repetitions {args.repetitions}: expected at least 1")
    build = paths.build_dir(args.build_dir)
    for tool in ("llama-bench", "llama-completion"):
        find_tool(tool, build)
    work = Path(args.work_dir) if args.work_dir else paths.cache_dir() / "bench"
    return run_sweep(build, work, Path(args.out), sizes, [int(t) for t in args.threads.split(",")],
                     int(args.n_prompt.split(",")[0]), max(1, int(args.n_gen.split(",")[0])), args.repetitions,
                     args.keep_models)


def suite_main(argv: list[str] | None = None) -> int:
    """`python -m bitnet_gguf bench-suite`: our I2_S against upstream types in one llama-bench run, or (--rounds)
    types such as I2_S and TL2 against a baseline in interleaved rounds."""
    from ..synthetic.shapes import SHAPES

    p = ArgumentParser(prog="bitnet-gguf bench-suite")
    p.add_argument("--work-dir", help="where the models go (~6 GB at 2B-4T; default: the download cache's bench/)")
    p.add_argument("--out", default="bench-results", help="folder for results.md, results.json, results.png")
    p.add_argument("--shape", default="2B-4T", choices=list(SHAPES), help="model shape (random ternary weights)")
    p.add_argument("--head-type", default="f16",
                   help="type of token_embd/lm_head in every model (default f16; auto: llama-quantize's rule for the "
                        "type, e.g. Q6_K for I2_S/TL2, Q8_0 where rows are not a multiple of 256)")
    p.add_argument("--types", default=",".join(SUITE_TYPES))
    p.add_argument("--baseline", default=BASELINE, help=f"type the ratios are taken against (default {BASELINE})")
    p.add_argument("--rounds", type=int, default=1,
                   help="more than 1: one llama-bench per (type, kernel) per round, order alternating, a memory "
                        "bandwidth probe before each round, medians and per-round ratios reported")
    p.add_argument("--kernels", default=NATIVE,
                   help=f"with --rounds: '{NATIVE}' and/or BITNET_I2S_KERNEL values to force, e.g. native,avx2")
    p.add_argument("-t", "--threads", default="1,2")
    p.add_argument("-p", "--n-prompt", default="128,512")
    p.add_argument("-n", "--n-gen", default="32")
    p.add_argument("-r", "--repetitions", type=int, default=3)
    p.add_argument("--sizes", help="size sweep instead: comma-separated presets (e.g. 125M,350M,...,70B), each written "
                                   "as I2_S with a Q6_K head and measured at every -t: pp (first -p), tg (first -n) "
                                   "between two bandwidth probes, file, RSS, load time, share of the roofline")
    p.add_argument("--keep-models", action="store_true", help="with --sizes: keep files of 4 GiB and more")
    p.add_argument("--build-dir", help=BUILD_DIR_HELP)
    args = p.parse_args(argv)
    if args.sizes:
        return _sweep(args, SHAPES)
    types = tuple(t.strip().upper() for t in args.types.split(","))
    kernels = tuple(k.strip() for k in args.kernels.split(","))
    check_suite_args(args, types, kernels)
    build_dir = paths.build_dir(args.build_dir)
    for tool in ("llama-quantize", "llama-bench"):  # before any model is written
        find_tool(tool, build_dir)
    work_dir = Path(args.work_dir) if args.work_dir else paths.cache_dir() / "bench"
    models = prepare_models(build_dir, work_dir, args.head_type, types, args.shape)
    start = time.time()
    if args.rounds > 1:
        results = run_rounds(build_dir, models, kernels, args.rounds, args.threads, args.n_prompt, args.n_gen,
                             args.repetitions)
        command = (f"per round and (type, kernel): llama-bench -t {args.threads} -p {args.n_prompt} -n {args.n_gen} "
                   f"-r {args.repetitions}; {args.rounds} rounds, kernels {args.kernels} ({time.time() - start:.0f} s)")
    else:
        results = run_llama_bench(build_dir, models, args.threads, args.n_prompt, args.n_gen, args.repetitions)
        command = (f"llama-bench -t {args.threads} -p {args.n_prompt} -n {args.n_gen} -r {args.repetitions} "
                   f"(one invocation, {time.time() - start:.0f} s)")
    pin = paths.load_pin()
    shape = SHAPES[args.shape]
    meta = {
        "shape": f"{args.shape} (hidden {shape.hidden}, ffn {shape.ffn}, {shape.layers} layers, "
                 f"{shape.heads}/{shape.kv_heads} heads), random ternary weights",
        "lm_head / token_embd type": args.head_type,
        "llama.cpp": f"b{pin.llama_cpp_build} ({pin.llama_cpp_commit}) + patches/",
        "bitnet-gguf commit": git_commit(),
        "machine": f"{platform.machine()}, {os.cpu_count()} cpus, {cpu_model()}",
        "command": command,
    }
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    write_text_atomic(out / "results.json", json.dumps({"meta": meta, "results": [r.__dict__ for r in results]}, indent=1))
    table = (rounds_markdown(results, args.baseline.upper(), meta, ceiling_shares(build_dir, models, results))
             if args.rounds > 1 else markdown(results, meta, args.baseline.upper()))
    write_text_atomic(out / "results.md", table)
    print(table)
    if args.rounds == 1 and chart(results, out / "results.png"):
        print(f"chart: {out / 'results.png'}", file=sys.stderr)
    return 0

