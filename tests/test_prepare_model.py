"""setup_env.py's model step (-md / -hr / -q / --quant-embd), without building or downloading anything."""

from __future__ import annotations

import io
import os
import shutil
from argparse import Namespace
from pathlib import Path

import numpy as np
import pytest

from bitnet_gguf.errors import BitnetError
from bitnet_gguf.formats.constants import FILE_TYPES, TL1_LAYOUT, TL1_LAYOUT_KEY, TL2_LAYOUT, TL2_LAYOUT_KEY
from bitnet_gguf.formats.quants import I2S, TL1, TL2
from bitnet_gguf.setup.hub import KNOWN_REPOS, model_name
from bitnet_gguf.setup.prepare_model import check_quant_type, cpu_family, prepare_model
from bitnet_gguf.synthetic.hf_model import generate_model

from .gguf_read import read_gguf
from .hf_oracle import vocab_dir


@pytest.fixture(scope="module")
def ckpt(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return generate_model("bitnet", "tiny", tmp_path_factory.mktemp("prep") / "src", vocab_dir(), seed=21)


def _args(**kw: object) -> Namespace:
    base: dict[str, object] = {"model_dir": None, "hf_repo": None, "quant_type": "i2_s", "quant_embd": False}
    base.update(kw)
    return Namespace(**base)


def test_md_converts_then_skips_until_the_checkpoint_changes(ckpt: Path, tmp_path: Path) -> None:
    d = shutil.copytree(ckpt, tmp_path / "m")
    log = io.StringIO()
    out = prepare_model(_args(model_dir=str(d)), log)
    assert out == d / "ggml-model-i2_s.gguf" and out.is_file()
    first = out.stat().st_mtime_ns
    assert "converting" in log.getvalue()
    log = io.StringIO()
    assert prepare_model(_args(model_dir=str(d)), log) == out
    assert out.stat().st_mtime_ns == first and "not converting again" in log.getvalue()
    # a newer checkpoint file makes it convert again
    later = out.stat().st_mtime + 10
    os.utime(d / "model.safetensors", (later, later))
    prepare_model(_args(model_dir=str(d)), io.StringIO())
    assert out.stat().st_mtime_ns != first


@pytest.mark.parametrize("quant_embd", [False, True])
def test_embedding_is_q6_k(ckpt: Path, tmp_path: Path, quant_embd: bool) -> None:
    """The measured default (docs/bench/README.md); --quant-embd only exists for bitnet.cpp's command line."""
    d = shutil.copytree(ckpt, tmp_path / "m")
    log = io.StringIO()
    _, tensors = read_gguf(prepare_model(_args(model_dir=str(d), quant_embd=quant_embd), log))
    assert tensors["token_embd.weight"].ggml_type == 14  # GGML_TYPE_Q6_K
    assert tensors["blk.0.attn_q.weight"].ggml_type == 36
    assert "embedding q6_k" in log.getvalue()


@pytest.mark.parametrize(("qt", "machine", "hint"), [("tl1", "x86_64", "use -q tl2 or i2_s"), ("tl2", "aarch64", "use -q tl1 or i2_s"),
                                                    ("tl2", "riscv64", "use -q i2_s")])
def test_tl_type_of_another_cpu_family_refused(qt: str, machine: str, hint: str) -> None:
    """bitnet.cpp's pairing (TL1 on ARM, TL2 on x86), refused in one line before anything is built."""
    with pytest.raises(BitnetError, match=f"-q {qt} is the lookup-table layout for .* CPUs and this one is {machine}: {hint}"):
        check_quant_type(qt, machine)
    check_quant_type("i2_s", machine)
    check_quant_type({"tl1": "tl2", "tl2": "tl1"}[qt], {"tl1": "x86_64", "tl2": "aarch64"}[qt])


def test_md_converts_to_this_cpus_tl_type(ckpt: Path, tmp_path: Path) -> None:
    """-q tl2 (x86) / tl1 (ARM) writes the same ternary weights and scales as -q i2_s, in the TL layout."""
    qt = {"x86": "tl2", "arm": "tl1"}.get(cpu_family())
    if qt is None:
        pytest.skip("no lookup-table type for this CPU family")
    d = shutil.copytree(ckpt, tmp_path / "m")
    meta, tl = read_gguf(prepare_model(_args(model_dir=str(d), quant_type=qt), io.StringIO()))
    _, i2s = read_gguf(prepare_model(_args(model_dir=str(d)), io.StringIO()))
    fmt, key, value = (TL2, TL2_LAYOUT_KEY, TL2_LAYOUT) if qt == "tl2" else (TL1, TL1_LAYOUT_KEY, TL1_LAYOUT)
    assert meta[key] == value and meta["general.file_type"] == FILE_TYPES[qt]
    name = "blk.0.ffn_down.weight"
    cols, rows = i2s[name].ne
    assert tl[name].ggml_type == {"tl1": 38, "tl2": 43}[qt]
    t_tl, s_tl = fmt.unpack(tl[name].data, rows, cols)
    t_i2s, s_i2s = I2S.unpack(i2s[name].data, rows * cols)
    assert s_tl == s_i2s and np.array_equal(t_tl, t_i2s.reshape(rows, cols))


def test_md_without_checkpoint(tmp_path: Path) -> None:
    with pytest.raises(BitnetError, match="no Hugging Face checkpoint"):
        prepare_model(_args(model_dir=str(tmp_path)), io.StringIO())
    with pytest.raises(BitnetError, match="folder not found"):
        prepare_model(_args(model_dir=str(tmp_path / "nope")), io.StringIO())


def test_md_with_only_a_gguf_uses_it(tmp_path: Path) -> None:
    """microsoft/BitNet-b1.58-2B-4T-gguf: the folder holds the official GGUF and nothing to convert."""
    gguf = tmp_path / "ggml-model-i2_s.gguf"
    gguf.write_bytes(b"GGUF....")
    log = io.StringIO()
    assert prepare_model(_args(model_dir=str(tmp_path)), log) == gguf
    assert "using it as is" in log.getvalue()


def test_repo_names() -> None:
    assert model_name("microsoft/BitNet-b1.58-2B-4T") == "BitNet-b1.58-2B-4T"
    assert model_name("tiiuae/Falcon3-7B-Instruct-1.58bit") == "Falcon3-7B-Instruct-1.58bit"
    assert model_name("someone/other-model") == "other-model"
    assert "1bitLLM/bitnet_b1_58-3B" in KNOWN_REPOS and "tiiuae/Falcon-E-3B-Base" in KNOWN_REPOS


def test_hr_uses_an_existing_local_folder_offline(ckpt: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    shutil.copytree(ckpt, tmp_path / "BitNet-b1.58-2B-4T")
    log = io.StringIO()
    out = prepare_model(_args(model_dir=str(tmp_path), hf_repo="microsoft/BitNet-b1.58-2B-4T"), log)
    assert out == tmp_path / "BitNet-b1.58-2B-4T" / "ggml-model-i2_s.gguf" and out.is_file()
    assert "no download" in log.getvalue()


def test_hr_offline_without_folder(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    with pytest.raises(BitnetError, match="HF_HUB_OFFLINE is set"):
        prepare_model(_args(model_dir=str(tmp_path), hf_repo="1bitLLM/bitnet_b1_58-large"), io.StringIO())


def test_hr_downloads_with_snapshot_download(ckpt: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The hub path, with snapshot_download served from a local folder (no network here)."""
    huggingface_hub = pytest.importorskip("huggingface_hub")
    monkeypatch.delenv("HF_HUB_OFFLINE", raising=False)
    calls: list[dict[str, object]] = []

    def fake_snapshot_download(repo_id: str, local_dir: str, **kw: object) -> str:
        calls.append({"repo_id": repo_id, "local_dir": local_dir, **kw})
        shutil.copytree(ckpt, local_dir, dirs_exist_ok=True)
        return local_dir

    monkeypatch.setattr(huggingface_hub, "snapshot_download", fake_snapshot_download)
    out = prepare_model(_args(model_dir=str(tmp_path / "models"), hf_repo="1bitLLM/bitnet_b1_58-large"), io.StringIO())
    assert calls == [{"repo_id": "1bitLLM/bitnet_b1_58-large", "local_dir": str(tmp_path / "models" / "bitnet_b1_58-large")}]
    assert out == tmp_path / "models" / "bitnet_b1_58-large" / "ggml-model-i2_s.gguf" and out.is_file()


def test_hr_download_failure_is_one_line(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    huggingface_hub = pytest.importorskip("huggingface_hub")
    monkeypatch.delenv("HF_HUB_OFFLINE", raising=False)

    def failing(repo_id: str, local_dir: str, **kw: object) -> str:
        raise OSError("connection refused\nmore detail")

    monkeypatch.setattr(huggingface_hub, "snapshot_download", failing)
    with pytest.raises(BitnetError, match=r"-hr a/b: download failed \(OSError: connection refused\)$"):
        prepare_model(_args(model_dir=str(tmp_path), hf_repo="a/b"), io.StringIO())


def test_hr_embedding_models_refused(tmp_path: Path) -> None:
    with pytest.raises(BitnetError, match="embedding models are not supported yet"):
        prepare_model(_args(model_dir=str(tmp_path), hf_repo="microsoft/bitnet-embedding-0.6b"), io.StringIO())
