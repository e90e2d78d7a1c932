"""`bitnet_gguf.Llama`: the Python API's bad inputs raise BitnetError with one line naming the file or argument
(an API's "non-zero exit"), before llama.cpp sees them where they can be judged, and leave no file behind."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from bitnet_gguf.errors import BitnetError

from .common import assert_one_line_failure, snapshot
from .test_bad_run_inference import _closed_port

T = "{w}/t.jinja"


def tpl(data: bytes):
    return lambda ctx: (ctx["w"] / "t.jinja").write_bytes(data)


# (id, model (a ctx key or a literal path template), kwargs, expected substring, make)
CASES: list[tuple[str, Any, dict[str, Any], str, Any]] = [
    ("missing", "{w}/nope.gguf", {}, "model not found: {w}/nope.gguf", None),
    ("missing-default-name", "{w}/m/ggml-model-i2_s.gguf", {}, "python setup_env.py -md {w}/m -q i2_s", None),
    ("folder", "{w}", {}, "{w} is a folder, not a GGUF file", None),
    ("empty-path", "", {}, "is a folder, not a GGUF file", None),
    ("dev-null", "/dev/null", {}, "model not found: /dev/null", None),
    ("none", None, {}, "model_path: expected a GGUF file path, got NoneType", None),
    ("int", 42, {}, "model_path: expected a GGUF file path, got int", None),
    ("list", ["a.gguf"], {}, "model_path: expected a GGUF file path, got list", None),
    ("empty-file", "{empty}", {}, "{empty} is not a GGUF file", None),
    ("text-file", "{text}", {}, "{text} is not a GGUF file", None),
    ("random-bytes", "{random}", {}, "{random} is not a GGUF file", None),
    ("magic-only", "{magic_only}", {}, "{magic_only}: not a readable GGUF file", None),
    ("header-cut", "{header_cut}", {}, "{header_cut}: not a readable GGUF file", None),
    ("version-1", "{version1}", {}, "{version1}: not a readable GGUF file", None),
    ("bitnetcpp-tl2", "{bitnetcpp_tl2}", {}, "{bitnetcpp_tl2} is a bitnet.cpp TL2 file", None),
    ("truncated-half", "{half}", {}, "{half}: llama.cpp cannot load it", None),
    ("truncated-tail", "{tail_cut}", {}, "{tail_cut}: llama.cpp cannot load it", None),
    ("bad-tensor-type", "{badtype}", {}, "{badtype}: not a readable GGUF file (99 is not a valid", None),  # memory check
    ("n-ctx-negative", "{good}", {"n_ctx": -1}, "n_ctx=-1: expected an integer >= 0", None),
    ("n-ctx-text", "{good}", {"n_ctx": "2048"}, "n_ctx='2048': expected an integer", None),
    ("n-ctx-float", "{good}", {"n_ctx": 512.5}, "n_ctx=512.5: expected an integer", None),
    ("n-ctx-bool", "{good}", {"n_ctx": True}, "n_ctx=True: expected an integer", None),
    ("n-threads-zero", "{good}", {"n_threads": 0}, "n_threads=0: expected an integer >= 1", None),
    ("n-threads-negative", "{good}", {"n_threads": -4}, "n_threads=-4: expected an integer >= 1", None),
    ("n-threads-text", "{good}", {"n_threads": "2"}, "n_threads='2': expected an integer", None),
    ("n-threads-batch-zero", "{good}", {"n_threads_batch": 0}, "n_threads_batch=0: expected an integer >= 1", None),
    ("n-batch-zero", "{good}", {"n_batch": 0}, "n_batch=0: expected an integer >= 1", None),
    ("n-batch-negative", "{good}", {"n_batch": -512}, "n_batch=-512: expected an integer >= 1", None),
    ("n-ubatch-zero", "{good}", {"n_ubatch": 0}, "n_ubatch=0: expected an integer >= 1", None),
    ("template-unknown", "{good}", {"chat_template": "chatml9"}, "unknown chat template 'chatml9'", None),
    ("template-missing-file", "{good}", {"chat_template": "{w}/none.jinja"}, "unknown chat template '{w}/none.jinja'", None),
    ("template-binary", "{good}", {"chat_template": T}, f"--chat-template {T}: cannot be read as a UTF-8 Jinja file",
     tpl(b"\x89PNG\r\n\x1a\n\xff\x00")),
    ("template-nul", "{good}", {"chat_template": T}, "expected a Jinja text file, got binary data", tpl(b"{{ a }}\0\0")),
    ("template-empty", "{good}", {"chat_template": T}, "expected a Jinja text file, got an empty file", tpl(b"")),
    ("template-whitespace", "{good}", {"chat_template": T}, "got an empty file", tpl(b"  \n\t\n")),
    ("template-syntax", "{good}", {"chat_template": T}, "not a valid Jinja template (line 1", tpl(b"{% if %}")),
    ("template-unclosed", "{good}", {"chat_template": T}, "not a valid Jinja template", tpl(b"{% for m in messages %}{{ m }}")),
    ("template-not-str", "{good}", {"chat_template": 3}, "chat_template: expected a name or a Jinja file path, got int", None),
    ("template-folder", "{good}", {"chat_template": "{w}"}, "unknown chat template", None),
    ("model-path-bytes", b"x.gguf", {}, "model_path: expected a GGUF file path, got bytes", None),
    # RPC workers: checked before llama.cpp connects (a worker that is down would make it abort the process)
    ("rpc-bad-port", "{good}", {"rpc_servers": "127.0.0.1:0"}, "rpc_servers '127.0.0.1:0': port '0' is not a port", None),
    ("rpc-empty", "{good}", {"rpc_servers": ""}, "rpc_servers '': entry 1 is empty", None),
    ("rpc-not-str", "{good}", {"rpc_servers": ["127.0.0.1:50052"]}, "rpc_servers: expected a string HOST:PORT", None),
    ("rpc-refused", "{good}", {"rpc_servers": "127.0.0.1:{closed_port}"}, "RPC worker 127.0.0.1:{closed_port}: connection refused",
     lambda ctx: ctx.update(closed_port=_closed_port())),
    ("tensor-split-without-rpc", "{good}", {"tensor_split": [1, 1]}, "tensor_split needs rpc_servers", None),
]


@pytest.fixture(scope="module")
def Llama() -> Any:  # noqa: N802
    from bitnet_gguf import Llama

    return Llama


@pytest.fixture(scope="module")
def ctx_base(bad_ggufs: dict[str, Path], tiny_i2s: Path, build_dir: Path) -> dict[str, Any]:
    return {**bad_ggufs, "good": tiny_i2s}


def _fill(v: Any, ctx: dict[str, Any]) -> Any:
    return v.format(**{k: str(x) for k, x in ctx.items()}) if isinstance(v, str) else v


@pytest.mark.parametrize("case", [pytest.param(c, id=c[0]) for c in CASES])
def test_llama_bad_input(case: tuple[str, Any, dict[str, Any], str, Any], Llama: Any, ctx_base: dict[str, Any],  # noqa: N803
                         tmp_path: Path) -> None:
    _, model, kwargs, expect, make = case
    ctx = {**ctx_base, "w": tmp_path}
    if make:
        make(ctx)
    before = snapshot([tmp_path])
    with pytest.raises(BitnetError) as e:
        Llama(_fill(model, ctx), **{k: _fill(v, ctx) for k, v in kwargs.items()})
    # an API's failure: the message is the one line a command would print after "error: "
    assert_one_line_failure(1, f"error: {e.value}\n", _fill(expect, ctx), before, [tmp_path])


def test_llama_logits_of_nothing(Llama: Any, ctx_base: dict[str, Any]) -> None:  # noqa: N803
    llm = Llama(str(ctx_base["good"]), n_ctx=64)
    try:
        with pytest.raises(BitnetError, match="logits\\(\\) needs at least one token"):
            llm.logits([])
    finally:
        llm.close()
