"""bitnet.cpp's TL1/TL2 files: refused in one line naming the tensor and the way to a working (I2_S) file.

That real MXFP4 files (type 39, file type 38) still load is test_llama_tools.py's MXFP4_MOE case."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import gguf
import numpy as np
import pytest

from bitnet_gguf.errors import BitnetError
from bitnet_gguf.formats.gguf_read import read_metadata
from bitnet_gguf.formats.gguf_write import _RawType

from .conftest import REPO_ROOT, run_tool

# bitnet.cpp's ids: TL1 = 38 (file type and tensor type), TL2 = 39 (both)
TL = {"TL1": 38, "TL2": 39}


def _bitnet_cpp_tl_file(path: Path, kind: str, arch: str = "bitnet-b1.58") -> Path:
    """The header of a bitnet.cpp TL file: its file type, a projection of its TL type (bytes are not read)."""
    w = gguf.GGUFWriter(path, arch)
    w.add_file_type(TL[kind])
    w.add_tensor("token_embd.weight", np.zeros((64, 256), dtype=np.float16))
    raw = _RawType(TL[kind], kind)
    w.add_tensor("blk.0.attn_q.weight", np.zeros(256 * 256 // 4 + 32, dtype=np.int8), raw_shape=[256, 256], raw_dtype=raw)  # type: ignore[arg-type]
    w.write_header_to_file()
    w.write_kv_data_to_file()
    w.write_tensors_to_file()
    w.close()
    return path


@pytest.mark.parametrize("kind", ["TL1", "TL2"])
def test_llama_cpp_refuses_in_one_line(bin_dir: Path, tmp_path: Path, kind: str) -> None:
    model = _bitnet_cpp_tl_file(tmp_path / f"ggml-model-{kind.lower()}.gguf", kind, arch="llama")
    proc = run_tool(bin_dir, "llama-completion", "-m", str(model), "-p", "hi", "-n", "1", "-no-cnv", timeout=60)
    assert proc.returncode != 0
    # llama.cpp may open the file more than once (parameter fitting, then the load): one message, maybe repeated
    lines = sorted({ln[ln.index("gguf_init"):] for ln in proc.stderr.splitlines() if "bitnet.cpp's" in ln})
    assert len(lines) == 1, proc.stderr[-3000:]
    assert f"tensor 'blk.0.attn_q.weight' is bitnet.cpp's {kind}" in lines[0] and "-q i2_s" in lines[0]


@pytest.mark.parametrize("kind", ["TL1", "TL2"])
def test_front_ends_refuse_before_llama_cpp(tmp_path: Path, kind: str) -> None:
    model = _bitnet_cpp_tl_file(tmp_path / "m.gguf", kind)
    with pytest.raises(BitnetError, match=f"bitnet.cpp {kind} file.*-q i2_s"):
        read_metadata(model)
    proc = subprocess.run([sys.executable, str(REPO_ROOT / "run_inference.py"), "-m", str(model), "-p", "hi", "--dry-run"],
                          capture_output=True, text=True, timeout=60)
    assert proc.returncode == 1 and proc.stderr.count("\n") == 1 and f"bitnet.cpp {kind} file" in proc.stderr, proc.stderr

