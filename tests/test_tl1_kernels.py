"""TL1 kernels (tests/kernels/test_tl1_gemm.c) and the C TL1 format functions (kernels/tl1-quants.c).

The standalone C test compares every compiled-in TL1 kernel (table, gemv, gemm) with a scalar int32 dot of the
weights bitnet_tl1_weight reads: natively (x86: the generic kernel only) and, when the cross tools are installed, for
AArch64 under qemu-user with dotprod on qemu's default CPU and plain NEON on a Cortex-A53. The C packer must write
exactly the bytes of the numpy one (bitnet_gguf.formats.quants.TL1), which docs/formats.md §5 pins.
"""

from __future__ import annotations

import ctypes
import subprocess
from pathlib import Path

import numpy as np
import pytest

from bitnet_gguf.formats.quants import TL1, ternarize

from .test_kernels import (
    CPU,
    IS_ARM64,
    IS_X86,
    KERNELS,
    QEMU_ASAN_ENV,
    QEMU_SYSROOT,
    ROOT,
    SANITIZE,
    expected_kernels,
    require,
    run_and_check,
)

TEST_SRC = ROOT / "tests" / "kernels" / "test_tl1_gemm.c"
FORMAT_SRC = [KERNELS / "tl1-quants.c", KERNELS / "i2s-quants.c"]


def tl1_sources(arm: bool) -> list[Path]:
    files = [*FORMAT_SRC, CPU / "generic" / "tl1-gemm.c", CPU / "tl1-dispatch.c"]
    return [*files, CPU / "arch" / "arm" / "tl1-gemm-arm.c"] if arm else files


def build_tl1(cc: str, flags: list[str], arm: bool, out: Path) -> Path:
    cmd = [cc, "-std=c11", "-Wall", "-Wextra", "-Werror", *flags, f"-I{KERNELS}", f"-I{CPU}"]
    cmd += [str(TEST_SRC), *map(str, tl1_sources(arm)), "-o", str(out), "-lm"]
    res = subprocess.run(cmd, capture_output=True, text=True)
    assert res.returncode == 0, f"{' '.join(cmd)}\n{res.stderr}"
    return out


def expected_tl1(cc: str, flags: list[str]) -> set[str]:
    """The TL1 kernels tl1-gemm.h enables for these flags: the generic one, and those of the ARM I2_S kernels."""
    return {"generic"} | (expected_kernels(cc, flags) & {"neon", "dotprod"})


@pytest.fixture(scope="module")
def bindir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("tl1_kernels")


@pytest.mark.skipif(not (IS_X86 or IS_ARM64), reason="tested on x86-64 and AArch64 hosts")
def test_native_tl1_kernels(bindir: Path) -> None:
    require("gcc")
    flags = ["-O2", "-march=native"]
    want = expected_tl1("gcc", flags)
    assert want == {"generic"} or IS_ARM64
    exe = build_tl1("gcc", flags, IS_ARM64, bindir / "test_tl1_native")
    run_and_check([str(exe)], want, timeout=60)


@pytest.mark.skipif(not (IS_X86 or IS_ARM64), reason="tested on x86-64 and AArch64 hosts")
def test_native_tl1_sanitizers(bindir: Path) -> None:
    # reads past the weights, the activations or a table, and undefined shifts show up here
    require("gcc")
    flags = [*SANITIZE, "-march=native"]
    try:
        exe = build_tl1("gcc", flags, IS_ARM64, bindir / "test_tl1_asan")
    except AssertionError as e:
        if "sanitize" in str(e) or "asan" in str(e):
            pytest.skip(f"sanitizer runtime not available: {e}")
        raise
    run_and_check([str(exe), "--quick"], expected_tl1("gcc", ["-O2", "-march=native"]), timeout=120)


AARCH64_CASES = [
    # (compiler flags, qemu cpu, kernels that must run): qemu's default CPU ("max") has dotprod; a Cortex-A53 not
    (["-O2", "-march=armv8.2-a+dotprod"], None, {"dotprod", "neon", "generic"}),
    (["-O2", "-march=armv8-a"], "cortex-a53", {"neon", "generic"}),
]


@pytest.mark.parametrize("sanitize", [False, True], ids=["plain", "asan-ubsan"])
@pytest.mark.parametrize(("flags", "qemu_cpu", "want"), AARCH64_CASES, ids=["dotprod", "neon-cortex-a53"])
def test_aarch64_tl1_kernels_under_qemu(bindir: Path, flags: list[str], qemu_cpu: str | None, want: set[str],
                                        sanitize: bool) -> None:
    require("aarch64-linux-gnu-gcc", "qemu-aarch64")
    if not Path(QEMU_SYSROOT).is_dir():
        pytest.skip(f"{QEMU_SYSROOT} missing (apt: gcc-aarch64-linux-gnu)")
    cc = "aarch64-linux-gnu-gcc"
    assert expected_tl1(cc, flags) == want  # the guards of tl1-gemm.h agree with the compiler's macros
    exe = build_tl1(cc, [*flags, *(SANITIZE if sanitize else [])], True,
                    bindir / f"test_tl1_aarch64_{qemu_cpu or 'max'}{'_asan' if sanitize else ''}")
    cpu = ["-cpu", qemu_cpu] if qemu_cpu else []
    # --quick: every shape and column count, the gemm on the first and last tile of each shape
    out = run_and_check(["qemu-aarch64", *cpu, "-L", QEMU_SYSROOT, str(exe), "--quick"], want, timeout=300,
                        env=QEMU_ASAN_ENV if sanitize else None)
    assert f"compiled: {' '.join(k for k in ('dotprod', 'neon', 'generic') if k in want)}" in out


# ---- the C format functions against the numpy ones (a shared object through ctypes) ---------------------------

I8P = np.ctypeslib.ndpointer(np.int8, flags="C_CONTIGUOUS")
U8P = np.ctypeslib.ndpointer(np.uint8, flags="C_CONTIGUOUS")
F32P = np.ctypeslib.ndpointer(np.float32, flags="C_CONTIGUOUS")


@pytest.fixture(scope="module")
def tl1_lib(bindir: Path) -> ctypes.CDLL:
    require("gcc")
    so = bindir / "libtl1quants.so"
    cmd = ["gcc", "-std=c11", "-Wall", "-Wextra", "-Werror", "-O2", "-shared", "-fPIC", f"-I{KERNELS}"]
    cmd += [*map(str, FORMAT_SRC), "-o", str(so), "-lm"]
    res = subprocess.run(cmd, capture_output=True, text=True)
    assert res.returncode == 0, f"{' '.join(cmd)}\n{res.stderr}"
    lib = ctypes.CDLL(str(so))
    lib.bitnet_tl1_pack.argtypes = [I8P, ctypes.c_int64, ctypes.c_int64, ctypes.c_float, U8P]
    lib.bitnet_tl1_pack.restype = None
    lib.bitnet_tl1_quantize.argtypes = [F32P, U8P, ctypes.c_int64, ctypes.c_int64]
    lib.bitnet_tl1_quantize.restype = ctypes.c_size_t
    lib.bitnet_tl1_dequantize.argtypes = [U8P, F32P, ctypes.c_int64, ctypes.c_int64]
    lib.bitnet_tl1_dequantize.restype = None
    lib.bitnet_tl1_validate.argtypes = [U8P, ctypes.c_size_t]
    lib.bitnet_tl1_validate.restype = ctypes.c_bool
    return lib


# ragged M (not a multiple of 32) and odd K, with whole tiles and even K among them
PACK_SHAPES = [(1, 1), (33, 3), (70, 195), (32, 64), (96, 2560), (130, 8645)]


@pytest.mark.parametrize(("rows", "cols"), PACK_SHAPES)
def test_c_pack_bytes_equal_numpy(tl1_lib: ctypes.CDLL, rows: int, cols: int) -> None:
    rng = np.random.default_rng(rows * 1009 + cols)
    t = rng.integers(-1, 2, size=(rows, cols), dtype=np.int8)
    want = TL1.pack(t, 0.0375)
    got = np.zeros(TL1.nbytes(rows, cols), dtype=np.uint8)
    tl1_lib.bitnet_tl1_pack(np.ascontiguousarray(t), cols, rows, 0.0375, got)
    assert got.tobytes() == want.tobytes()
    assert tl1_lib.bitnet_tl1_validate(got, got.size)


@pytest.mark.parametrize(("rows", "cols"), [(70, 195), (64, 256)])
def test_c_quantize_dequantize_equal_numpy(tl1_lib: ctypes.CDLL, rows: int, cols: int) -> None:
    x = np.random.default_rng(cols).standard_normal((rows, cols)).astype(np.float32)
    t, scale = ternarize(x)
    got = np.zeros(TL1.nbytes(rows, cols), dtype=np.uint8)
    assert tl1_lib.bitnet_tl1_quantize(np.ascontiguousarray(x), got, cols, rows) == got.size
    assert got.tobytes() == TL1.pack(t, scale).tobytes()
    y = np.zeros((rows, cols), dtype=np.float32)
    tl1_lib.bitnet_tl1_dequantize(got, y, cols, rows)
    assert np.array_equal(y, t.astype(np.float32) * np.float32(scale))


def test_c_validate_refuses_what_no_writer_produces(tl1_lib: ctypes.CDLL) -> None:
    data = TL1.pack(np.ones((40, 9), dtype=np.int8), 0.5)
    assert tl1_lib.bitnet_tl1_validate(data, data.size)
    assert not tl1_lib.bitnet_tl1_validate(data, data.size - 1)  # not whole 16-byte groups + tail
    bad = data.copy()
    bad[5] = 0x9 << 4  # index 9
    assert not tl1_lib.bitnet_tl1_validate(bad, bad.size)
    for scale in (np.nan, np.inf, -1.0):
        bad = data.copy()
        bad[-32:-28] = np.frombuffer(np.float32(scale).tobytes(), dtype=np.uint8)
        assert not tl1_lib.bitnet_tl1_validate(bad, bad.size)
