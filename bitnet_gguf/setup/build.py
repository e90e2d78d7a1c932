"""Configure and build the patched llama.cpp with CMake (only the targets this project needs)."""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path
from typing import IO

from ..errors import BitnetError
from ..fileio import read_json_record, write_text_atomic
from ..paths import CHECKOUT, Pin, kernels_dir
from .steps import StepRunner

# ggml-rpc-server: the worker of llama.cpp's RPC backend (--rpc), which spreads a model's layers over hosts
RPC_SERVER = "ggml-rpc-server"
TARGETS = (
    "llama-cli", "llama-completion", "llama-server", "llama-bench", "llama-perplexity",
    "llama-quantize", "test-quantize-fns", "test-gguf", RPC_SERVER,
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


def _source_args(pin: Pin, generated_dir: Path) -> list[str]:
    """What every build passes about our sources and the pin."""
    return [
        f"-DGGML_BITNET_KERNELS_DIR={kernels_dir()}",
        f"-DGGML_BITNET_GENERATED_DIR={generated_dir}",
        # the unpacked source has no git history: give the real version
        f"-DLLAMA_BUILD_NUMBER={pin.llama_cpp_build}",
        f"-DLLAMA_BUILD_COMMIT={pin.llama_cpp_commit}",
        # offline: never download the web UI
        "-DLLAMA_BUILD_UI=OFF",
        "-DLLAMA_USE_PREBUILT_UI=OFF",
    ]


def cmake_args(pin: Pin, cc: str, cxx: str, portable: bool, source_dir: Path, generated_dir: Path) -> list[str]:
    args = [
        "-S", str(source_dir),
        "-DCMAKE_BUILD_TYPE=Release",
        f"-DCMAKE_C_COMPILER={cc}",
        f"-DCMAKE_CXX_COMPILER={cxx}",
        *_source_args(pin, generated_dir),
        "-DLLAMA_BUILD_TESTS=ON",
        "-DBUILD_SHARED_LIBS=ON",
        # the RPC backend in libggml (the client side of --rpc) and the ggml-rpc-server tool (docs/rpc.md)
        "-DGGML_RPC=ON",
    ]
    if portable:
        # every x86/ARM CPU variant, chosen at run time (our kernels are compiled per variant)
        args += ["-DGGML_NATIVE=OFF", "-DGGML_BACKEND_DL=ON", "-DGGML_CPU_ALL_VARIANTS=ON"]
    else:
        args += ["-DGGML_NATIVE=ON"]
    return args


# --target aarch64: a cross build per ARM ISA level, each in <build>/<level>. ggml can build all ARM variants and
# choose at run time (GGML_CPU_ALL_VARIANTS), but at our pin that list includes armv9.2-a+sme variants that
# gcc 12 (Debian 12's cross compiler) rejects; and our kernels choose by compile-time macros. Two levels cover
# our ARM kernels: NEON (any ARMv8-A, e.g. Cortex-A53) and dotprod (ARMv8.2-A+dotprod). Only ggml-cpu gets the
# -march flag, so with ccache the second build recompiles ggml-cpu alone.
CROSS_TARGETS = {"aarch64": ("aarch64-linux-gnu-gcc", "aarch64-linux-gnu-g++", "/usr/aarch64-linux-gnu")}
ARM_LEVELS = {"neon": "armv8-a", "dotprod": "armv8.2-a+dotprod"}  # subfolder (= its fastest kernel) -> -march
CROSS_BUILD_TARGETS = ("llama-completion", "llama")  # what the ARM end-to-end test runs (tests/test_arm_end_to_end.py)
CROSS_APT = "gcc-aarch64-linux-gnu g++-aarch64-linux-gnu"


def find_cross_compilers(target: str) -> tuple[str, str, str]:
    """The cross C and C++ compilers and their sysroot for --target."""
    cc, cxx, sysroot = CROSS_TARGETS[target]
    missing = [t for t in (cc, cxx) if shutil.which(t) is None]
    if missing or not Path(sysroot).is_dir():
        raise BitnetError(f"--target {target} needs {', '.join(missing) or sysroot}: apt-get install {CROSS_APT}")
    if shutil.which("cmake") is None:
        raise BitnetError("cmake not found: pip install cmake (or apt-get install cmake)")
    return cc, cxx, sysroot


def cross_cmake_args(pin: Pin, target: str, march: str, source_dir: Path, generated_dir: Path) -> list[str]:
    """CMake arguments of one cross build (no toolchain file: the -D flags below are the whole toolchain)."""
    cc, cxx, sysroot = CROSS_TARGETS[target]
    return [
        "-S", str(source_dir),
        "-DCMAKE_BUILD_TYPE=Release",
        "-DCMAKE_SYSTEM_NAME=Linux",
        f"-DCMAKE_SYSTEM_PROCESSOR={target}",
        f"-DCMAKE_C_COMPILER={cc}",
        f"-DCMAKE_CXX_COMPILER={cxx}",
        *_source_args(pin, generated_dir),
        "-DBUILD_SHARED_LIBS=ON",
        f"-DCMAKE_FIND_ROOT_PATH={sysroot}",
        # programs from the host, libraries and headers from the target's sysroot only (never the host's x86 ones)
        "-DCMAKE_FIND_ROOT_PATH_MODE_PROGRAM=NEVER",
        "-DCMAKE_FIND_ROOT_PATH_MODE_LIBRARY=ONLY",
        "-DCMAKE_FIND_ROOT_PATH_MODE_INCLUDE=ONLY",
        "-DCMAKE_FIND_ROOT_PATH_MODE_PACKAGE=ONLY",
        "-DLLAMA_BUILD_TESTS=OFF",
        "-DLLAMA_OPENSSL=OFF",  # the sysroot has no OpenSSL, and nothing we run downloads
        "-DGGML_NATIVE=OFF",
        f"-DGGML_CPU_ARM_ARCH={march}",  # applied to ggml-cpu (and our kernels) only
    ]


def configure(runner: StepRunner, log: IO[str], build_dir: Path, args: list[str]) -> bool:
    """Run cmake's configure step unless the build folder was configured with the same arguments."""
    stamp = build_dir / CONFIG_STAMP
    if (build_dir / "CMakeCache.txt").exists() and read_json_record(stamp) == args:
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
