"""TL1 and TL2 files through the real tools: llama-quantize makes the converter's bytes, setup_env's model step
converts a folder or an I2_S .gguf, and the trained tiny-shakespeare model gives the same logits and the same
greedy text as its I2_S file (the integer dot products are equal, so the floats are too)."""

from __future__ import annotations

import io
import shutil
import subprocess
import sys
from argparse import Namespace
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from bitnet_gguf.convert import convert
from bitnet_gguf.formats.constants import FILE_TYPES, TL1_LAYOUT_KEY, TL2_LAYOUT, TL2_LAYOUT_KEY
from bitnet_gguf.setup import kernel_gen, tl_autotune
from bitnet_gguf.setup.prepare_model import cpu_family, prepare_model
from bitnet_gguf.synthetic.gguf_model import write_synthetic_gguf

from .conftest import REPO_ROOT, run_tool
from .gguf_read import read_gguf
from .server_helpers import cli_generated_text, run_inference

TINY = REPO_ROOT / "models" / "tiny-shakespeare"
PROMPT = "ROMEO:"


@pytest.fixture(scope="module")
def files(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """The trained model converted from its checkpoint by the Python converter: i2_s, tl1, tl2."""
    d = tmp_path_factory.mktemp("tl")
    return {q: convert(TINY, q, d / f"ts-{q}.gguf", progress=False).path for q in ("i2_s", "tl1", "tl2")}


@pytest.mark.parametrize("qt", ["tl1", "tl2"])
def test_llama_quantize_writes_the_converters_bytes(bin_dir: Path, files: dict[str, Path], tmp_path: Path, qt: str) -> None:
    """llama-quantize IN(I2_S) OUT TL1|TL2: no --allow-requantize needed (lossless), same tensors byte for byte."""
    out = tmp_path / f"q-{qt}.gguf"
    proc = run_tool(bin_dir, "llama-quantize", str(files["i2_s"]), str(out), qt.upper())
    assert proc.returncode == 0, proc.stderr[-2000:]
    meta, got = read_gguf(out)
    want_meta, want = read_gguf(files[qt])
    key = TL1_LAYOUT_KEY if qt == "tl1" else TL2_LAYOUT_KEY
    assert meta[key] == want_meta[key] and meta["general.file_type"] == want_meta["general.file_type"] == FILE_TYPES[qt]
    assert got.keys() == want.keys()
    for name, t in want.items():
        assert got[name].ggml_type == t.ggml_type and np.array_equal(got[name].data, t.data), name


@pytest.mark.parametrize("qt", ["tl1", "tl2"])
def test_greedy_text_equals_i2s(files: dict[str, Path], qt: str) -> None:
    texts = {}
    for q in ("i2_s", qt):
        r = run_inference("-m", str(files[q]), "-p", PROMPT, "-n", "48", "-temp", "0", "-t", "2")
        assert r.returncode == 0, r.stderr[-2000:]
        texts[q] = cli_generated_text(r.stdout, PROMPT)
    assert len(texts["i2_s"].split()) > 5 and texts[qt] == texts["i2_s"]


@pytest.fixture(scope="module")
def logits(files: dict[str, Path], bin_dir: Path) -> Iterator[dict[str, Any]]:
    from bitnet_gguf import Llama

    text = (REPO_ROOT / "tests" / "data" / "tinyshakespeare.txt").read_text()[:2000]
    out = {}
    for q, path in files.items():
        llm = Llama(path, n_ctx=256, logits_all=True, n_threads=2)
        tokens = llm.tokenize(text.encode())[:200]
        llm.eval(tokens)
        out[q] = np.array(llm.scores[: len(tokens)], dtype=np.float32)
        llm.close()
    yield out


@pytest.mark.parametrize("qt", ["tl1", "tl2"])
def test_logits_equal_i2s(logits: dict[str, np.ndarray], qt: str) -> None:
    """A prompt of 200 tokens (the decode kernels) against I2_S: within 1e-6 of the logit range (in fact equal)."""
    ref, got = logits["i2_s"], logits[qt]
    assert ref.shape == got.shape and ref.shape[0] == 200
    assert np.abs(got - ref).max() <= 1e-6 * (ref.max() - ref.min())


@pytest.mark.parametrize("qt", ["tl1", "tl2"])
def test_generate_model_and_llama_quantize_from_f32(bin_dir: Path, tiny_f32: Path, vocab_gguf: Path, tmp_path: Path,
                                                    qt: str) -> None:
    """generate-model --gguf tl1|tl2 (any size preset) and llama-quantize F32 -> TL1|TL2 write the same ternary
    bytes for the same weights (seed 1 of the tiny preset, as tiny_f32), and the file runs."""
    gen = write_synthetic_gguf(tmp_path / f"gen-{qt}.gguf", "bitnet-b1.58", "tiny", qt, vocab_gguf, seed=1)
    quantized = tmp_path / f"q-{qt}.gguf"
    proc = run_tool(bin_dir, "llama-quantize", str(tiny_f32), str(quantized), qt.upper())
    assert proc.returncode == 0, proc.stderr[-2000:]
    _, want = read_gguf(gen)
    _, got = read_gguf(quantized)
    projections = [n for n, t in want.items() if t.ggml_type in (38, 43)]
    assert len(projections) == 14
    for name in projections:
        assert np.array_equal(got[name].data, want[name].data), name
    proc = run_tool(bin_dir, "llama-completion", "-m", str(gen), "-p", "hi", "-n", "4", "-no-cnv", timeout=120)
    assert proc.returncode == 0, proc.stderr[-2000:]


def test_md_names_an_i2s_gguf(files: dict[str, Path], build_dir: Path, tmp_path: Path) -> None:
    """setup_env.py -md FILE.gguf -q tl2 converts beside the file, then keeps the result until the source changes."""
    src = shutil.copy(files["i2_s"], tmp_path / "ggml-model-i2_s.gguf")
    args = Namespace(model_dir=str(src), hf_repo=None, quant_type="tl2", quant_embd=False, build_dir=str(build_dir))
    log = io.StringIO()
    out = prepare_model(args, log)
    assert out == tmp_path / "ggml-model-tl2.gguf" and "llama-quantize" in log.getvalue()
    assert np.array_equal(read_gguf(out)[1]["blk.0.attn_q.weight"].data, read_gguf(files["tl2"])[1]["blk.0.attn_q.weight"].data)
    log = io.StringIO()
    assert prepare_model(args, log) == out and "not converting again" in log.getvalue()
    args.model_dir = str(out)  # a TL2 file asked for TL2: used as it is
    assert prepare_model(args, io.StringIO()) == out


def test_setup_env_q_tl_then_run_inference(files: dict[str, Path], build_dir: Path, tmp_path: Path) -> None:
    """The issue's command: setup_env.py -md models/tiny-shakespeare -q tl2 (tl1 on ARM) tunes the kernels for this
    CPU, regenerates them for the model's shapes, rebuilds, converts; its file then gives the I2_S file's text."""
    qt = {"x86": "tl2", "arm": "tl1"}.get(cpu_family())
    if qt is None:
        pytest.skip("no lookup-table type for this CPU family")
    d = shutil.copytree(TINY, tmp_path / "ts")
    cmd = [sys.executable, str(REPO_ROOT / "setup_env.py"), "-md", str(d), "-q", qt, "--build-dir", str(build_dir),
           "-ld", str(tmp_path / "logs")]
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=900)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert kernel_gen.recorded_k_values(build_dir) == [256, 768]  # the model's K values got their kernels
    if qt == "tl2" and "nothing to tune" not in (tmp_path / "logs" / "tune.log").read_text():
        assert (kernel_gen.generated_dir(build_dir) / tl_autotune.RECORD).is_file()
    texts = []
    for path in (d / f"ggml-model-{qt}.gguf", files["i2_s"]):
        r = run_inference("-m", str(path), "-p", PROMPT, "-n", "48", "-temp", "0", "-t", "2")
        assert r.returncode == 0, r.stderr[-2000:]
        texts.append(cli_generated_text(r.stdout, PROMPT))
    assert len(texts[1].split()) > 5 and texts[0] == texts[1]


def test_other_layout_refused_in_one_line(bin_dir: Path, files: dict[str, Path], tmp_path: Path) -> None:
    """A TL2 file whose layout is not this build's (e.g. written by a future version): refused, naming the
    tensor, the file's layout and the build's."""
    data = files["tl2"].read_bytes()
    other = TL2_LAYOUT.replace("tl2/1", "tl2/9")
    assert data.count(TL2_LAYOUT.encode()) == 1
    bad = tmp_path / "other-layout.gguf"
    bad.write_bytes(data.replace(TL2_LAYOUT.encode(), other.encode()))
    proc = run_tool(bin_dir, "llama-completion", "-m", str(bad), "-p", "hi", "-n", "1", "-no-cnv", timeout=60)
    assert proc.returncode != 0
    lines = sorted({ln[ln.index("gguf_init"):] for ln in proc.stderr.splitlines() if "but this build reads" in ln})
    assert len(lines) == 1, proc.stderr[-3000:]
    assert f"is tl2 with layout '{other}' ({TL2_LAYOUT_KEY}), but this build reads '{TL2_LAYOUT}'" in lines[0]
    assert "llama-quantize IN.gguf OUT.gguf TL2" in lines[0]
