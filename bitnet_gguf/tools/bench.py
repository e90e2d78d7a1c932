"""Benchmarks with llama-bench: bitnet.cpp's e2e_benchmark flags, and the I2_S-vs-upstream comparison suite."""

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
from ..errors import BitnetError
from ..fileio import write_text_atomic
from ..paths import BUILD_DIR_HELP
from ..runtime.locate import find_tool


def e2e_main(argv: list[str] | None = None) -> int:
    """`python -m bitnet_gguf bench`: bitnet.cpp's utils/e2e_benchmark.py flags, forwarded to llama-bench."""
    p = argparse.ArgumentParser(prog="bitnet-gguf bench", description="llama-bench on one model (bitnet.cpp's e2e_benchmark flags)")
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
        raise BitnetError(f"{model}: model file not found")
    cmd = [str(find_tool("llama-bench", paths.build_dir(args.build_dir))), "-m", str(model), "-n", str(args.n_token),
           "-p", str(args.n_prompt), "-t", args.threads, "-ngl", "0", "-r", str(args.repetitions)]
    if args.batch_size:
        cmd += ["-b", str(args.batch_size)]
    return subprocess.call(cmd)


# --- comparison suite ------------------------------------------------------------------------------------

SUITE_TYPES = ("I2_S", "TQ2_0", "TQ1_0", "Q8_0", "F16")
BASELINE = "TQ2_0"


@dataclass
class Result:
    qtype: str
    threads: int
    test: str
    tps: float
    stddev: float


def _quantize(build_dir: Path, src: Path, dst: Path, qtype: str, head_type: str) -> None:
    if dst.exists():
        return
    tmp = dst.with_suffix(".tmp.gguf")
    cmd = [str(find_tool("llama-quantize", build_dir)), "--allow-requantize", "--token-embedding-type", head_type,
           "--output-tensor-type", head_type, str(src), str(tmp), qtype, str(os.cpu_count() or 2)]
    proc = subprocess.run(cmd, capture_output=True, text=True)
    if proc.returncode != 0:
        last = (proc.stderr.strip().splitlines() or [f"exit code {proc.returncode}, no message"])[-1]
        raise BitnetError(f"llama-quantize to {qtype} failed: {last}")
    os.replace(tmp, dst)


def prepare_models(build_dir: Path, work: Path, head_type: str, types: tuple[str, ...]) -> dict[str, Path]:
    """The 2B-4T-shape model as I2_S (written directly), then every other type by llama-quantize from it.

    Requantizing from I2_S is lossless for TQ2_0/TQ1_0/Q8_0/F16 (values are s*{-1,0,1}); the token embedding
    (which is also the tied lm_head) gets the same type `head_type` in every file.
    """
    from ..synthetic.gguf_model import write_synthetic_gguf

    work.mkdir(parents=True, exist_ok=True)
    source = work / "bitnet-2B-4T-shape-i2_s-f32embd.gguf"
    if not source.exists():
        print("writing the 2B-4T-shape I2_S model ...", file=sys.stderr, flush=True)
        write_synthetic_gguf(source, "bitnet-b1.58", "2B-4T", "i2_s", paths.vocab_gguf("ggml-vocab-llama-bpe.gguf"),
                             seed=0, embd_type="f32")
    models = {}
    for qtype in types:
        print(f"preparing {qtype} (lm_head {head_type}) ...", file=sys.stderr, flush=True)
        models[qtype] = work / f"model-{qtype.lower()}-head-{head_type.lower()}.gguf"
        _quantize(build_dir, source, models[qtype], qtype, head_type)
    return models


def run_llama_bench(build_dir: Path, models: dict[str, Path], threads: str, prompts: str, gen: str, reps: int) -> list[Result]:
    cmd = [str(find_tool("llama-bench", build_dir)), "-o", "json", "--progress", "-t", threads, "-p", prompts, "-n", gen,
           "-r", str(reps), "-ngl", "0"]
    for path in models.values():
        cmd += ["-m", str(path)]
    print("$ " + " ".join(cmd), file=sys.stderr, flush=True)
    # stderr (llama-bench's progress lines) goes to the terminal: this runs for many minutes
    proc = subprocess.run(cmd, stdout=subprocess.PIPE, text=True)
    if proc.returncode != 0:
        raise BitnetError(f"llama-bench failed with exit code {proc.returncode} (its messages are above)")
    by_path = {str(p): q for q, p in models.items()}
    results = []
    for row in json.loads(proc.stdout):
        test = f"pp{row['n_prompt']}" if row["n_gen"] == 0 else f"tg{row['n_gen']}"
        results.append(Result(by_path[row["model_filename"]], int(row["n_threads"]), test, float(row["avg_ts"]), float(row["stddev_ts"])))
    return results


def markdown(results: list[Result], meta: dict[str, str]) -> str:
    tests = sorted({r.test for r in results}, key=lambda t: (t[:2] != "pp", int(t[2:])))
    threads = sorted({r.threads for r in results})
    types = list(dict.fromkeys(r.qtype for r in results))
    get = {(r.qtype, r.threads, r.test): r for r in results}
    lines = [f"- {k}: {v}" for k, v in meta.items()] + [""]
    head = "| type | threads | " + " | ".join(f"{t} t/s | ×{BASELINE}" for t in tests) + " |"
    lines += [head, "|" + "---|" * (2 + 2 * len(tests))]
    for q in types:
        for th in threads:
            cells = []
            for t in tests:
                r, base = get.get((q, th, t)), get.get((BASELINE, th, t))
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


def suite_main(argv: list[str] | None = None) -> int:
    """`python -m bitnet_gguf bench-suite`: our I2_S against upstream types on the 2B-4T shape, in one llama-bench run."""
    p = argparse.ArgumentParser(prog="bitnet-gguf bench-suite")
    p.add_argument("--work-dir", help="where the models go (~6 GB; default: the download cache's bench/)")
    p.add_argument("--out", default="bench-results", help="folder for results.md, results.json, results.png")
    p.add_argument("--head-type", default="f16", help="type of token_embd/lm_head in every model (default f16)")
    p.add_argument("--types", default=",".join(SUITE_TYPES))
    p.add_argument("-t", "--threads", default="1,2")
    p.add_argument("-p", "--n-prompt", default="128,512")
    p.add_argument("-n", "--n-gen", default="32")
    p.add_argument("-r", "--repetitions", type=int, default=3)
    p.add_argument("--build-dir", help=BUILD_DIR_HELP)
    args = p.parse_args(argv)
    build_dir = paths.build_dir(args.build_dir)
    types = tuple(t.strip().upper() for t in args.types.split(","))
    work_dir = Path(args.work_dir) if args.work_dir else paths.cache_dir() / "bench"
    models = prepare_models(build_dir, work_dir, args.head_type, types)
    start = time.time()
    results = run_llama_bench(build_dir, models, args.threads, args.n_prompt, args.n_gen, args.repetitions)
    pin = paths.load_pin()
    meta = {
        "shape": "BitNet-b1.58-2B-4T (hidden 2560, ffn 6912, 30 layers, 20/5 heads, vocab 128256), random ternary weights",
        "lm_head / token_embd type": args.head_type,
        "llama.cpp": f"b{pin.llama_cpp_build} ({pin.llama_cpp_commit}) + patches/",
        "bitnet-gguf commit": subprocess.run(["git", "rev-parse", "--short", "HEAD"], capture_output=True, text=True,
                                             cwd=Path(__file__).parent).stdout.strip() or "unknown",
        "machine": f"{platform.machine()}, {os.cpu_count()} cpus, {platform.processor() or platform.platform()}",
        "command": f"llama-bench -t {args.threads} -p {args.n_prompt} -n {args.n_gen} -r {args.repetitions} (one invocation, "
                   f"{time.time() - start:.0f} s)",
    }
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    write_text_atomic(out / "results.json", json.dumps({"meta": meta, "results": [r.__dict__ for r in results]}, indent=1))
    table = markdown(results, meta)
    write_text_atomic(out / "results.md", table)
    print(table)
    if chart(results, out / "results.png"):
        print(f"chart: {out / 'results.png'}", file=sys.stderr)
    return 0
