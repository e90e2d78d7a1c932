"""run_inference.py: bitnet.cpp's flags on our llama-completion, one-line hints, chat mode."""

from __future__ import annotations

import os
import re
import shlex
import subprocess
from pathlib import Path

import pytest

from bitnet_gguf.errors import BitnetError
from bitnet_gguf.runtime import locate
from bitnet_gguf.runtime.locate import DEFAULT_MODEL
from bitnet_gguf.runtime.threads import physical_cores

from .server_helpers import cli_generated_text, run_inference


def one_line_error(stderr: str) -> str:
    lines = stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: "), stderr
    return lines[0]


def test_physical_cores() -> None:
    # an independent count: distinct (socket, core) pairs that util-linux's lscpu reports for our CPUs
    cpus = os.sched_getaffinity(0)
    out = subprocess.run(["lscpu", "-p=CPU,CORE,SOCKET"], capture_output=True, text=True, check=True).stdout
    pairs = {tuple(ln.split(",")[1:]) for ln in out.splitlines() if not ln.startswith("#") and int(ln.split(",")[0]) in cpus}
    assert physical_cores() == len(pairs)


def test_missing_model_hint(tmp_path: Path) -> None:
    missing = tmp_path / "m" / "ggml-model-i2_s.gguf"
    r = run_inference("-m", str(missing), "-p", "hi")
    assert r.returncode == 1
    line = one_line_error(r.stderr)
    assert str(missing) in line and f"python setup_env.py -md {missing.parent} -q i2_s" in line


def test_default_model_hint(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    # as in a checkout without the default model: run from an empty folder, with no checkout to fall back to
    monkeypatch.chdir(tmp_path)
    monkeypatch.setattr(locate, "CHECKOUT", None)
    with pytest.raises(BitnetError) as e:
        locate.resolve_model(DEFAULT_MODEL)
    assert str(e.value) == (f"model not found: {DEFAULT_MODEL}; run python setup_env.py -md models/tiny-shakespeare "
                            "-q i2_s to make it, or pass -m path/to/model.gguf")


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


SPEED_LINE = re.compile(r"^\[prompt (\d+) tokens, ([\d.]+) t/s \| generated (\d+) tokens, ([\d.]+) t/s \| "
                        r"peak RSS (\d+) MiB\]$")


def test_greedy_completion_text_then_one_speed_line(tiny_llama_i2s: Path) -> None:
    prompt = "Once upon a time"
    r = run_inference("-m", str(tiny_llama_i2s), "-p", prompt, "-n", "6", "-temp", "0")
    assert r.returncode == 0, r.stderr
    assert cli_generated_text(r.stdout, prompt).strip() != ""
    # quiet by default: stderr is the speed line only, with llama.cpp's own counts
    lines = r.stderr.strip().splitlines()
    assert len(lines) == 1, r.stderr
    m = SPEED_LINE.match(lines[0])
    assert m, lines[0]
    prompt_tokens, gen_tokens, rss_mib = int(m[1]), int(m[3]), int(m[5])
    assert prompt_tokens == 5  # BOS + 4 tokens of the prompt (llama-bpe)
    assert gen_tokens == 5  # -n 6: the first token comes from the prompt's logits, 5 more decode runs
    assert float(m[2]) > 0 and float(m[4]) > 0 and rss_mib >= GGUF_MIB(tiny_llama_i2s)
    # -v: llama.cpp's log, as before
    r = run_inference("-m", str(tiny_llama_i2s), "-p", prompt, "-n", "6", "-temp", "0", "-v")
    assert r.returncode == 0 and "load the model" in r.stderr and "common_perf_print" in r.stderr


def GGUF_MIB(path: Path) -> int:  # noqa: N802
    """The file is mapped and read whole, so the peak RSS is at least its size."""
    return path.stat().st_size >> 20


def test_llama_cpp_failure_is_one_line(tiny_i2s: Path) -> None:
    r = run_inference("-m", str(tiny_i2s), "-p", "hi", "--", "--no-such-flag")
    assert r.returncode == 1
    line = one_line_error(r.stderr)
    assert line == "error: llama-completion exited with code 1: invalid argument: --no-such-flag (run with -v for its full log)"


def test_conversation_ends_with_speed_line(tiny_i2s: Path) -> None:
    r = run_inference("-m", str(tiny_i2s), "-cnv", "-p", "You are a helpful assistant.", "-n", "4", "-temp", "0",
                      stdin="Hello\n")
    assert r.returncode == 0, r.stderr
    assert "System: You are a helpful assistant." in r.stdout and "EOF by user" in r.stdout
    lines = r.stderr.strip().splitlines()
    assert len(lines) == 1 and SPEED_LINE.match(lines[0]), r.stderr


def test_conversation_uses_bitnet_template(tiny_i2s: Path) -> None:
    # -cnv: the prompt is the system prompt, the user's turn comes from stdin (EOF ends the chat)
    r = run_inference("-m", str(tiny_i2s), "-cnv", "-p", "You are a helpful assistant.", "-n", "4", "-temp", "0",
                      "-v", "--", "--verbose-prompt", stdin="Hello\n")
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
