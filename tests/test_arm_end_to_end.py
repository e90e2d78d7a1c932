"""ARM end to end: the aarch64 cross build (`setup_env.py --target aarch64`) runs the default model, a tiny model of
each architecture and TL1 files under qemu-user, and must give the x86 build's greedy tokens and logits.

Two CPUs, each with the cross build of its ISA level: qemu's default CPU ("max", which has dotprod) runs
build-aarch64/dotprod, a Cortex-A53 (ARMv8.0, no dotprod) runs build-aarch64/neon. llama-completion's greedy text
must equal the x86 build's byte for byte; tests/tools/llama_logits.c (compiled against each build) gives the
greedy token ids and every logit of the prompt (one batch: the GEMM kernels) and of the continuation (one token at
a time: the GEMV kernels).

Logits: on ARM, the SIMD kernels' must equal the generic kernel's bit for bit (through the whole model). Against
x86 they must be within 1e-5 of the range for the default model; the random tiny models get 1e-2. Why: every
tensor up to the first ROPE is bit-identical on both (our kernels included), but ggml's ROPE (and later float
ops) differ in the last bits between the x86 and ARM builds, and the per-token int8 activation quantization of
I2_S/TL1 (docs/formats.md §3) turns a last-bit difference that lands on a rounding boundary into one int8 step:
about 1e-3 of the logit range. Random weights hit such a boundary far more often (measured: 1e-3..5e-3 on some
models and prompts, 1e-7 on the others); a wrong kernel result is orders of magnitude larger. docs/reliability.md
("ARM end to end") has the numbers and how to trace a difference to its op (LLAMA_LOGITS_TRACE=1).
"""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pytest

from bitnet_gguf import paths
from bitnet_gguf.formats.architectures import BY_GGUF
from bitnet_gguf.setup import build
from bitnet_gguf.synthetic.gguf_model import write_synthetic_gguf

from .conftest import REPO_ROOT, TINYSHAKESPEARE

QEMU_SYSROOT = "/usr/aarch64-linux-gnu"
LOGITS_SRC = REPO_ROOT / "tests" / "tools" / "llama_logits.c"
# qemu CPU name -> (cross build level, the I2_S kernel table it must have: the first entry is the one that runs)
CPUS: dict[str, tuple[str, list[str]]] = {
    "max": ("dotprod", ["dotprod", "neon", "generic"]),
    "cortex-a53": ("neon", ["neon", "generic"]),
}
N_GEN = 16  # qemu is slow: a short continuation, tiny models
TOLERANCE = 1e-5  # of the x86 logits' range: the default model
RANDOM_MODEL_TOLERANCE = 1e-2  # a few int8 rounding steps (see the module docstring)
PROMPT = TINYSHAKESPEARE.read_text()[:100]  # "First Citizen: ...": 35 tokens of the default model's tokenizer
TINY = REPO_ROOT / "models" / "tiny-shakespeare"


def require_cross_tools() -> None:
    """Skip without the cross compiler or qemu; in CI (CI or BITNET_GGUF_NO_SKIP set) that is a failure."""
    missing = [t for t in ("aarch64-linux-gnu-gcc", "aarch64-linux-gnu-g++", "qemu-aarch64") if shutil.which(t) is None]
    if not Path(QEMU_SYSROOT).is_dir():
        missing.append(QEMU_SYSROOT)
    if missing:
        msg = f"{', '.join(missing)} missing (apt: gcc-aarch64-linux-gnu g++-aarch64-linux-gnu qemu-user)"
        if os.environ.get("CI"):
            pytest.fail(msg)
        pytest.skip(msg)


@pytest.fixture(scope="module")
def arm_build(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """build-aarch64/{neon,dotprod}, brought up to date once per session (seconds when nothing changed, so the ARM
    run always has the checkout's kernels)."""
    require_cross_tools()
    bdir = paths.cross_build_dir("aarch64")
    cmd = [sys.executable, str(REPO_ROOT / "setup_env.py"), "--target", "aarch64", "--build-dir", str(bdir),
           "-ld", str(tmp_path_factory.mktemp("arm-logs")), "-j", str(os.cpu_count() or 2)]
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=3600)
    assert proc.returncode == 0, proc.stderr[-3000:]
    return bdir


def qemu(cpu: str) -> list[str]:
    return ["qemu-aarch64", "-L", QEMU_SYSROOT, "-cpu", cpu]


@dataclass(frozen=True)
class Runner:
    """How to run the programs of one build on one CPU (x86 natively, aarch64 under qemu)."""

    prefix: list[str]
    completion: Path
    logits: Path

    def run(self, program: Path, *args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[bytes]:
        return subprocess.run([*self.prefix, str(program), *args], capture_output=True, timeout=600,
                              env={**os.environ, **(env or {})})


def compile_logits_tool(cc: str, bin_dir: Path, out: Path) -> Path:
    src = paths.source_dir()
    cmd = [cc, "-std=c11", "-O2", "-Wall", "-Wextra", "-Werror", f"-I{src / 'include'}", f"-I{src / 'ggml' / 'include'}",
           str(LOGITS_SRC), "-o", str(out), f"-L{bin_dir}", "-lllama", "-lggml-base", f"-Wl,-rpath,{bin_dir}"]
    proc = subprocess.run(cmd, capture_output=True, text=True)
    assert proc.returncode == 0, f"{' '.join(cmd)}\n{proc.stderr}"
    return out


@pytest.fixture(scope="module")
def runners(arm_build: Path, bin_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> dict[str, Runner]:
    """'x86' (the reference: the build the other tests use) and one runner per qemu CPU."""
    d = tmp_path_factory.mktemp("arm-tools")
    out = {"x86": Runner([], bin_dir / "llama-completion", compile_logits_tool("gcc", bin_dir, d / "llama_logits_x86"))}
    for cpu, (level, _) in CPUS.items():
        arm_bin = arm_build / level / "bin"
        exe = compile_logits_tool("aarch64-linux-gnu-gcc", arm_bin, d / f"llama_logits_{level}")
        out[cpu] = Runner(qemu(cpu), arm_bin / "llama-completion", exe)
    return out


# the default model (converted from its checkpoint, as a fresh clone has no .gguf) and TL1 (the ARM lookup-table
# type), then a random tiny model of every architecture (the llama one also as TL1: its own lm_head makes varied
# text), with the default model's 2048-token tokenizer (with llama-bpe's 128k, one qemu run takes ~40 s, not ~2 s)
MODELS = ["tiny-shakespeare-i2_s", "tiny-shakespeare-tl1", *(f"{a}-i2_s" for a in BY_GGUF), "llama-tl1"]


@pytest.fixture(scope="module")
def model_files(tiny_shakespeare_i2s: Path, models_dir: Path) -> Callable[[str], Path]:
    made: dict[str, Path] = {"tiny-shakespeare-i2_s": tiny_shakespeare_i2s}

    def get(name: str) -> Path:
        if name not in made:
            if name == "tiny-shakespeare-tl1":
                from bitnet_gguf.convert import convert

                made[name] = convert(TINY, "tl1", models_dir / "arm-ts-tl1.gguf", progress=False).path
            else:
                arch, _, qt = name.rpartition("-")
                # F32 embedding/output: ggml's batched F16 mat-mul rounds the activations to F16 on x86 (AVX
                # tinyBLAS) but not on ARM without FP16 arithmetic, 5e-5 of the range apart on every prompt row
                made[name] = write_synthetic_gguf(models_dir / f"arm-{name}.gguf", arch, "tiny", qt,
                                                  tiny_shakespeare_i2s, seed=3, embd_type="f32")
        return made[name]

    return get


@dataclass(frozen=True)
class Result:
    text: bytes  # llama-completion's stdout: the prompt, then the greedy text
    prompt: list[int]
    tokens: list[int]
    logits: np.ndarray  # [n_prompt + N_GEN, n_vocab]


def run_logits(runner: Runner, model: Path, out: Path, env: dict[str, str] | None = None) -> tuple[list[int], list[int], np.ndarray]:
    """The prompt's token ids, the greedy ones, and the logits rows (llama_logits)."""
    proc = runner.run(runner.logits, str(model), PROMPT, str(N_GEN), str(out), env=env)
    assert proc.returncode == 0, proc.stderr.decode(errors="replace")[-3000:]
    lines = dict(ln.split(":", 1) for ln in proc.stdout.decode().splitlines())
    prompt, tokens = ([int(t) for t in lines[k].split()] for k in ("prompt", "tokens"))
    return prompt, tokens, np.fromfile(out, dtype=np.float32).reshape(len(prompt) + N_GEN, -1)


def run_model(runner: Runner, model: Path, out: Path) -> Result:
    proc = runner.run(runner.completion, "-m", str(model), "-p", PROMPT, "-n", str(N_GEN), "--temp", "0", "-no-cnv",
                      "-t", "1", "-c", "256", "--no-warmup")
    assert proc.returncode == 0, proc.stderr.decode(errors="replace")[-3000:]
    return Result(proc.stdout, *run_logits(runner, model, out))


@pytest.fixture(scope="module")
def reference(runners: dict[str, Runner], model_files: Callable[[str], Path],
              tmp_path_factory: pytest.TempPathFactory) -> Callable[[str], Result]:
    """The x86 build's result for a model (computed once)."""
    d = tmp_path_factory.mktemp("x86-logits")
    done: dict[str, Result] = {}

    def get(name: str) -> Result:
        if name not in done:
            done[name] = run_model(runners["x86"], model_files(name), d / f"{name}.f32")
        return done[name]

    return get


@pytest.mark.parametrize("cpu", list(CPUS))
def test_kernel_of_each_cpu(runners: dict[str, Runner], model_files: Callable[[str], Path], cpu: str) -> None:
    """Each build's I2_S kernel table, and the kernel it runs (entry 0): an unknown BITNET_I2S_KERNEL makes
    i2s-dispatch.c name them. The TL1 kernels follow the I2_S choice by name (lut-gemm.h)."""
    r = runners[cpu]
    proc = r.run(r.completion, "-m", str(model_files("tiny-shakespeare-i2_s")), "-p", "A", "-n", "1", "-no-cnv",
                 "-t", "1", "--no-warmup", env={"BITNET_I2S_KERNEL": "which"})
    assert proc.returncode == 0, proc.stderr.decode(errors="replace")[-3000:]
    table = CPUS[cpu][1]
    want = f"bitnet: BITNET_I2S_KERNEL=which is not a kernel of this build (it has: {' '.join(table)}); using {table[0]}"
    assert want in proc.stderr.decode(errors="replace")


def test_cortex_a53_has_no_dotprod(runners: dict[str, Runner], model_files: Callable[[str], Path]) -> None:
    """The dotprod build dies of SIGILL on the Cortex-A53: the two qemu CPUs really differ, so the neon build's
    run is a run without dotprod."""
    r = runners["max"]
    proc = subprocess.run([*qemu("cortex-a53"), str(r.completion), "-m", str(model_files("tiny-shakespeare-i2_s")),
                           "-p", "A", "-n", "1", "-no-cnv", "-t", "1", "--no-warmup"], capture_output=True, timeout=600)
    assert proc.returncode == -signal.SIGILL, (proc.returncode, proc.stderr[-2000:])


@pytest.mark.parametrize("cpu", list(CPUS))
@pytest.mark.parametrize("model", MODELS)
def test_greedy_tokens_and_logits_equal_x86(runners: dict[str, Runner], model_files: Callable[[str], Path],
                                           reference: Callable[[str], Result], tmp_path: Path,
                                           record_property: Callable[[str, object], None], model: str, cpu: str) -> None:
    ref = reference(model)
    got = run_model(runners[cpu], model_files(model), tmp_path / "arm.f32")
    assert got.prompt == ref.prompt
    assert got.tokens == ref.tokens, f"greedy tokens differ from x86: {got.tokens} vs {ref.tokens}"
    assert got.text == ref.text, f"llama-completion text differs from x86:\n{got.text!r}\n{ref.text!r}"
    # the generic kernel on the same CPU: ours are exact, so every logit is the same float
    _, _, generic = run_logits(runners[cpu], model_files(model), tmp_path / "generic.f32", {"BITNET_I2S_KERNEL": "generic"})
    assert np.array_equal(got.logits, generic), f"{CPUS[cpu][1][0]} kernel differs from the generic one on ARM"
    span = float(ref.logits.max() - ref.logits.min())
    diff = float(np.abs(got.logits - ref.logits).max())
    record_property("max_logit_diff_over_range", diff / span)
    print(f"\n{model} on {cpu} ({CPUS[cpu][0]} build): {len(got.tokens)} tokens identical, "
          f"max |logit diff| {diff:.3g} = {diff / span:.3g} of the range {span:.3g}")
    tolerance = TOLERANCE if model.startswith("tiny-shakespeare") else RANDOM_MODEL_TOLERANCE
    assert diff <= tolerance * span


def test_cross_build_is_configured_per_level(arm_build: Path) -> None:
    """Each level's folder was configured with its own -march and the cross compilers (its own config stamp)."""
    for level, march in build.ARM_LEVELS.items():
        stamp = (arm_build / level / build.CONFIG_STAMP).read_text()
        assert f"-DGGML_CPU_ARM_ARCH={march}" in stamp and "aarch64-linux-gnu-gcc" in stamp
        assert (arm_build / level / "bin" / "llama-completion").is_file()
