"""run_inference.py: bitnet.cpp's flags on our llama-completion, one-line hints, chat mode."""

from __future__ import annotations

import os
import re
import shlex
from pathlib import Path

import pytest

from bitnet_gguf.runtime.locate import DEFAULT_MODEL
from bitnet_gguf.runtime.threads import physical_cores

from .conftest import REPO_ROOT
from .server_helpers import cli_generated_text, run_inference


def one_line_error(stderr: str) -> str:
    lines = stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: "), stderr
    return lines[0]


def test_physical_cores() -> None:
    n = physical_cores()
    logical = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1
    assert 1 <= n <= logical


def test_missing_model_hint(tmp_path: Path) -> None:
    missing = tmp_path / "m" / "ggml-model-i2_s.gguf"
    r = run_inference("-m", str(missing), "-p", "hi")
    assert r.returncode == 1
    line = one_line_error(r.stderr)
    assert str(missing) in line and f"python setup_env.py -md {missing.parent} -q i2_s" in line


def test_default_model_hint(tmp_path: Path) -> None:
    if (REPO_ROOT / DEFAULT_MODEL).exists():
        pytest.skip("the default model exists in this checkout")
    r = run_inference("-p", "hi")
    assert r.returncode == 1
    line = one_line_error(r.stderr)
    assert str(DEFAULT_MODEL) in line and "python setup_env.py -md models/tiny-shakespeare" in line


def test_missing_build_hint(tmp_path: Path, tiny_i2s: Path) -> None:
    r = run_inference("-m", str(tiny_i2s), "-p", "hi", "--build-dir", str(tmp_path))
    assert r.returncode == 1
    assert "run python setup_env.py" in one_line_error(r.stderr)


def test_not_a_gguf(tmp_path: Path, bin_dir: Path) -> None:
    bogus = tmp_path / "model.gguf"
    bogus.write_text("not a model")
    r = run_inference("-m", str(bogus), "-p", "hi")
    assert r.returncode == 1
    assert "not a GGUF file" in one_line_error(r.stderr)


def test_prompt_required_without_cnv(tiny_i2s: Path) -> None:
    r = run_inference("-m", str(tiny_i2s))
    assert r.returncode == 1 and "-p/--prompt" in one_line_error(r.stderr)


def test_flags_map_to_llama_completion(tiny_i2s: Path) -> None:
    r = run_inference("-m", str(tiny_i2s), "-p", "hi there", "--dry-run", "-b", "1", "--seed", "7", "--top-k", "5",
                      "--top-p", "0.5", "--repeat-penalty", "1.1", "--", "--no-warmup")
    assert r.returncode == 0, r.stderr
    cmd = shlex.split(r.stdout)
    assert Path(cmd[0]).name == "llama-completion"
    opts = dict(zip(cmd[1::2], cmd[2::2], strict=False))
    # bitnet.cpp's defaults, threads = physical cores
    assert opts["-n"] == "128" and opts["-c"] == "2048" and opts["--temp"] == "0.8" and opts["-t"] == str(physical_cores())
    assert (opts["-b"], opts["--seed"], opts["--top-k"], opts["--top-p"], opts["--repeat-penalty"]) == ("1", "7", "5", "0.5", "1.1")
    assert cmd[-4:] == ["-no-cnv", "-p", "hi there", "--no-warmup"]


def test_greedy_completion_streams_text(tiny_i2s: Path) -> None:
    prompt = "Once upon a time"
    r = run_inference("-m", str(tiny_i2s), "-p", prompt, "-n", "6", "-temp", "0", "--quiet")
    assert r.returncode == 0, r.stderr
    assert cli_generated_text(r.stdout, prompt).strip() != ""
    assert "llama_model_loader" not in r.stderr  # --quiet


def test_conversation_uses_bitnet_template(tiny_i2s: Path) -> None:
    # -cnv: the prompt is the system prompt, the user's turn comes from stdin (EOF ends the chat)
    r = run_inference("-m", str(tiny_i2s), "-cnv", "-p", "You are a helpful assistant.", "-n", "4", "-temp", "0",
                      "--", "--verbose-prompt", stdin="Hello\n")
    assert r.returncode == 0, r.stderr[-3000:]
    # llama-completion prints how its template renders a sample chat
    assert "System: You are a helpful assistantUser: Hello<|eot_id|>Assistant: Hi there<|eot_id|>" in r.stderr
    # the system prompt is evaluated once, after a single BOS
    prompt_dump = r.stderr[r.stderr.index("number of tokens in prompt"):]
    assert len(re.findall(r"-> '<\|begin_of_text\|>'", prompt_dump)) == 1
    assert "-> 'System'" in prompt_dump


def test_conversation_chat_template_override(tiny_i2s: Path) -> None:
    r = run_inference("-m", str(tiny_i2s), "-cnv", "--chat-template", "llama3", "--dry-run")
    assert r.returncode == 0, r.stderr
    assert "<|start_header_id|>" in r.stdout and "--jinja" in r.stdout
    r = run_inference("-m", str(tiny_i2s), "-cnv", "--chat-template", "no-such-template", "--dry-run")
    assert r.returncode == 1 and "unknown chat template" in one_line_error(r.stderr)
