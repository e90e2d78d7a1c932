"""Coverage-guided fuzzing of the loaders: `python -m bitnet_gguf.tools.fuzz --target T --seconds N --out DIR`.

Targets (docs/reliability.md, "Fuzzing"):

- `gguf`: libFuzzer + ASan + UBSan over our build's `gguf_init_from_file_ptr` (what `gguf_init_from_file` runs) and
  `ggml_validate_row_data` of every tensor it loads (our I2_S/TL1/TL2 checks in kernels/*-quants.c included):
  tests/fuzz/fuzz_gguf.c linked against a sanitized ggml-base.
- `llama`: libFuzzer + ASan + UBSan over `llama_model_load_from_file_ptr` with vocab_only, then a tokenize and a
  detokenize: tests/fuzz/fuzz_llama_load.cpp against a sanitized static libllama (a ~10-minute cold build).
- `py-gguf`, `py-safetensors`: atheris over bitnet_gguf.formats.gguf_read and safetensors_reader
  (bitnet_gguf/tools/fuzz_py.py holds the contract).

The sanitized libraries come from a separate CMake build of the patched source with clang, configured with
setup/build.py's arguments plus sanitizer overrides, in `<build>/fuzz/cmake` (`$BITNET_GGUF_FUZZ_DIR` moves it).
Seeds are generated into `DIR/seeds/` at every run; the committed corpus `tests/fuzz/corpus/<target>/` (regression
inputs) is read as well. New crashers land in `DIR/crashes/<target>/`, a summary in `DIR/summary-<target>.json`.
"""

from __future__ import annotations

import argparse
import fcntl
import json
import os
import re
import shutil
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

from ..errors import BitnetError
from ..paths import build_dir, checkout, load_pin, source_dir
from ..setup import build, kernel_gen
from ..setup.steps import StepRunner
from .fuzz_py import PY_TARGETS

C_TARGETS = {"gguf": "fuzz_gguf.c", "llama": "fuzz_llama_load.cpp"}
TARGETS = (*C_TARGETS, *PY_TARGETS)
# the CMake targets each C fuzzer links against, in link order
LIBS = {
    "gguf": ["ggml/src/libggml-base.a"],
    "llama": ["src/libllama.a", "ggml/src/libggml.a", "ggml/src/libggml-cpu.a", "ggml/src/libggml-base.a"],
}
CMAKE_TARGETS = {"gguf": ("ggml-base",), "llama": ("llama",)}
# -fno-sanitize-recover: a UBSan report must stop the run like an ASan one, or libFuzzer never sees it; `enum` alone
# stays recoverable so tests/fuzz/ubsan.supp can silence an upstream finding while its patch is written
# (halt_on_error=1 still makes any unsuppressed enum report a crash)
SANITIZE = ["-fsanitize=address,undefined", "-fno-sanitize-recover=all", "-fsanitize-recover=enum",
            "-fno-omit-frame-pointer", "-g", "-O1"]
FUZZ_DIR_ENV = "BITNET_GGUF_FUZZ_DIR"
# seed corpora: which generated seed folders each target reads
SEED_SETS = {"gguf": ("gguf",), "llama": ("llama",), "py-gguf": ("gguf",), "py-safetensors": ("safetensors",)}
CORPUS_SUBDIR = "tests/fuzz/corpus"
# the committed corpora each target starts from (GGUF inputs serve both GGUF readers)
COMMITTED = {"gguf": ("gguf", "py-gguf"), "llama": ("llama",), "py-gguf": ("py-gguf", "gguf"), "py-safetensors": ("py-safetensors",)}
# libFuzzer dictionaries (tests/fuzz/<name>.dict): the format's vocabulary, which byte flips take long to find
DICTS = {"gguf": "gguf", "llama": "gguf", "py-gguf": "gguf", "py-safetensors": "safetensors"}


def fuzz_dir() -> Path:
    """Where the sanitized build and the fuzz binaries live: $BITNET_GGUF_FUZZ_DIR, else <build>/fuzz."""
    env = os.environ.get(FUZZ_DIR_ENV)
    return Path(env) if env else build_dir() / "fuzz"


def corpus_dir(target: str) -> Path:
    """The committed regression corpus of one target."""
    return checkout("the fuzz corpus") / CORPUS_SUBDIR / target


def sanitizer_env(suppress: bool = True) -> dict[str, str]:
    """The environment a fuzz binary runs in: UBSan stops at the first report, minus the suppressed upstream ones."""
    env = dict(os.environ)
    opts = ["halt_on_error=1", "print_stacktrace=1"]
    if suppress:
        opts.append(f"suppressions={checkout('the fuzz targets') / 'tests' / 'fuzz' / 'ubsan.supp'}")
    env["UBSAN_OPTIONS"] = ":".join(opts)
    return env


def require_clang() -> None:
    for tool in ("clang", "clang++"):
        if shutil.which(tool) is None:
            raise BitnetError(f"{tool} not found: the C fuzz targets need clang with libFuzzer (apt-get install clang libclang-rt-dev)")


# ---------------------------------------------------------------------------------------------------------------
# the sanitized build


def sanitizer_cmake_args(fdir: Path) -> list[str]:
    """setup/build.py's configure arguments with clang, then the overrides (a later -D wins): a static, sanitized,
    coverage-instrumented ggml/libllama without tests, tools or common."""
    src = source_dir()
    if not (src / "CMakeLists.txt").is_file():
        raise BitnetError(f"{src}: no llama.cpp source (run python setup_env.py first)")
    generated = kernel_gen.emit(fdir)  # default TL2 tables; the fuzzers never run a TL2 mat-mul
    flags = " ".join([*SANITIZE, "-fsanitize=fuzzer-no-link"])
    return [
        *build.cmake_args(load_pin(), "clang", "clang++", False, src, generated),
        "-DCMAKE_BUILD_TYPE=Debug",  # adds only -g: our -O1 stays, and llama's asserts are live
        f"-DCMAKE_C_FLAGS={flags}",
        f"-DCMAKE_CXX_FLAGS={flags}",
        "-DBUILD_SHARED_LIBS=OFF",
        "-DGGML_OPENMP=OFF",  # one thread is enough to load a file, and libomp is not sanitized
        "-DLLAMA_BUILD_TESTS=OFF",
        "-DLLAMA_BUILD_TOOLS=OFF",
        "-DLLAMA_BUILD_EXAMPLES=OFF",
        "-DLLAMA_BUILD_SERVER=OFF",
        "-DLLAMA_BUILD_COMMON=OFF",
        "-DLLAMA_BUILD_APP=OFF",
    ]


def _newer(out: Path, inputs: list[Path]) -> bool:
    return out.exists() and all(out.stat().st_mtime >= p.stat().st_mtime for p in inputs)


def build_fuzzer(target: str, jobs: int = 1, quiet: bool = True) -> Path:
    """The libFuzzer binary of a C target, (re)built when a library or the target's source changed."""
    if target not in C_TARGETS:
        raise BitnetError(f"{target} is not a C fuzz target")
    require_clang()
    fdir = fuzz_dir()
    fdir.mkdir(parents=True, exist_ok=True)
    # one build at a time in the shared folder (a test run and a fuzz run may start together)
    with open(fdir / "build.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        return _build_fuzzer_locked(target, fdir, jobs, quiet)


def _build_fuzzer_locked(target: str, fdir: Path, jobs: int, quiet: bool) -> Path:
    cdir = fdir / "cmake"
    runner = StepRunner(fdir / "logs", total=2, quiet=quiet)
    args = sanitizer_cmake_args(fdir)
    runner.step(f"configure-{target}", "cmake configure (clang, ASan + UBSan + fuzzer coverage)",
                lambda log: build.configure(runner, log, cdir, args))
    runner.step(f"build-{target}", f"build {' '.join(CMAKE_TARGETS[target])} with {jobs} jobs",
                lambda log: build.build(runner, log, cdir, jobs, CMAKE_TARGETS[target]))
    source = checkout("the fuzz targets") / "tests" / "fuzz" / C_TARGETS[target]
    libs = [cdir / lib for lib in LIBS[target]]
    out = fdir / "bin" / f"fuzz_{target}"
    if _newer(out, [source, *libs]):
        return out
    out.parent.mkdir(parents=True, exist_ok=True)
    src = source_dir()
    obj = out.with_suffix(".o")
    compiler = "clang++" if source.suffix == ".cpp" else "clang"
    # clang++ links: the libraries hold C++ (UBSan's C++ checks need the C++ runtime of the sanitizer)
    for cmd in ([compiler, *SANITIZE, "-fsanitize=fuzzer", f"-I{src / 'ggml' / 'include'}", f"-I{src / 'include'}",
                 "-c", str(source), "-o", str(obj)],
                ["clang++", *SANITIZE, "-fsanitize=fuzzer", str(obj), *map(str, libs), "-lm", "-lpthread", "-ldl",
                 "-o", str(out)]):
        proc = subprocess.run(cmd, capture_output=True, text=True)
        if proc.returncode != 0:
            (fdir / "logs" / f"link-{target}.log").write_text(" ".join(cmd) + "\n" + proc.stderr)
            raise BitnetError(f"building {out.name} failed (exit {proc.returncode}): see {fdir / 'logs' / f'link-{target}.log'}")
    return out


# ---------------------------------------------------------------------------------------------------------------
# seeds


def _default_model(work: Path) -> Path:
    """The default model's I2_S GGUF (Q6_K token embedding, gpt2 tokenizer of 2048 tokens), converted if absent."""
    root = checkout("the default model")
    gguf_path = root / "models" / "tiny-shakespeare" / "ggml-model-i2_s.gguf"
    if gguf_path.is_file():
        return gguf_path
    out = work / "tiny-shakespeare-i2_s.gguf"
    if not out.is_file():
        from ..convert import convert

        convert(root / "models" / "tiny-shakespeare", "i2_s", out, progress=False)
    return out


def _kv_end(path: Path) -> tuple[int, int]:
    """(end of the key/value section, start of the data section) of a GGUF we wrote."""
    from ..formats import gguf_read

    with open(path, "rb") as f:
        f.seek(8)
        n_tensors, n_kv = (int(x) for x in np.frombuffer(f.read(16), dtype="<u8"))
        for _ in range(n_kv):
            gguf_read._string(f)
            vtype = int(np.frombuffer(f.read(4), dtype="<u4")[0])
            gguf_read._value(f, vtype)
        kv_end = f.tell()
        for _ in range(n_tensors):
            gguf_read._string(f)
            n_dims = int(np.frombuffer(f.read(4), dtype="<u4")[0])
            f.seek(8 * n_dims + 12, 1)
        return kv_end, (f.tell() + 31) // 32 * 32


def _derived_seeds(src: Path, out_dir: Path, stem: str) -> list[Path]:
    """Small seeds cut from a full file: its metadata with no tensors (all a vocab-only load needs), and its
    header with the whole tensor table but no data (the loader's table parsing)."""
    data = src.read_bytes()
    kv_end, data_start = _kv_end(src)
    meta = out_dir / f"{stem}.meta.gguf"
    meta.write_bytes(data[:8] + (0).to_bytes(8, "little") + data[16:kv_end])
    head = out_dir / f"{stem}.head.gguf"
    head.write_bytes(data[:data_start])
    return [meta, head]


def _type_seeds(out_dir: Path) -> list[Path]:
    """One complete tiny GGUF per tensor type we care about (data included, so row validation runs on it)."""
    import gguf

    from ..formats.gguf_write import add_layout_keys, add_ternary_tensor
    from ..formats.kquants import Q6K

    rng = np.random.default_rng(0)
    made = []
    for kind in ("f32", "f16", "q6_k", "i2_s", "tl1", "tl2"):
        path = out_dir / f"type-{kind}.gguf"
        w = gguf.GGUFWriter(path, "bitnet-b1.58")
        add_layout_keys(w, kind)
        w.add_uint32("general.file_type", 0)
        if kind == "f32":
            w.add_custom_alignment(64)  # general.alignment: the one key the readers compute offsets with
        if kind in ("f32", "f16"):
            w.add_tensor("t.weight", rng.standard_normal((2, 32)).astype(np.float32 if kind == "f32" else np.float16))
        elif kind == "q6_k":
            q = np.asarray(Q6K.quantize(rng.standard_normal(256).astype(np.float32)), dtype=np.uint8)
            # uint8 data: gguf-py takes the shape in bytes (one 210-byte block = 256 values)
            w.add_tensor("t.weight", q.reshape(1, -1), raw_dtype=gguf.GGMLQuantizationType.Q6_K)
        else:
            # the smallest shapes each layout takes: a 128-element I2_S block, a 32-row TL1 tile, a 64-row TL2 tile
            rows, cols = {"i2_s": (1, 128), "tl1": (32, 4), "tl2": (64, 24)}[kind]
            add_ternary_tensor(w, "t.weight", rng.integers(-1, 2, size=(rows, cols), dtype=np.int8), 0.5, kind)
        w.write_header_to_file()
        w.write_kv_data_to_file()
        w.write_tensors_to_file(progress=False)
        w.close()
        made.append(path)
    return made


def _safetensors_seeds(out_dir: Path) -> list[Path]:
    """Tiny checkpoints: every dtype, a scalar, an empty tensor, metadata; and the first tensors of our model."""
    from ..formats.safetensors_reader import DTYPES, SafetensorsReader
    from ..formats.safetensors_writer import TensorSpec, write_safetensors

    made = []
    specs = [TensorSpec(f"w.{dt.lower()}", dt, (2, 3), lambda dt=dt: np.zeros((2, 3), dtype=DTYPES[dt])) for dt in DTYPES]
    specs += [TensorSpec("scalar", "F32", (), lambda: np.ones((), dtype=np.float32)),
              TensorSpec("empty", "F16", (0, 4), lambda: np.zeros((0, 4), dtype=np.float16))]
    path = out_dir / "dtypes.safetensors"
    write_safetensors(path, specs, {"format": "pt", "note": "fuzz seed"})
    made.append(path)
    model = checkout("the default model") / "models" / "tiny-shakespeare"
    reader = SafetensorsReader(model)
    small = sorted(reader.tensors.values(), key=lambda r: r.nbytes)[:3]
    specs = [TensorSpec(r.name, r.dtype, r.shape, lambda r=r: reader._read_raw(r, 0, r.n_elements)) for r in small]
    path = out_dir / "tiny-shakespeare-head.safetensors"
    write_safetensors(path, specs)
    made.append(path)
    # the same two files in the target's length-free form (fuzz_py.safetensors_bytes)
    for p in list(made):
        raw = p.read_bytes()
        n = int.from_bytes(raw[:8], "little")
        form = p.with_suffix(".json-nul")
        form.write_bytes(raw[8:8 + n] + b"\0" + raw[8 + n:])
        made.append(form)
    return made


def make_seeds(out: Path) -> dict[str, Path]:
    """Generate the seed folders (gguf, llama, safetensors) under out/seeds; full files go to out/seed-src."""
    from ..formats.architectures import BY_GGUF
    from ..synthetic.gguf_model import write_synthetic_gguf

    seeds, src = out / "seeds", out / "seed-src"
    dirs = {name: seeds / name for name in ("gguf", "llama", "safetensors")}
    for d in (*dirs.values(), src):
        d.mkdir(parents=True, exist_ok=True)
    model = _default_model(src)  # Q6_K token embedding, I2_S weights
    full = {"tiny-shakespeare-i2_s": model}
    # a file of each architecture (I2_S), and our other weight types on bitnet-b1.58; the default model's small
    # tokenizer keeps them small
    wanted = [(arch, "i2_s") for arch in BY_GGUF] + [("bitnet-b1.58", t) for t in ("tl1", "tl2", "f16")]
    for arch, kind in wanted:
        path = src / f"{arch}-{kind}.gguf"
        if not path.is_file():
            write_synthetic_gguf(path, arch, "tiny", kind, model)
        full[f"{arch}-{kind}"] = path
    for stem, path in full.items():
        meta, head = _derived_seeds(path, dirs["gguf"], stem)
        shutil.copy(meta, dirs["llama"] / meta.name)
    _type_seeds(dirs["gguf"])
    _safetensors_seeds(dirs["safetensors"])
    return dirs


# ---------------------------------------------------------------------------------------------------------------
# running


_STAT = re.compile(r"^stat::(\w+):\s*(\d+)", re.M)
_EXECS = re.compile(r"^#(\d+)\s", re.M)
_FRAME = re.compile(r"^    #\d+ 0x[0-9a-f]+ in (.*)$", re.M)  # a sanitizer stack frame (not gdb's): function and place
_NOT_THE_BUG = re.compile(r"libc|nptl|fuzzer::|__sanitizer|__asan|__ubsan|__interceptor|abort|raise|LLVMFuzzer|^main ")


def c_signature(report: str) -> str:
    """One line naming a sanitizer/libFuzzer report: its SUMMARY (or kind), a failed GGML_ASSERT, and the first
    frame outside libc, the sanitizers and the fuzzer, without the build's path prefix."""
    kind = re.search(r"^SUMMARY: (.*)$", report, re.M)
    parts = [kind.group(1).strip() if kind else next(
        (m.group(0) for m in re.finditer(r"deadly signal|timeout after \d+ seconds|out-of-memory \([^)]*\)", report)), "crash")]
    assertion = re.search(r"GGML_ASSERT\((.*)\) failed", report)
    if assertion:
        parts.append(f"GGML_ASSERT({assertion.group(1)})")
    frame = next((f for f in _FRAME.findall(report) if not _NOT_THE_BUG.search(f)), "")
    if frame:
        parts.append(frame)
    return re.sub(r"(\.\./)+|/\S*/third_party/llama\.cpp/|\(BuildId: \w+\)\s*", "", " | ".join(parts))


def _libfuzzer_flags(target: str, seconds: float, crash_dir: Path) -> list[str]:
    flags = [f"-max_total_time={max(1, int(seconds))}", "-print_final_stats=1", f"-artifact_prefix={crash_dir}/",
             "-timeout=10", "-rss_limit_mb=2048", "-malloc_limit_mb=1024", "-max_len=262144"]
    dictionary = checkout("the fuzz targets") / "tests" / "fuzz" / f"{DICTS[target]}.dict"
    if dictionary.is_file():
        flags.append(f"-dict={dictionary}")
    return flags


def run_target(target: str, seconds: float, out: Path, jobs: int = 1) -> dict[str, object]:
    """Fuzz one target for `seconds` (plus build time); returns the summary written to out/summary-<target>.json."""
    out.mkdir(parents=True, exist_ok=True)
    crash_dir = out / "crashes" / target
    crash_dir.mkdir(parents=True, exist_ok=True)
    corpus = out / "corpus" / target  # new interesting inputs; the first folder is the one libFuzzer writes to
    corpus.mkdir(parents=True, exist_ok=True)
    t0 = time.monotonic()
    if target in C_TARGETS:
        binary = build_fuzzer(target, jobs, quiet=False)
    seed_dirs = make_seeds(out)
    reads = [str(corpus), *(str(seed_dirs[s]) for s in SEED_SETS[target])]
    reads += [str(corpus_dir(c)) for c in COMMITTED[target] if corpus_dir(c).is_dir()]
    setup_s = time.monotonic() - t0
    log_path = out / f"fuzz-{target}.log"
    executions, crashes, runs = 0, 0, 0
    signatures: dict[str, str] = {}  # distinct crash -> its first input
    start = time.monotonic()
    with open(log_path, "w") as log:
        # a C crash ends libFuzzer: start it again for the time left (the Python worker records and goes on)
        while (left := seconds - (time.monotonic() - start)) >= 1 and runs < 50:
            runs += 1
            before = set(crash_dir.iterdir())
            flags = _libfuzzer_flags(target, left, crash_dir)
            if target in C_TARGETS:
                cmd = [str(binary), *flags, *reads]
            else:
                cmd = [sys.executable, "-m", "bitnet_gguf.tools.fuzz_py", target, "--crash-dir", str(crash_dir), "--",
                       *flags, *reads]
            proc = subprocess.run(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, errors="replace",
                                  env=sanitizer_env())
            log.write(proc.stdout)
            new = sorted(p for p in set(crash_dir.iterdir()) - before if not p.name.endswith(".txt"))
            stats = {k: int(v) for k, v in _STAT.findall(proc.stdout)}
            execs = stats.get("number_of_executed_units") or max((int(x) for x in _EXECS.findall(proc.stdout)), default=0)
            executions += execs
            crashes += len(new)
            for p in new:
                report = crash_dir / f"{p.name}.txt"  # the Python worker writes its own (traceback); libFuzzer does not
                if report.exists():
                    sig = report.read_text().splitlines()[0]
                else:  # a sanitizer report, or libFuzzer's timeout / out-of-memory (either engine)
                    sig = c_signature(proc.stdout)
                    report.write_text(sig + "\n\n" + proc.stdout[-20000:])
                if sig in signatures:
                    p.unlink()  # the same bug again: keep the first input only
                    (crash_dir / f"{p.name}.txt").unlink()
                    continue
                signatures[sig] = str(p)
                print(f"crash: {sig}: {p}", file=sys.stderr)
            if target in C_TARGETS and proc.returncode != 0 and not new:
                raise BitnetError(f"fuzz_{target} failed without a crash input (exit {proc.returncode}): see {log_path}")
            if target in PY_TARGETS and proc.returncode != 0 and not new:
                raise BitnetError(f"the {target} worker failed (exit {proc.returncode}): see {log_path}")
            if target in PY_TARGETS and not new:
                break  # the worker ran for the whole time (only a timeout or an out-of-memory ends it early)
    elapsed = time.monotonic() - start
    summary = {"target": target, "seconds": round(elapsed, 1), "executions": executions,
               "exec_per_s": round(executions / elapsed, 1) if elapsed else 0.0, "crash_inputs": crashes,
               "crashes": len(signatures), "distinct": signatures, "runs": runs,
               "setup_seconds": round(setup_s, 1), "crash_dir": str(crash_dir), "log": str(log_path)}
    (out / f"summary-{target}.json").write_text(json.dumps(summary, indent=2) + "\n")
    return summary


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m bitnet_gguf.tools.fuzz", description=__doc__.splitlines()[0])
    p.add_argument("--target", required=True, choices=TARGETS)
    p.add_argument("--seconds", type=float, default=60, help="fuzzing time, after the build and the seeds (default 60)")
    p.add_argument("--out", type=Path, help="output folder: seeds, new corpus, crashes/<target>/, summary")
    p.add_argument("-j", "--jobs", type=int, default=1, help="build jobs for the sanitized libraries (default 1)")
    p.add_argument("--build-only", action="store_true", help="C targets: build the fuzzer and print its path")
    args = p.parse_args(argv)
    try:
        if args.build_only:
            print(build_fuzzer(args.target, args.jobs, quiet=False))
            return 0
        if args.out is None:
            p.error("--out is required (unless --build-only)")
        s = run_target(args.target, args.seconds, args.out, args.jobs)
    except BitnetError as e:
        print(f"error: {e}", file=sys.stderr)
        return 1
    print(f"{s['target']}: {s['executions']} executions in {s['seconds']} s ({s['exec_per_s']}/s), "
          f"{s['crashes']} distinct crash(es) in {s['crash_dir']}")
    return 1 if s["crashes"] else 0


if __name__ == "__main__":
    sys.exit(main())
