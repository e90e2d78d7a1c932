"""run_inference.py: bitnet.cpp's command line, run by our build's llama-completion.

bitnet.cpp calls llama-cli; in the pinned llama.cpp, llama-cli became a chat-only front end and the old
prompt-in, text-out program is llama-completion, which still has -cnv, -sys and --no-display-prompt.
"""

from __future__ import annotations

import argparse
import os
import shlex
import signal
import subprocess
import sys

from ..errors import ArgumentParser, BitnetError, run_cli
from ..formats.gguf_read import check_gguf, read_metadata
from ..paths import BUILD_DIR_HELP, build_dir
from . import chat_templates, memory_fit, rpc
from .locate import DEFAULT_MODEL, find_tool, resolve_model
from .quiet_run import failure_code, failure_line, run_quietly, wait_child
from .threads import physical_cores


def split_passthrough(argv: list[str]) -> tuple[list[str], list[str]]:
    """Our options, and whatever follows `--` (handed to llama.cpp unchanged)."""
    if "--" in argv:
        i = argv.index("--")
        return argv[:i], argv[i + 1:]
    return argv, []


def add_shared_options(p: argparse.ArgumentParser, tool: str, template_for: str) -> None:
    """The options run_inference.py and run_server.py share (model, threads, chat template, build, dry run)."""
    p.add_argument("-m", "--model", default=str(DEFAULT_MODEL), help=f"GGUF model (default: {DEFAULT_MODEL})")
    p.add_argument("-t", "--threads", type=int, help=f"threads (default: the physical cores, {physical_cores()} here)")
    p.add_argument("--chat-template", metavar="NAME|FILE",
                   help=f"chat template for {template_for}: {', '.join(chat_templates.BUILTIN)}, gguf, or a Jinja file "
                        "(default: the model's own, else chosen by architecture)")
    p.add_argument("--build-dir", help=BUILD_DIR_HELP)
    p.add_argument("--dry-run", action="store_true", help=f"print the {tool} command instead of running it")
    p.add_argument(memory_fit.NO_CHECK_FLAG, action="store_true",
                   help="start even when the weights and the KV cache do not fit in the available memory (every "
                        "token would then re-read the file from disk)")


def parser() -> argparse.ArgumentParser:
    p = ArgumentParser(
        prog="run_inference.py",
        description="Run a BitNet GGUF on the CPU (bitnet.cpp-compatible flags). "
                    "Options after -- go to llama-completion unchanged.")
    add_shared_options(p, "llama-completion", "-cnv")
    p.add_argument("-p", "--prompt", help="prompt to complete; with -cnv, the system prompt")
    p.add_argument("-n", "--n-predict", type=int, default=128, help="tokens to generate (default: 128; -1 = until end of text)")
    p.add_argument("-c", "--ctx-size", type=int, default=2048, help="context size in tokens (default: 2048)")
    p.add_argument("-temp", "--temperature", type=float, default=0.8, help="sampling temperature, 0 = greedy (default: 0.8)")
    p.add_argument("-b", "--batch-size", type=int, help="logical batch size for prompt processing (llama.cpp default: 2048)")
    p.add_argument("--seed", type=int, help="sampling seed (default: random)")
    p.add_argument("--top-k", type=int, help="top-k sampling (llama.cpp default: 40; 0 = off)")
    p.add_argument("--top-p", type=float, help="top-p sampling (llama.cpp default: 0.95; 1.0 = off)")
    p.add_argument("--repeat-penalty", type=float, help="penalty for repeated tokens (llama.cpp default: 1.0 = off)")
    p.add_argument("-cnv", "--conversation", action="store_true",
                   help="chat interactively; the prompt becomes the system prompt")
    p.add_argument("-v", "--verbose", action="store_true",
                   help="show llama.cpp's log (loader, sampler, perf counters) instead of one speed line")
    p.add_argument("--quiet", action="store_true", help=argparse.SUPPRESS)  # the default now; kept for old scripts
    rpc.add_rpc_options(p, stall=True)
    return p


def check_numbers(args: argparse.Namespace, rules: dict[str, tuple[str, float | None, float | None]]) -> None:
    """Each rule: attribute -> (flag, lowest, highest) allowed; None values (flag not given) pass."""
    for attr, (flag, lo, hi) in rules.items():
        v = getattr(args, attr, None)
        if v is None:
            continue
        if v != v or (lo is not None and v < lo) or (hi is not None and v > hi):  # v != v: NaN
            if lo is not None and hi is not None:
                want = f"between {lo:g} and {hi:g}"
            else:
                want = f"at least {lo:g}" if lo is not None else f"at most {hi:g}"
            raise BitnetError(f"{flag} {v}: expected a value {want}")


INFERENCE_RULES: dict[str, tuple[str, float | None, float | None]] = {
    "threads": ("-t/--threads", -1, 4096), "n_predict": ("-n/--n-predict", -2, None), "ctx_size": ("-c/--ctx-size", 0, None),
    "temperature": ("-temp/--temperature", 0, 1e6), "batch_size": ("-b/--batch-size", 1, None), "top_k": ("--top-k", 0, None),
    "top_p": ("--top-p", 0, 1), "repeat_penalty": ("--repeat-penalty", 0, 1e6), "seed": ("--seed", -1, 2**32 - 1),
}


def build_command(args: argparse.Namespace, passthrough: list[str]) -> list[str]:
    check_numbers(args, INFERENCE_RULES)
    exe = find_tool("llama-completion", build_dir(args.build_dir))
    model = resolve_model(args.model)
    threads = args.threads if args.threads and args.threads > 0 else physical_cores()
    cmd = [str(exe), "-m", str(model), "-n", str(args.n_predict), "-t", str(threads), "-c", str(args.ctx_size),
           "--temp", str(args.temperature)]
    optional = [("-b", args.batch_size), ("--seed", args.seed), ("--top-k", args.top_k), ("--top-p", args.top_p),
                ("--repeat-penalty", args.repeat_penalty)]
    cmd += [item for flag, value in optional if value is not None for item in (flag, str(value))]
    plan = rpc.plan_from_args(args)
    if plan is not None:
        cmd += plan.args
    if args.conversation:
        template = chat_templates.select(read_metadata(model), args.chat_template)
        cmd += ["-cnv", *chat_templates.llama_cpp_args(template)]
        if args.prompt:
            cmd += ["-sys", args.prompt]
    else:
        if args.prompt is None:
            raise BitnetError("-p/--prompt is required (or use -cnv to chat)")
        check_gguf(model)
        # -no-cnv: llama-completion would otherwise switch to chat mode whenever the GGUF has a template
        cmd += ["-no-cnv", "-p", args.prompt]
    return cmd + passthrough


def main(argv: list[str] | None = None) -> int:
    return run_cli(lambda: _main(argv))


def _main(argv: list[str] | None) -> int:
    ours, passthrough = split_passthrough(list(sys.argv[1:] if argv is None else argv))
    args = parser().parse_args(ours)
    cmd = build_command(args, passthrough)
    if args.dry_run:
        print(shlex.join(cmd))
        return 0
    guard = None
    plan = rpc.plan_from_args(args)
    if plan is None and not args.no_memory_check:  # with RPC workers, each host holds only its share
        memory_fit.check_fits(resolve_model(args.model), args.ctx_size)
    if plan is not None:
        rpc.check_plan(plan)  # a worker that is down, busy or of another version: one line, before loading
        # waiting for the user in -cnv looks like waiting for a frozen worker: no stall bound there
        guard = rpc.StallGuard(plan.endpoints, 0 if args.conversation else args.rpc_timeout, "llama-completion")
    if not args.verbose:
        return run_quietly(cmd, guard)
    sys.stdout.flush()
    sys.stderr.flush()
    if guard is not None:
        return run_verbose_guarded(cmd, guard)
    if os.name == "posix":
        # Become llama-completion: tokens stream straight to the terminal, Ctrl-C and stdin (for -cnv) reach it
        # directly, and its exit code is ours.
        os.execv(cmd[0], cmd)
    try:
        return subprocess.call(cmd)
    except KeyboardInterrupt:
        return 130


def run_verbose_guarded(cmd: list[str], guard: rpc.StallGuard) -> int:
    """-v with RPC workers: llama.cpp's log as it comes, but as a child, so that the guard can stop it."""
    proc = subprocess.Popen(cmd)
    previous = signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl-C reaches llama-completion directly
    try:
        rc, _, stopped = wait_child(proc, guard)
    finally:
        signal.signal(signal.SIGINT, previous)
    if stopped is None and rc in (0, -signal.SIGINT):
        return 0 if rc == 0 else 130
    print(f"error: {failure_line(os.path.basename(cmd[0]), rc, '', stopped, guard)}", file=sys.stderr)
    return failure_code(rc, stopped)
