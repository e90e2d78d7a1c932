"""bitnet_gguf.Llama: llama-cpp-python on our libllama (completion, chat, tokens, logits)."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from bitnet_gguf.errors import BitnetError
from bitnet_gguf.runtime.threads import physical_cores

from .conftest import REPO_ROOT


def run_python(code: str, **env: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120, cwd=REPO_ROOT,
                          env={**os.environ, **env})


def test_import_bitnet_gguf_does_not_load_llama_cpp() -> None:
    r = run_python("import sys, bitnet_gguf; assert 'llama_cpp' not in sys.modules; print(bitnet_gguf.__version__)")
    assert r.returncode == 0, r.stderr


def test_missing_build_is_a_clear_error(tmp_path: Path) -> None:
    r = run_python("from bitnet_gguf import Llama", BITNET_GGUF_BUILD_DIR=str(tmp_path))
    assert r.returncode != 0
    assert "BitnetError" in r.stderr and "run python setup_env.py" in r.stderr


@pytest.fixture(scope="module")
def llm(tiny_i2s: Path, bin_dir: Path) -> Iterator[Any]:
    from bitnet_gguf import Llama

    # logits_all keeps n_ctx x n_vocab floats; a small context keeps that at 32 MB
    model = Llama(tiny_i2s, n_ctx=64, logits_all=True)
    yield model
    model.close()


def test_uses_our_library(llm: Any, bin_dir: Path) -> None:
    import llama_cpp

    assert Path(llama_cpp.llama_cpp._lib._name).resolve().parent == bin_dir.resolve()
    assert llm.context_params.n_threads == physical_cores()  # the command line's default


def test_missing_model(tmp_path: Path, llm: Any) -> None:
    from bitnet_gguf import Llama

    with pytest.raises(BitnetError, match="setup_env.py"):
        Llama(tmp_path / "missing.gguf")


def test_tokenize_detokenize(llm: Any) -> None:
    tokens = llm.tokenize(b"Hello world", add_bos=True, special=True)
    assert tokens[0] == llm.token_bos() == 128000
    assert llm.detokenize(tokens[1:]) == b"Hello world"


def test_completion(llm: Any) -> None:
    r = llm("Once upon a time", max_tokens=4, temperature=0)
    assert r["choices"][0]["text"] != "" and r["usage"]["completion_tokens"] == 4


def test_chat_prompt_has_one_bos(llm: Any) -> None:
    messages = [{"role": "user", "content": "Hi"}]
    r = llm.create_chat_completion(messages, max_tokens=3, temperature=0)
    assert isinstance(r["choices"][0]["message"]["content"], str)
    assert llm.chat_template.name == "bitnet"
    # <|begin_of_text|> User : Hi <|eot_id|> Assistant : ' ' = 8 tokens: exactly one BOS
    assert r["usage"]["prompt_tokens"] == 8
    assert llm.input_ids[0] == llm.token_bos() and llm.token_bos() not in llm.input_ids[1: r["usage"]["prompt_tokens"]]


def test_logits_all(llm: Any) -> None:
    prompt = "Once upon a time"
    n = len(llm.tokenize(prompt.encode(), add_bos=True, special=True))
    logits = llm.logits(prompt)
    assert logits.shape == (n, llm.n_vocab()) and np.isfinite(logits).all()
    first = llm(prompt, max_tokens=1, temperature=0)["choices"][0]["text"]
    assert llm.detokenize([int(logits[-1].argmax())]).decode() == first
