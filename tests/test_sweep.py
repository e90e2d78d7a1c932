"""The size sweep (`bench-suite --sizes`, bitnet_gguf/tools/sweep.py) end to end on small presets: the models are
written with a Q6_K head, measured at the asked thread counts, and a size that cannot fit is skipped with a note."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

from bitnet_gguf.formats.gguf_read import GGUFFile
from bitnet_gguf.tools.sweep import estimated_file_bytes

from .conftest import REPO_ROOT

GGML_TYPE_Q6_K = 14


def test_sweep_of_small_sizes(build_dir: Path, tmp_path: Path) -> None:
    out, work = tmp_path / "out", tmp_path / "work"
    r = subprocess.run([sys.executable, "-m", "bitnet_gguf", "bench-suite", "--sizes", "tiny,125M,100B", "-t", "1,2",
                        "-p", "8", "-n", "4", "-r", "1", "--work-dir", str(work), "--out", str(out),
                        "--build-dir", str(build_dir)], capture_output=True, text=True, cwd=REPO_ROOT, timeout=900)
    assert r.returncode == 0, r.stderr
    record = json.loads((out / "results.json").read_text())
    got = {(x["size"], x["threads"]): x for x in record["results"]}
    assert set(got) == {("tiny", 1), ("tiny", 2), ("125M", 1), ("125M", 2)}
    # 100B: 25 GB of weights cannot stay in this machine's memory (24 GB): skipped with the reason, nothing written
    assert "100B" in record["skipped"] and "available memory" in record["skipped"]["100B"]
    assert not list(work.glob("*100b*"))
    for (size, _), x in got.items():
        model = work / f"sweep-{size.lower()}-i2_s-head-q6_k.gguf"
        f = GGUFFile(model)
        assert f.tensors["token_embd.weight"].ggml_type == GGML_TYPE_Q6_K  # the product's default head
        assert x["file_bytes"] == model.stat().st_size
        assert abs(x["file_bytes"] - estimated_file_bytes(size)) < 0.05 * x["file_bytes"]
        assert x["pp_tps"] > 0 and x["tg_tps"] > 0 and x["load_s"] > 0
        assert x["probe_before"] > 0 and x["probe_after"] > 0
        assert x["share"] == x["tg_tps"] / ((x["probe_before"] + x["probe_after"]) / 2 * 1e9 / x["bytes_per_token"])
        assert x["peak_rss"] > 0.5 * x["file_bytes"]  # the mapped weights are touched every token
    md = (out / "results.md").read_text()
    assert "| 125M |" in md and "Skipped:" in md
    assert (out / "results.png").stat().st_size > 10_000


def test_sweep_refuses_an_unknown_size(tmp_path: Path) -> None:
    r = subprocess.run([sys.executable, "-m", "bitnet_gguf", "bench-suite", "--sizes", "125M,9B", "--out", str(tmp_path)],
                       capture_output=True, text=True, cwd=REPO_ROOT, timeout=120)
    assert r.returncode != 0
    lines = r.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: --sizes 125M,9B: unknown size 9B"), r.stderr
