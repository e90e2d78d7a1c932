"""Configure and build the patched llama.cpp with CMake (only the targets this project needs)."""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path
from typing import IO

from ..errors import BitnetError
from ..fileio import write_text_atomic
from ..paths import CHECKOUT, Pin, kernels_dir
from .steps import StepRunner

TARGETS = (
    "llama-cli", "llama-completion", "llama-server", "llama-bench", "llama-perplexity",
    "llama-quantize", "test-quantize-fns",
)
CONFIG_STAMP = "bitnet-gguf-config.json"
COMPILERS = {"gcc": ("gcc", "g++"), "clang": ("clang", "clang++")}


def find_compilers(compiler: str | None) -> tuple[str, str]:
    """The C and C++ compilers to use: --compiler, else $CC/$CXX, else gcc/g++."""
    if compiler is not None:
        cc, cxx = COMPILERS[compiler]
    else:
        cc, cxx = os.environ.get("CC", "gcc"), os.environ.get("CXX", "g++")
    for tool, kind in ((cc, "C"), (cxx, "C++")):
        if shutil.which(tool) is None:
            raise BitnetError(f"{kind} compiler '{tool}' not found: install gcc/g++ (or clang) or set CC/CXX")
    if shutil.which("cmake") is None:
        raise BitnetError("cmake not found: pip install cmake (or apt-get install cmake)")
    return cc, cxx


def cmake_args(pin: Pin, cc: str, cxx: str, portable: bool, source_dir: Path, generated_dir: Path) -> list[str]:
    args = [
        "-S", str(source_dir),
        "-DCMAKE_BUILD_TYPE=Release",
        f"-DCMAKE_C_COMPILER={cc}",
        f"-DCMAKE_CXX_COMPILER={cxx}",
        f"-DGGML_BITNET_KERNELS_DIR={kernels_dir()}",
        f"-DGGML_BITNET_GENERATED_DIR={generated_dir}",
        # the unpacked source has no git history: give the real version
        f"-DLLAMA_BUILD_NUMBER={pin.llama_cpp_build}",
        f"-DLLAMA_BUILD_COMMIT={pin.llama_cpp_commit}",
        # offline: never download the web UI
        "-DLLAMA_BUILD_UI=OFF",
        "-DLLAMA_USE_PREBUILT_UI=OFF",
        "-DLLAMA_BUILD_TESTS=ON",
        "-DBUILD_SHARED_LIBS=ON",
    ]
    if portable:
        # every x86/ARM CPU variant, chosen at run time (our kernels are compiled per variant)
        args += ["-DGGML_NATIVE=OFF", "-DGGML_BACKEND_DL=ON", "-DGGML_CPU_ALL_VARIANTS=ON"]
    else:
        args += ["-DGGML_NATIVE=ON"]
    return args


def configure(runner: StepRunner, log: IO[str], build_dir: Path, args: list[str]) -> bool:
    """Run cmake's configure step unless the build folder was configured with the same arguments."""
    stamp = build_dir / CONFIG_STAMP
    if (build_dir / "CMakeCache.txt").exists() and stamp.exists() and json.loads(stamp.read_text()) == args:
        print("already configured with these arguments", file=log)
        return False
    build_dir.mkdir(parents=True, exist_ok=True)
    stamp.unlink(missing_ok=True)
    runner.run(["cmake", "-B", str(build_dir), *args], log, "cmake configure", env=ccache_env())
    write_text_atomic(stamp, json.dumps(args))
    return True


def ccache_env() -> dict[str, str]:
    """Paths relative to the checkout in ccache's hashes, so a fresh clone elsewhere still hits the cache."""
    env = dict(os.environ)
    if CHECKOUT is not None:
        env.setdefault("CCACHE_BASEDIR", str(CHECKOUT))
    env.setdefault("CCACHE_NOHASHDIR", "1")
    return env


def build(runner: StepRunner, log: IO[str], build_dir: Path, jobs: int, targets: tuple[str, ...] = TARGETS) -> None:
    cmd = ["cmake", "--build", str(build_dir), "--config", "Release", "-j", str(jobs), "--target", *targets]
    runner.run(cmd, log, "build", env=ccache_env(), show_percent=True)
