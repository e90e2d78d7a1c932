"""Bit-exactness of the SIMD I2_S kernels against the generic reference (tests/kernels/test_i2s_gemm.c).

Builds the standalone C test (no ggml needed) natively and, when the cross tools are installed, for
AArch64 under qemu-user: with dotprod on qemu's default CPU, and plain NEON on a Cortex-A53 (no dotprod).
Each run must end with "N passed, 0 failed" and must have exercised the kernels its flags enable.
"""

from __future__ import annotations

import os
import platform
import re
import shutil
import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
KERNELS = ROOT / "kernels"
CPU = KERNELS / "ggml-cpu"
TEST_SRC = ROOT / "tests" / "kernels" / "test_i2s_gemm.c"
BENCH_SRC = ROOT / "tests" / "kernels" / "bench_i2s_gemm.c"
QEMU_SYSROOT = "/usr/aarch64-linux-gnu"
IS_X86 = platform.machine().lower() in ("x86_64", "amd64")
IS_ARM64 = platform.machine().lower() in ("aarch64", "arm64")


def sources(arch: str) -> list[str]:
    """The I2_S kernel sources (the TL formats' tests build their own: test_tl1_kernels.py, test_tl2_kernels.py)."""
    files = [*sorted((CPU / "generic").glob("i2s-*.c")), CPU / "i2s-dispatch.c", *sorted((CPU / "arch" / arch).glob("i2s-*.c"))]
    return [str(f) for f in files]


def build(cc: str, flags: list[str], arch: str, main: Path, out: Path) -> Path:
    cmd = [cc, "-std=c11", "-Wall", "-Wextra", "-Werror", *flags, f"-I{KERNELS}", f"-I{CPU}"]
    cmd += [str(main), *sources(arch), "-o", str(out), "-lm"]
    res = subprocess.run(cmd, capture_output=True, text=True)
    assert res.returncode == 0, f"{' '.join(cmd)}\n{res.stderr}"
    return out


def defined_macros(cc: str, flags: list[str]) -> set[str]:
    res = subprocess.run([cc, *flags, "-dM", "-E", "-x", "c", "/dev/null"], capture_output=True, text=True, check=True)
    return {line.split()[1] for line in res.stdout.splitlines() if line.startswith("#define ")}


def expected_kernels(cc: str, flags: list[str]) -> set[str]:
    """The kernels i2s-kernels.h enables for these flags (same conditions, read from the compiler)."""
    m = defined_macros(cc, flags)
    want: set[str] = set()
    if "__x86_64__" in m:
        if "__AVX2__" in m:
            want.add("avx2")
            if "__AVXVNNI__" in m or {"__AVX512VNNI__", "__AVX512VL__"} <= m:
                want.add("avxvnni")
        if {"__AVX512F__", "__AVX512BW__", "__AVX512VNNI__"} <= m:
            want.add("avx512vnni")
    if "__aarch64__" in m and "__ARM_NEON" in m:
        want.add("neon")
        if "__ARM_FEATURE_DOTPROD" in m:
            want.add("dotprod")
    return want


SANITIZE = ["-O1", "-g", "-fsanitize=address,undefined", "-fno-sanitize-recover=all"]
# LeakSanitizer cannot run under qemu-user (it needs ptrace); leaks are checked by the native sanitizer runs
QEMU_ASAN_ENV = {"ASAN_OPTIONS": "detect_leaks=0"}


def run_and_check(cmd: list[str], want: set[str], timeout: float, env: dict[str, str] | None = None) -> str:
    res = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout, env={**os.environ, **(env or {})})
    out = res.stdout
    lines = out.strip().splitlines()
    assert lines, f"no output from {cmd}: {res.stderr}"
    summary = re.fullmatch(r"(\d+) passed, (\d+) failed", lines[-1])
    assert summary, f"last line is not a summary: {lines[-1]!r}\n{res.stderr}"
    assert int(summary.group(2)) == 0 and res.returncode == 0, f"{out}\n{res.stderr}"
    assert int(summary.group(1)) > 0
    tested = next((ln for ln in lines if ln.startswith("tested:")), "tested:")
    assert set(tested.split()[1:]) == want, f"expected kernels {sorted(want)} to be exercised, got {tested!r}"
    return out


def require(*tools: str) -> None:
    missing = [t for t in tools if shutil.which(t) is None]
    if missing:
        pytest.skip(f"{', '.join(missing)} not installed (apt: gcc-aarch64-linux-gnu g++-aarch64-linux-gnu qemu-user)")


@pytest.fixture(scope="module")
def bindir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("i2s_kernels")


NATIVE_ARCH = "x86" if IS_X86 else "arm"


@pytest.mark.skipif(not (IS_X86 or IS_ARM64), reason="no SIMD kernels for this host architecture")
def test_native_kernels_bit_exact(bindir: Path) -> None:
    require("gcc")
    flags = ["-O2", "-march=native"]
    exe = build("gcc", flags, NATIVE_ARCH, TEST_SRC, bindir / "test_native")
    run_and_check([str(exe)], expected_kernels("gcc", flags), timeout=60)


@pytest.mark.skipif(not IS_X86, reason="x86 ISA levels")
@pytest.mark.parametrize("flags", [["-O2", "-march=x86-64"], ["-O2", "-mavx2", "-mfma"]], ids=["baseline", "avx2-only"])
def test_x86_lower_isa_levels(bindir: Path, flags: list[str]) -> None:
    # the arch file must compile (to nothing, or to AVX2 only) when the AVX-512 macros are absent
    require("gcc")
    want = expected_kernels("gcc", flags)
    if "avx2" in want and "avx2" not in expected_kernels("gcc", ["-march=native"]):
        pytest.skip("this CPU cannot run AVX2 code")
    exe = build("gcc", flags, "x86", TEST_SRC, bindir / f"test_{flags[-1].strip('-')}")
    run_and_check([str(exe), "--quick"], want, timeout=60)


@pytest.mark.skipif(not IS_X86, reason="x86 ISA levels")
def test_avxvnni_vex_build(bindir: Path) -> None:
    """AVX-VNNI without AVX-512 (Intel client CPUs since Alder Lake) gets the avxvnni kernel in VEX encoding.

    Not every CPU this runs on has AVX-VNNI (Zen 4 has AVX512-VNNI only) and qemu 7.2 does not run VEX vpdpbusd,
    so this builds and inspects the code; the same kernel source runs bit-exact in the native test (EVEX-encoded on
    AVX-512 machines), and test_tl2_kernels.py runs a VEX build where the CPU has avx_vnni.
    """
    require("gcc", "objdump")
    flags = ["-O2", "-mavx2", "-mfma", "-mavxvnni"]
    assert "avxvnni" in expected_kernels("gcc", flags)
    exe = build("gcc", flags, "x86", TEST_SRC, bindir / "test_avxvnni")
    asm = subprocess.run(["objdump", "-d", str(exe)], capture_output=True, text=True, check=True).stdout
    assert "{vex} vpdpbusd" in asm
    assert "zmm" not in asm  # nothing of AVX-512 may leak into this build


@pytest.mark.skipif(not (IS_X86 or IS_ARM64), reason="no SIMD kernels for this host architecture")
def test_native_sanitizers(bindir: Path) -> None:
    # out-of-bounds reads of weights/activations and undefined shifts show up here
    require("gcc")
    flags = [*SANITIZE, "-march=native"]
    try:
        exe = build("gcc", flags, NATIVE_ARCH, TEST_SRC, bindir / "test_asan")
    except AssertionError as e:
        if "sanitize" in str(e) or "asan" in str(e):
            pytest.skip(f"sanitizer runtime not available: {e}")
        raise
    run_and_check([str(exe), "--quick"], expected_kernels("gcc", ["-O2", "-march=native"]), timeout=60)


@pytest.mark.skipif(not (IS_X86 or IS_ARM64), reason="no SIMD kernels for this host architecture")
def test_bench_builds(bindir: Path) -> None:
    require("gcc")
    build("gcc", ["-O2", "-march=native"], NATIVE_ARCH, BENCH_SRC, bindir / "bench")


AARCH64_CASES = [
    # (compiler flags, qemu cpu, test args): qemu's default CPU ("max") has dotprod; a Cortex-A53 does not.
    # --quick: every K, the small shapes and the saturation cases; emulation makes the full set ~10x slower
    (["-O2", "-march=armv8.2-a+dotprod"], None, ["--quick"]),
    (["-O2", "-march=armv8-a"], "cortex-a53", ["--quick"]),
]


@pytest.mark.parametrize("sanitize", [False, True], ids=["plain", "asan-ubsan"])
@pytest.mark.parametrize(("flags", "qemu_cpu", "args"), AARCH64_CASES, ids=["dotprod", "neon-cortex-a53"])
def test_aarch64_kernels_under_qemu(bindir: Path, flags: list[str], qemu_cpu: str | None, args: list[str],
                                    sanitize: bool) -> None:
    require("aarch64-linux-gnu-gcc", "qemu-aarch64")
    if not Path(QEMU_SYSROOT).is_dir():
        pytest.skip(f"{QEMU_SYSROOT} missing (apt: gcc-aarch64-linux-gnu)")
    cc = "aarch64-linux-gnu-gcc"
    want = expected_kernels(cc, flags)
    assert "neon" in want and ("dotprod" in want) == ("dotprod" in flags[-1])
    exe = build(cc, [*flags, *(SANITIZE if sanitize else [])], "arm", TEST_SRC,
                bindir / f"test_aarch64_{qemu_cpu or 'max'}{'_asan' if sanitize else ''}")
    cpu = ["-cpu", qemu_cpu] if qemu_cpu else []
    run_and_check(["qemu-aarch64", *cpu, "-L", QEMU_SYSROOT, str(exe), *args], want, timeout=300,
                  env=QEMU_ASAN_ENV if sanitize else None)
