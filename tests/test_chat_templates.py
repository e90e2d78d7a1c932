"""Chat template choice and rendering (pure Python, plus the GGUF header reader on a real file)."""

from __future__ import annotations

from pathlib import Path

import pytest

from bitnet_gguf.errors import BitnetError
from bitnet_gguf.formats.gguf_read import read_metadata
from bitnet_gguf.runtime import chat_templates as ct

CHAT = [
    {"role": "system", "content": "Be brief."},
    {"role": "user", "content": "Hi"},
    {"role": "assistant", "content": "Hello!"},
    {"role": "user", "content": "Who are you?"},
]


def test_bitnet_format_matches_bitnet_cpp() -> None:
    text = ct.render(ct.BUILTIN["bitnet"], CHAT, bos_token="<|begin_of_text|>")
    assert text == ("<|begin_of_text|>System: Be brief.User: Hi<|eot_id|>Assistant: Hello!<|eot_id|>"
                    "User: Who are you?<|eot_id|>Assistant: ")


def test_llama3_format() -> None:
    text = ct.render(ct.BUILTIN["llama3"], CHAT[1:2], bos_token="<|begin_of_text|>")
    assert text == ("<|begin_of_text|><|start_header_id|>user<|end_header_id|>\n\nHi<|eot_id|>"
                    "<|start_header_id|>assistant<|end_header_id|>\n\n")


def test_falcon3_format() -> None:
    text = ct.render(ct.BUILTIN["falcon3"], CHAT, eos_token="<|endoftext|>")
    assert text == ("<|system|>\nBe brief.\n<|user|>\nHi\n<|assistant|>\nHello!<|endoftext|>\n"
                    "<|user|>\nWho are you?\n<|assistant|>\n")


@pytest.mark.parametrize(("meta", "expected"), [
    ({"general.architecture": "bitnet-b1.58", "tokenizer.ggml.pre": "llama-bpe"}, "bitnet"),
    ({"general.architecture": "bitnet-25"}, "bitnet"),
    ({"general.architecture": "llama", "tokenizer.ggml.pre": "llama-bpe"}, "llama3"),
    ({"general.architecture": "llama", "tokenizer.ggml.pre": "falcon3"}, "falcon3"),
    ({"general.architecture": "llama", "tokenizer.ggml.pre": "falcon_e"}, "falcon3"),
])
def test_builtin_by_architecture(meta: dict[str, str], expected: str) -> None:
    t = ct.select(meta)
    assert (t.name, t.text, t.from_gguf) == (expected, ct.BUILTIN[expected], False)
    assert ct.llama_cpp_args(t) == ["--jinja", "--chat-template", ct.BUILTIN[expected]]


def test_gguf_template_wins_unless_overridden(tmp_path: Path) -> None:
    meta = {"general.architecture": "bitnet-b1.58", "tokenizer.chat_template": "{{ messages[0]['content'] }}"}
    own = ct.select(meta)
    assert own.from_gguf and own.name == "gguf" and ct.llama_cpp_args(own) == ["--jinja"]
    assert ct.select(meta, "gguf") == own
    assert ct.select(meta, "bitnet").name == "bitnet"
    f = tmp_path / "t.jinja"
    f.write_text("{{ 'X' }}")
    assert ct.select(meta, str(f)).text == "{{ 'X' }}"
    with pytest.raises(BitnetError, match="unknown chat template"):
        ct.select(meta, "nope")


def test_read_metadata_of_tiny_model(tiny_i2s: Path) -> None:
    meta = read_metadata(tiny_i2s)
    assert meta["general.architecture"] == "bitnet-b1.58"
    assert meta["tokenizer.ggml.pre"] == "llama-bpe"
    assert "tokenizer.ggml.tokens" not in meta  # arrays are skipped
    assert ct.select(meta).name == "bitnet"
