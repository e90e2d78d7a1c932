"""A few ggml C functions through ctypes, to test the built libraries directly (no llama.cpp tool in between)."""

from __future__ import annotations

import ctypes as C
from pathlib import Path

import numpy as np

GGML_TYPE_F32 = 0
GGML_TYPE_I32 = 26


class InitParams(C.Structure):
    _fields_ = [("mem_size", C.c_size_t), ("mem_buffer", C.c_void_p), ("no_alloc", C.c_bool)]


class TypeTraits(C.Structure):
    _fields_ = [
        ("type_name", C.c_char_p),
        ("blck_size", C.c_int64),
        ("blck_size_interleave", C.c_int64),
        ("type_size", C.c_size_t),
        ("is_quantized", C.c_bool),
        ("to_float", C.CFUNCTYPE(None, C.c_void_p, C.c_void_p, C.c_int64)),
        ("from_float_ref", C.CFUNCTYPE(None, C.c_void_p, C.c_void_p, C.c_int64)),
    ]


class Ggml:
    def __init__(self, lib_dir: Path) -> None:
        self.base = C.CDLL(str(lib_dir / "libggml-base.so"), mode=C.RTLD_GLOBAL)
        self.cpu = C.CDLL(str(lib_dir / "libggml-cpu.so"), mode=C.RTLD_GLOBAL)
        b, c = self.base, self.cpu
        c.bitnet_i2s_kernel_reload.restype = C.POINTER(C.c_char_p)  # points at the entry, whose first field is its name
        c.bitnet_i2s_kernel_find.restype = C.c_void_p
        c.bitnet_i2s_kernel_find.argtypes = [C.c_char_p]
        b.ggml_init.restype = C.c_void_p
        b.ggml_init.argtypes = [InitParams]
        b.ggml_free.argtypes = [C.c_void_p]
        b.ggml_new_tensor_2d.restype = C.c_void_p
        b.ggml_new_tensor_2d.argtypes = [C.c_void_p, C.c_int, C.c_int64, C.c_int64]
        b.ggml_new_tensor_1d.restype = C.c_void_p
        b.ggml_new_tensor_1d.argtypes = [C.c_void_p, C.c_int, C.c_int64]
        b.ggml_get_data.restype = C.c_void_p
        b.ggml_get_data.argtypes = [C.c_void_p]
        b.ggml_nbytes.restype = C.c_size_t
        b.ggml_nbytes.argtypes = [C.c_void_p]
        b.ggml_row_size.restype = C.c_size_t
        b.ggml_row_size.argtypes = [C.c_int, C.c_int64]
        b.ggml_mul_mat.restype = C.c_void_p
        b.ggml_mul_mat.argtypes = [C.c_void_p, C.c_void_p, C.c_void_p]
        for unary in ("ggml_cont", "ggml_dup", "ggml_sum_rows", "ggml_transpose"):
            getattr(b, unary).restype = C.c_void_p
            getattr(b, unary).argtypes = [C.c_void_p, C.c_void_p]
        for binary in ("ggml_add", "ggml_cpy"):
            getattr(b, binary).restype = C.c_void_p
            getattr(b, binary).argtypes = [C.c_void_p, C.c_void_p, C.c_void_p]
        b.ggml_cast.restype = C.c_void_p
        b.ggml_cast.argtypes = [C.c_void_p, C.c_void_p, C.c_int]
        b.ggml_scale.restype = C.c_void_p
        b.ggml_scale.argtypes = [C.c_void_p, C.c_void_p, C.c_float]
        b.ggml_view_2d.restype = C.c_void_p
        b.ggml_view_2d.argtypes = [C.c_void_p, C.c_void_p, C.c_int64, C.c_int64, C.c_size_t, C.c_size_t]
        b.ggml_get_rows.restype = C.c_void_p
        b.ggml_get_rows.argtypes = [C.c_void_p, C.c_void_p, C.c_void_p]
        b.ggml_new_graph.restype = C.c_void_p
        b.ggml_new_graph.argtypes = [C.c_void_p]
        b.ggml_build_forward_expand.argtypes = [C.c_void_p, C.c_void_p]
        b.ggml_quantize_chunk.restype = C.c_size_t
        b.ggml_quantize_chunk.argtypes = [C.c_int, C.c_void_p, C.c_void_p, C.c_int64, C.c_int64, C.c_int64, C.c_void_p]
        b.ggml_get_type_traits.restype = C.POINTER(TypeTraits)
        b.ggml_get_type_traits.argtypes = [C.c_int]
        b.ggml_type_name.restype = C.c_char_p
        b.ggml_type_name.argtypes = [C.c_int]
        b.ggml_validate_row_data.restype = C.c_bool
        b.ggml_validate_row_data.argtypes = [C.c_int, C.c_void_p, C.c_size_t]
        c.ggml_graph_compute_with_ctx.restype = C.c_int
        c.ggml_graph_compute_with_ctx.argtypes = [C.c_void_p, C.c_void_p, C.c_int]
        c.ggml_cpu_init()

    # -- whole-tensor quantization through the type's registered functions
    def has_kernel(self, name: str) -> bool:
        return bool(self.cpu.bitnet_i2s_kernel_find(name.encode()))

    def reload_kernel(self) -> str:
        """Make the I2_S dispatch read $BITNET_I2S_KERNEL again (it reads it once per process); the chosen kernel."""
        return self.cpu.bitnet_i2s_kernel_reload()[0].decode()

    def validate(self, gtype: int, data: np.ndarray) -> bool:
        """ggml_validate_row_data over a whole tensor's bytes (what llama.cpp runs with --check-tensors)."""
        data = np.ascontiguousarray(data, dtype=np.uint8)
        return bool(self.base.ggml_validate_row_data(gtype, data.ctypes.data, data.nbytes))

    def nbytes(self, gtype: int, ne0: int, ne1: int) -> int:
        """ggml_nbytes of a 2-D tensor (whole-tensor types such as TL2 are not rows x row size)."""
        ctx = self.base.ggml_init(InitParams(1 << 16, None, True))
        try:
            return int(self.base.ggml_nbytes(self.base.ggml_new_tensor_2d(ctx, gtype, ne0, ne1)))
        finally:
            self.base.ggml_free(ctx)

    def quantize(self, gtype: int, x: np.ndarray) -> np.ndarray:
        x = np.ascontiguousarray(x, dtype=np.float32)
        rows, cols = x.shape
        out = np.zeros(self.nbytes(gtype, cols, rows) + 64, dtype=np.uint8)
        n = self.base.ggml_quantize_chunk(gtype, x.ctypes.data, out.ctypes.data, 0, rows, cols, None)
        return out[:n].copy()

    def dequantize(self, gtype: int, data: np.ndarray, n: int) -> np.ndarray:
        y = np.zeros(n, dtype=np.float32)
        data = np.ascontiguousarray(data)
        self.base.ggml_get_type_traits(gtype).contents.to_float(data.ctypes.data, y.ctypes.data, n)
        return y

    # -- one-op graphs computed by the CPU backend
    def _tensor(self, ctx: int, gtype: int, ne0: int, ne1: int, data: np.ndarray) -> int:
        t = self.base.ggml_new_tensor_2d(ctx, gtype, ne0, ne1)
        nbytes = self.base.ggml_nbytes(t)
        raw = np.ascontiguousarray(data).view(np.uint8).reshape(-1)
        assert raw.size == nbytes, f"tensor needs {nbytes} bytes, got {raw.size}"
        C.memmove(self.base.ggml_get_data(t), raw.ctypes.data, nbytes)
        return t

    def _compute(self, ctx: int, out: int, threads: int, shape: tuple[int, ...]) -> np.ndarray:
        gf = self.base.ggml_new_graph(ctx)
        self.base.ggml_build_forward_expand(gf, out)
        return self._run(ctx, gf, out, threads, shape)

    def _run(self, ctx: int, gf: int, out: int, threads: int, shape: tuple[int, ...]) -> np.ndarray:
        status = self.cpu.ggml_graph_compute_with_ctx(ctx, gf, threads)
        assert status == 0, f"ggml_graph_compute_with_ctx returned {status}"
        n = int(np.prod(shape))
        buf = (C.c_float * n).from_address(self.base.ggml_get_data(out))
        return np.frombuffer(buf, dtype=np.float32, count=n).reshape(shape).copy()

    def _context(self, size: int) -> int:
        return self.base.ggml_init(InitParams(size + (64 << 20), None, False))

    def mul_mat(self, gtype: int, wdata: np.ndarray, k: int, m: int, x: np.ndarray, threads: int = 2) -> np.ndarray:
        """y[n, m] = W[m, k] @ x[n, k] with W given as raw bytes of gtype."""
        x = np.ascontiguousarray(x, dtype=np.float32)
        n = x.shape[0]
        ctx = self._context(wdata.nbytes + x.nbytes * 2 + n * m * 4)
        try:
            w = self._tensor(ctx, gtype, k, m, wdata)
            xt = self._tensor(ctx, GGML_TYPE_F32, k, n, x)
            return self._compute(ctx, self.base.ggml_mul_mat(ctx, w, xt), threads, (n, m))
        finally:
            self.base.ggml_free(ctx)

    def mul_mat_runs(self, gtype: int, wdata: np.ndarray, k: int, m: int, x: np.ndarray,
                     threads: list[int]) -> list[np.ndarray]:
        """mul_mat's graph built once and computed once per entry of `threads`, with that many threads (state that
        an op keeps in its node between computes, such as a work counter, must be back where it started)."""
        x = np.ascontiguousarray(x, dtype=np.float32)
        n = x.shape[0]
        ctx = self._context(wdata.nbytes + x.nbytes * 2 + n * m * 4)
        try:
            out = self.base.ggml_mul_mat(ctx, self._tensor(ctx, gtype, k, m, wdata), self._tensor(ctx, GGML_TYPE_F32, k, n, x))
            gf = self.base.ggml_new_graph(ctx)
            self.base.ggml_build_forward_expand(gf, out)
            return [self._run(ctx, gf, out, t, (n, m)) for t in threads]
        finally:
            self.base.ggml_free(ctx)

    def op_on(self, gtype: int, wdata: np.ndarray, k: int, m: int, op: str, threads: int = 2) -> np.ndarray:
        """One op applied to a [m, k] tensor of gtype, computed, as F32 [m, k]-shaped output. `op` names the graph:
        cast (to F32), dup, cont, add (w + w), scale, sum_rows, transpose+cont, view (first row, cast), cpy_into (F32
        copied into a gtype tensor)."""
        ctx = self._context(wdata.nbytes * 4 + m * k * 16)
        b = self.base
        try:
            w = self._tensor(ctx, gtype, k, m, wdata)
            out = {
                "cast": lambda: b.ggml_cast(ctx, w, GGML_TYPE_F32),
                "cpy_to_f32": lambda: b.ggml_cpy(ctx, w, b.ggml_new_tensor_2d(ctx, GGML_TYPE_F32, k, m)),
                "dup": lambda: b.ggml_dup(ctx, w),
                "cont": lambda: b.ggml_cont(ctx, w),
                "add": lambda: b.ggml_add(ctx, w, w),
                "scale": lambda: b.ggml_scale(ctx, w, 2.0),
                "sum_rows": lambda: b.ggml_sum_rows(ctx, w),
                "transpose": lambda: b.ggml_cont(ctx, b.ggml_transpose(ctx, w)),
                "view": lambda: b.ggml_cast(ctx, b.ggml_view_2d(ctx, w, k, 1, b.ggml_row_size(gtype, k), 0), GGML_TYPE_F32),
                "cpy_into": lambda: b.ggml_cpy(ctx, b.ggml_new_tensor_2d(ctx, GGML_TYPE_F32, k, m), w),
            }[op]()
            return self._compute(ctx, out, threads, (m, k))
        finally:
            b.ggml_free(ctx)

    def get_rows(self, gtype: int, wdata: np.ndarray, k: int, m: int, rows: np.ndarray) -> np.ndarray:
        rows = np.ascontiguousarray(rows, dtype=np.int32)
        ctx = self._context(wdata.nbytes + rows.size * k * 4)
        try:
            w = self._tensor(ctx, gtype, k, m, wdata)
            idx = self.base.ggml_new_tensor_1d(ctx, GGML_TYPE_I32, rows.size)
            C.memmove(self.base.ggml_get_data(idx), rows.ctypes.data, rows.nbytes)
            return self._compute(ctx, self.base.ggml_get_rows(ctx, w, idx), 1, (rows.size, k))
        finally:
            self.base.ggml_free(ctx)
