"""Bit-exactness of the TL2 kernels (tests/kernels/test_tl2_gemm.c) against a scalar int32 dot product.

The standalone C test checks every TL2 kernel its flags compile in (generic, avx2, avxvnni, avx512vnni) on ragged
shapes, all-+-127 worst cases and indices 14/15. It is built natively and with AVX-512 off (-mavx2 -mfma -mf16c, plus
-mavxvnni when gcc takes it and the CPU runs AVX-VNNI; otherwise the VEX build is only compiled and inspected).
The AVX-512 kernels need the generated header, emitted here by kernel_gen into a temporary folder.
"""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

from bitnet_gguf.setup import kernel_gen

from .test_kernels import CPU, IS_X86, KERNELS, ROOT, defined_macros, require, run_and_check

TEST_SRC = ROOT / "tests" / "kernels" / "test_tl2_gemm.c"
X86 = CPU / "arch" / "x86"
SOURCES = [
    KERNELS / "tl2-quants.c",
    KERNELS / "i2s-quants.c",
    CPU / "generic" / "tl2-gemm.c",
    CPU / "tl2-dispatch.c",
    X86 / "tl2-gemm-x86.c",
    X86 / "tl2-gemm-avx2.c",
]
NO_AVX512 = ["-O2", "-mavx2", "-mfma", "-mf16c"]
# two of the test's K get the AVX-512 gemv copies with constant bounds, the others take its generic loop
GEN_K = (2560, 8640)

pytestmark = pytest.mark.skipif(not IS_X86, reason="x86 TL2 kernels")


def cpu_flags() -> set[str]:
    """The feature flags of this CPU as Linux names them (avx2, avx_vnni, avx512vnni, ...)."""
    try:
        text = Path("/proc/cpuinfo").read_text()
    except OSError:
        return set()
    return next((set(ln.split(":", 1)[1].split()) for ln in text.splitlines() if ln.startswith("flags")), set())


def gcc_accepts(flag: str) -> bool:
    return subprocess.run(["gcc", flag, "-E", "-x", "c", "/dev/null"], capture_output=True).returncode == 0


def expected_tl2(flags: list[str]) -> set[str]:
    """The TL2 kernels these flags compile in (the guards of tl2-gemm.h and tl2-gemm-avx2.c, read from gcc)."""
    m = defined_macros("gcc", flags)
    want = {"generic"}
    if "__x86_64__" in m and "__AVX2__" in m:
        want.add("avx2")
        if "__AVXVNNI__" in m or {"__AVX512VNNI__", "__AVX512VL__"} <= m:
            want.add("avxvnni")
    if {"__AVX512F__", "__AVX512BW__", "__AVX512VBMI__", "__AVX512VNNI__"} <= m:
        want.add("avx512vnni")
    return want


@pytest.fixture(scope="module")
def gen_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return kernel_gen.emit(tmp_path_factory.mktemp("tl2_gen"), GEN_K)


@pytest.fixture(scope="module")
def bindir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("tl2_kernels")


def build_tl2(flags: list[str], gen: Path, out: Path) -> Path:
    cmd = ["gcc", "-std=c11", "-Wall", "-Wextra", "-Werror", *flags, f"-I{KERNELS}", f"-I{CPU}", f"-I{gen}"]
    cmd += [str(TEST_SRC), *map(str, SOURCES), "-o", str(out), "-lm"]
    res = subprocess.run(cmd, capture_output=True, text=True)
    assert res.returncode == 0, f"{' '.join(cmd)}\n{res.stderr}"
    return out


def disassembly(exe: Path) -> str:
    return subprocess.run(["objdump", "-d", str(exe)], capture_output=True, text=True, check=True).stdout


def test_native_tl2_kernels(gen_dir: Path, bindir: Path) -> None:
    require("gcc")
    flags = ["-O2", "-march=native"]
    want = expected_tl2(flags)
    exe = build_tl2(flags, gen_dir, bindir / "test_tl2_native")
    print(run_and_check([str(exe)], want, timeout=120))


def test_tl2_kernels_without_avx512(gen_dir: Path, bindir: Path) -> None:
    """The AVX2 build a CPU without AVX-512 gets: the avx2 kernel, and avxvnni (VEX vpdpbusd) where it can run."""
    require("gcc", "objdump")
    if "avx2" not in cpu_flags():
        pytest.skip("this CPU cannot run AVX2 code")
    vnni = gcc_accepts("-mavxvnni") and "avx_vnni" in cpu_flags()
    flags = NO_AVX512 + (["-mavxvnni"] if vnni else [])
    want = expected_tl2(flags)
    assert want == ({"generic", "avx2", "avxvnni"} if vnni else {"generic", "avx2"})
    exe = build_tl2(flags, gen_dir, bindir / "test_tl2_avx2")
    asm = disassembly(exe)
    assert "zmm" not in asm  # nothing of AVX-512 may leak into this build
    assert ("{vex} vpdpbusd" in asm) == vnni
    print(run_and_check([str(exe)], want, timeout=120))


def test_tl2_avxvnni_vex_build_only(gen_dir: Path, bindir: Path) -> None:
    """The VEX avxvnni kernel is built and inspected on every CPU (test_tl2_kernels_without_avx512 runs it where
    the CPU has AVX-VNNI)."""
    require("gcc", "objdump")
    assert gcc_accepts("-mavxvnni"), "gcc has no -mavxvnni (gcc >= 11 has)"
    flags = [*NO_AVX512, "-mavxvnni"]
    assert expected_tl2(flags) == {"generic", "avx2", "avxvnni"}
    asm = disassembly(build_tl2(flags, gen_dir, bindir / "test_tl2_avxvnni"))
    assert "{vex} vpdpbusd" in asm
    assert "zmm" not in asm


def test_native_tl2_sanitizers(gen_dir: Path, bindir: Path) -> None:
    # reads past the weights, the activations (bitnet_tl2_act_len) or a table, and undefined shifts show up here
    require("gcc")
    flags = ["-O1", "-g", "-march=native", "-fsanitize=address,undefined", "-fno-sanitize-recover=all"]
    try:
        exe = build_tl2(flags, gen_dir, bindir / "test_tl2_asan")
    except AssertionError as e:
        if "sanitize" in str(e) or "asan" in str(e):
            pytest.skip(f"sanitizer runtime not available: {e}")
        raise
    run_and_check([str(exe), "--quick"], expected_tl2(["-O2", "-march=native"]), timeout=120)
