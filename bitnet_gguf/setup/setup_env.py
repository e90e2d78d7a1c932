"""`python setup_env.py`: pinned source -> patches -> CMake build -> (optionally) the model as GGUF."""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

from .. import paths
from ..errors import BitnetError
from ..formats.constants import TERNARY_TYPES
from . import build, kernel_gen, source, tl_autotune
from .steps import StepRunner


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="setup_env.py", description="Set up bitnet-gguf: build llama.cpp with I2_S and convert a model.")
    p.add_argument("-hr", "--hf-repo", help="Hugging Face repo to download into MODEL_DIR/<name> first")
    p.add_argument("-md", "--model-dir", help="model folder (Hugging Face layout) to convert to GGUF")
    p.add_argument("-ld", "--log-dir", default="logs", help="folder for one log per step (default: logs)")
    p.add_argument("-q", "--quant-type", default="i2_s", choices=TERNARY_TYPES, help="weight type of the GGUF (default: i2_s)")
    p.add_argument("--quant-embd", action="store_true", help="accepted for bitnet.cpp compatibility: the embedding is Q6_K already")
    p.add_argument("-p", "--use-pretuned", action="store_true", help="accepted for bitnet.cpp compatibility; kernels need no tuning files")
    p.add_argument("--build-dir", help=paths.BUILD_DIR_HELP)
    p.add_argument("--compiler", choices=sorted(build.COMPILERS), help="compiler family (default: $CC/$CXX or gcc)")
    p.add_argument("--portable", action="store_true", help="build every CPU variant and pick at run time instead of -march=native")
    p.add_argument("-j", "--jobs", type=int, default=os.cpu_count() or 2, help="parallel compile jobs")
    p.add_argument("--source-dir", help=argparse.SUPPRESS)  # tests: unpack elsewhere
    p.add_argument("--patches-dir", help=argparse.SUPPRESS)
    p.add_argument("--source-only", action="store_true", help="stop after unpacking and patching the source")
    return p


def model_on_disk(args: argparse.Namespace) -> bool:
    """-md names a checkpoint folder or a GGUF that is already here (with -hr it is downloaded after the build)."""
    from ..convert.checkpoint import has_checkpoint

    if not args.model_dir or args.hf_repo:
        return False
    md = Path(args.model_dir)
    return (md.suffix == ".gguf" and md.is_file()) or has_checkpoint(md)


def main(argv: list[str] | None = None) -> int:
    args = parser().parse_args(argv)
    log_dir = Path(args.log_dir)
    if not log_dir.is_absolute():
        log_dir = Path.cwd() / log_dir
    want_model = bool(args.model_dir or args.hf_repo)
    try:
        paths.checkout("setup_env.py")
        build_dir = paths.build_dir(args.build_dir).resolve()
        source_dir = Path(args.source_dir).resolve() if args.source_dir else paths.source_dir()
        patches_dir = Path(args.patches_dir) if args.patches_dir else paths.patches_dir()
        tune = want_model and args.quant_type == "tl2" and not args.portable
        runner = StepRunner(log_dir, total=1 if args.source_only else 3 + (1 if want_model else 0) + (1 if tune else 0))
        if want_model:  # refuse an unsupported -q before a 10-minute build, not after
            from .prepare_model import check_quant_type

            check_quant_type(args.quant_type)
        pin = paths.load_pin()
        cc, cxx = build.find_compilers(args.compiler)
        runner.step("source", f"llama.cpp b{pin.llama_cpp_build} ({pin.package} {pin.version}) + patches",
                    lambda log: source.prepare_source(pin, dest=source_dir, patches_dir=patches_dir, log=log))
        if args.source_only:
            return 0
        # the model's shapes get their own kernel copies (any other shape runs the general ones); TL2 setups tune
        # the kernels' speed parameters on this machine first (native builds only)
        # (without a model the last model's copies are kept: no rebuild)
        k_values = kernel_gen.model_k_values(Path(args.model_dir)) if model_on_disk(args) else kernel_gen.recorded_k_values(build_dir)
        if tune:
            params = runner.step("tune", "TL2 kernel autotune (under 2 minutes)",
                                 lambda log: tl_autotune.autotune(build_dir, k_values, cc, log))
        else:
            params = tl_autotune.recorded_params(build_dir)
        generated = kernel_gen.emit(build_dir, k_values, params)
        cmake_args = build.cmake_args(pin, cc, cxx, args.portable, source_dir, generated)
        runner.step("generate_build_files", "cmake configure",
                    lambda log: build.configure(runner, log, build_dir, cmake_args))
        runner.step("compile", f"build {len(build.TARGETS)} targets with {args.jobs} jobs",
                    lambda log: build.build(runner, log, build_dir, args.jobs))
        if want_model:
            from .prepare_model import prepare_model  # the converter is only needed for this step

            runner.step("convert", "convert the model to GGUF", lambda log: prepare_model(args, log))
    except BitnetError as e:
        print(f"error: {e}", file=sys.stderr)
        return 1
    shown = log_dir.relative_to(Path.cwd()) if log_dir.is_relative_to(Path.cwd()) else log_dir
    print(f"ready: {build_dir / 'bin'} (logs in {shown})", file=sys.stderr)
    return 0
