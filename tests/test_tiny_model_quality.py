"""The committed tiny-shakespeare model: our i2_s GGUF's held-out perplexity equals transformers' fp32 reference."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from bitnet_gguf.convert import convert

from .conftest import REPO_ROOT, TINYSHAKESPEARE, run_tool

MODEL_DIR = REPO_ROOT / "models" / "tiny-shakespeare"
CTX = 256


@pytest.fixture(scope="module")
def heldout(tmp_path_factory: pytest.TempPathFactory) -> Path:
    from bitnet_gguf.tools.train_tiny import read_text, split_text, write_heldout

    path = tmp_path_factory.mktemp("data") / "heldout.txt"
    write_heldout(split_text(read_text(TINYSHAKESPEARE))[1], path)
    return path


@pytest.fixture(scope="module")
def gguf_i2s(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return convert(MODEL_DIR, "i2_s", tmp_path_factory.mktemp("tiny") / "ggml-model-i2_s.gguf", progress=False).path


def test_heldout_perplexity_within_one_percent(bin_dir: Path, gguf_i2s: Path, heldout: Path) -> None:
    pytest.importorskip("transformers")
    from bitnet_gguf.tools.perplexity_ref import perplexity_of_file

    proc = run_tool(bin_dir, "llama-perplexity", "-m", str(gguf_i2s), "-f", str(heldout), "-c", str(CTX), "-t", "2")
    assert proc.returncode == 0, proc.stderr[-2000:]
    m = re.search(r"Final estimate: PPL = ([\d.]+)", proc.stdout + proc.stderr)
    assert m, (proc.stdout + proc.stderr)[-2000:]
    ours = float(m.group(1))
    ref = perplexity_of_file(MODEL_DIR, heldout, CTX).ppl
    print(f"held-out perplexity: i2_s GGUF {ours:.4f}, transformers fp32 {ref:.4f} ({(ours / ref - 1) * 100:+.3f}%)")
    assert abs(ours / ref - 1) < 0.01
    assert ref < 200  # a trained model, far from the 2048-token vocabulary's uniform perplexity


def test_generates_shakespeare_like_text(bin_dir: Path, gguf_i2s: Path) -> None:
    proc = run_tool(bin_dir, "llama-completion", "-m", str(gguf_i2s), "-p", "ROMEO:", "-n", "120", "-t", "2",
                    "--temp", "0", "-no-cnv", "--no-warmup")
    assert proc.returncode == 0, proc.stderr[-2000:]
    speakers = re.findall(r"^([A-Z][A-Z ]+):$", proc.stdout, flags=re.M)
    assert len(speakers) >= 2, proc.stdout  # play-script structure: speaker names in capitals on their own line
