"""Which ternary kernels a build compiled, which one it runs on this CPU, and why.

The answer comes from the build itself: its libggml-cpu exports the kernel tables (fastest first, generic last)
and the I2_S choice (kernels/ggml-cpu/i2s-dispatch.c); the TL tables follow that choice by name (lut-gemm.h).
Loading the library runs no kernel, so this is safe on any CPU the build was made for.
"""

from __future__ import annotations

import ctypes as C
import os
import platform
from dataclasses import dataclass, field
from pathlib import Path

from ..errors import BitnetError
from ..formats.constants import QK_I2_S
from ..runtime.locate import find_library

# The CPU feature (/proc/cpuinfo flag) each kernel family needs, by the names the kernel tables use
KERNEL_FEATURES: dict[str, str] = {"avx512vnni": "avx512_vnni", "avxvnni": "avx_vnni", "avx2": "avx2",
                                   "dotprod": "asimddp", "neon": "asimd"}
KERNEL_ENV = "BITNET_I2S_KERNEL"  # read by i2s-dispatch.c; the TL kernels follow it


def cpu_flags() -> set[str]:
    """The CPU's feature flags (x86 "flags", ARM "Features"); empty where /proc/cpuinfo is unreadable."""
    try:
        text = Path("/proc/cpuinfo").read_text()
    except OSError:
        return set()
    for line in text.splitlines():
        key, _, value = line.partition(":")
        if key.strip() in ("flags", "Features"):
            return set(value.split())
    return set()


def cpu_kernel_families(flags: set[str]) -> list[str]:
    """The kernel families this CPU could run, fastest first ("neon" is implied on aarch64)."""
    have = [k for k, flag in KERNEL_FEATURES.items() if flag in flags]
    if platform.machine() in ("aarch64", "arm64") and "neon" not in have:
        have.append("neon")
    return have


# words per table entry: struct bitnet_i2s_kernel (i2s-gemm.h: name, k_align and five function pointers) and
# struct bitnet_lut_kernel (lut-gemm.h: name and three function pointers)
_ENTRY_WORDS = {"bitnet_i2s_kernels": 7, "bitnet_tl1_kernels": 4, "bitnet_tl2_kernels": 4}


def _names(lib: C.CDLL, table: str) -> list[str]:
    """Entry names of an exported kernel table (each entry begins with its name)."""
    n = C.c_int.in_dll(lib, table.replace("_kernels", "_n_kernels")).value
    base = C.addressof(C.c_char.in_dll(lib, table))
    stride = _ENTRY_WORDS[table] * C.sizeof(C.c_void_p)
    return [(C.c_char_p.from_address(base + i * stride).value or b"?").decode() for i in range(n)]


@dataclass
class KernelChoice:
    i2s_kernels: list[str]  # compiled, fastest first, generic last
    i2s_chosen: str  # the process-wide choice (BITNET_I2S_KERNEL or the first entry)
    tl1_kernels: list[str] = field(default_factory=list)
    tl2_kernels: list[str] = field(default_factory=list)
    env: str | None = None

    def tl(self, kernels: list[str]) -> str:
        """The TL entry the dispatch takes: the one named like the I2_S choice, else the generic one (last)."""
        return self.i2s_chosen if self.i2s_chosen in kernels[:-1] else kernels[-1]

    def i2s_for_k(self, k: int) -> str:
        """The I2_S kernel a mat-mul with K columns runs: the SIMD kernels need K % 128 == 0 (docs/formats.md §3)."""
        return self.i2s_chosen if self.i2s_chosen == "generic" or k % QK_I2_S == 0 else "generic"

    def why(self, flags: set[str]) -> str:
        if self.env:
            if self.env in self.i2s_kernels:
                return f"{KERNEL_ENV}={self.env} asks for it"
            return f"{KERNEL_ENV}={self.env} is not a kernel of this build, so the fastest compiled one is used"
        feature = KERNEL_FEATURES.get(self.i2s_chosen)
        if feature is None:
            return "no SIMD kernel was compiled into this build (the portable reference)"
        has = "has" if feature in flags or (self.i2s_chosen == "neon" and platform.machine() in ("aarch64", "arm64")) \
            else "does not report"
        return f"the fastest kernel this build compiled; this CPU {has} {feature}"


def kernel_choice(build: Path | None = None) -> KernelChoice:
    """Ask the build's libggml-cpu (loaded into this process) what it compiled and what it picks."""
    lib_path = find_library("ggml-cpu", build)
    try:
        C.CDLL(str(find_library("ggml-base", build)), mode=C.RTLD_GLOBAL)
        lib = C.CDLL(str(lib_path), mode=C.RTLD_GLOBAL)
        lib.bitnet_i2s_kernel_preferred.restype = C.POINTER(C.c_char_p)  # the entry, whose first field is its name
        chosen = lib.bitnet_i2s_kernel_preferred()[0].decode()
        i2s = _names(lib, "bitnet_i2s_kernels")
        tl1 = _names(lib, "bitnet_tl1_kernels")
        tl2 = _names(lib, "bitnet_tl2_kernels")
    except (OSError, ValueError, AttributeError) as e:
        raise BitnetError(f"{lib_path}: cannot read its kernel tables ({e}); rebuild with python setup_env.py") from None
    return KernelChoice(i2s, chosen, tl1, tl2, os.environ.get(KERNEL_ENV) or None)
