"""`python setup_env.py`: pinned source -> patches -> CMake build -> (optionally) the model as GGUF."""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

from .. import paths
from ..errors import ArgumentParser, BitnetError, run_cli
from ..formats.constants import TERNARY_TYPES
from . import build, kernel_gen, source, tl_autotune
from .steps import StepRunner


def parser() -> argparse.ArgumentParser:
    p = ArgumentParser(prog="setup_env.py", description="Set up bitnet-gguf: build llama.cpp with I2_S and convert a model.")
    p.add_argument("-hr", "--hf-repo", help="Hugging Face repo to download into MODEL_DIR/<name> first")
    p.add_argument("-md", "--model-dir", help="model folder (Hugging Face layout) to convert to GGUF")
    p.add_argument("-ld", "--log-dir", default="logs", help="folder for one log per step (default: logs)")
    p.add_argument("-q", "--quant-type", default="i2_s", choices=TERNARY_TYPES, help="weight type of the GGUF (default: i2_s)")
    p.add_argument("--quant-embd", action="store_true", help="accepted for bitnet.cpp compatibility: the embedding is Q6_K already")
    p.add_argument("-p", "--use-pretuned", action="store_true", help="accepted for bitnet.cpp compatibility; kernels need no tuning files")
    p.add_argument("--build-dir", help=paths.BUILD_DIR_HELP)
    p.add_argument("--compiler", choices=sorted(build.COMPILERS), help="compiler family (default: $CC/$CXX or gcc)")
    p.add_argument("--portable", action="store_true", help="build every CPU variant and pick at run time instead of -march=native")
    p.add_argument("--target", choices=sorted(build.CROSS_TARGETS),
                   help="cross-build for this CPU architecture into build-<target>/ (one folder per ISA level; "
                        "no model conversion)")
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


def check_args(args: argparse.Namespace) -> None:
    """Flags that can be judged before anything is downloaded or built."""
    if args.jobs < 1:
        raise BitnetError(f"-j/--jobs {args.jobs}: expected at least 1")
    for flag, value in (("-ld/--log-dir", args.log_dir), ("--build-dir", args.build_dir)):
        if value is None:
            continue
        p = Path(value)
        if p.exists() and not p.is_dir():
            raise BitnetError(f"{flag} {value}: is a file, expected a folder")
        parent = next((q for q in p.absolute().parents if q.exists()), None)
        if parent is not None and not parent.is_dir():
            raise BitnetError(f"{flag} {value}: {parent} is a file, expected a folder")
    if args.model_dir and not args.hf_repo:
        md = Path(args.model_dir)
        if md.is_file() and md.suffix != ".gguf":
            raise BitnetError(f"-md/--model-dir {md}: is a file, expected a checkpoint folder or an I2_S .gguf")
        if md.suffix == ".gguf" and not md.exists():
            raise BitnetError(f"-md/--model-dir {md}: GGUF file not found")


def check_model(args: argparse.Namespace) -> None:
    """What -md / -hr name must be usable: a checkpoint folder convertible (every check but the tensor values), a
    GGUF readable and whole, a repo supported; all before the build, which takes minutes."""
    from .hub import check_repo
    from .prepare_model import FILE_TYPE_OF

    md = Path(args.model_dir) if args.model_dir else Path("models")
    if args.hf_repo:
        check_repo(args.hf_repo, md)
        return
    if md.suffix == ".gguf":
        from ..formats.constants import GGML_TYPE_I2_S
        from ..formats.gguf_read import check_whole

        tensors = check_whole(md, f"-md {md}").tensors.values()
        if not {GGML_TYPE_I2_S, FILE_TYPE_OF[args.quant_type]} & {t.ggml_type for t in tensors}:
            raise BitnetError(f"-md {md}: no I2_S tensors to convert to {args.quant_type} (give an I2_S GGUF or the checkpoint folder)")
        return
    if not model_on_disk(args):
        out = md / f"ggml-model-{args.quant_type}.gguf"
        if out.is_file() and out.stat().st_size > 0:
            return  # prepare_model uses it as it is
        if not md.is_dir():
            raise BitnetError(f"-md {md}: folder not found")
        raise BitnetError(f"-md {md}: no Hugging Face checkpoint (config.json + *.safetensors) and no {out.name}")
    from ..convert.converter import plan_conversion

    plan_conversion(md, args.quant_type)


def main(argv: list[str] | None = None) -> int:
    return run_cli(lambda: _main(argv))


def _main(argv: list[str] | None) -> int:
    args = parser().parse_args(argv)
    log_dir = Path(args.log_dir)
    if not log_dir.is_absolute():
        log_dir = Path.cwd() / log_dir
    want_model = bool(args.model_dir or args.hf_repo)
    check_args(args)
    if want_model:  # refuse an unsupported -q or a bad checkpoint before a 10-minute build, not after
        from .prepare_model import check_quant_type

        check_quant_type(args.quant_type)
        check_model(args)
    paths.checkout("setup_env.py")
    if args.target:
        return cross_build(args, log_dir)
    build_dir = paths.build_dir(args.build_dir).resolve()
    source_dir = Path(args.source_dir).resolve() if args.source_dir else paths.source_dir()
    patches_dir = Path(args.patches_dir) if args.patches_dir else paths.patches_dir()
    tune = want_model and args.quant_type == "tl2" and not args.portable
    runner = StepRunner(log_dir, total=1 if args.source_only else 3 + (1 if want_model else 0) + (1 if tune else 0))
    pin = paths.load_pin()
    cc, cxx = ("", "") if args.source_only else build.find_compilers(args.compiler)  # unpacking needs no compiler
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
    shown = log_dir.relative_to(Path.cwd()) if log_dir.is_relative_to(Path.cwd()) else log_dir
    print(f"ready: {build_dir / 'bin'} (logs in {shown})", file=sys.stderr)
    return 0


def cross_build(args: argparse.Namespace, log_dir: Path) -> int:
    """--target: the patched source, then one cross build per ISA level (build.ARM_LEVELS) in <build>/<level>.

    Nothing here runs the target's code (no autotune, no conversion: convert with the native build, the files are
    the same on every CPU); the kernel header is generated without model shapes (the general kernels).
    """
    cc = build.CROSS_TARGETS[args.target][0]
    for flag, given, why in (
        ("-md/-hr", args.model_dir or args.hf_repo, "convert with the native build: the GGUF is the same on every CPU"),
        ("--portable", args.portable, "the cross build is one folder per ISA level already"),
        ("--compiler", args.compiler, f"it compiles with {cc}"),
    ):
        if given:
            raise BitnetError(f"{flag} does not go with --target: {why}")
    build_dir = paths.cross_build_dir(args.target, args.build_dir).resolve()
    source_dir = Path(args.source_dir).resolve() if args.source_dir else paths.source_dir()
    patches_dir = Path(args.patches_dir) if args.patches_dir else paths.patches_dir()
    runner = StepRunner(log_dir, total=1 if args.source_only else 1 + 2 * len(build.ARM_LEVELS))
    pin = paths.load_pin()
    build.find_cross_compilers(args.target)
    runner.step("source", f"llama.cpp b{pin.llama_cpp_build} ({pin.package} {pin.version}) + patches",
                lambda log: source.prepare_source(pin, dest=source_dir, patches_dir=patches_dir, log=log))
    if args.source_only:
        return 0
    generated = kernel_gen.emit(build_dir)  # shared by the levels: the same header, the same ccache keys
    for level, march in build.ARM_LEVELS.items():
        level_dir = build_dir / level
        cmake_args = build.cross_cmake_args(pin, args.target, march, source_dir, generated)
        runner.step(f"generate_build_files-{args.target}-{level}", f"cmake configure ({args.target} {march})",
                    lambda log, d=level_dir, a=cmake_args: build.configure(runner, log, d, a))
        runner.step(f"compile-{args.target}-{level}",
                    f"build {' '.join(build.CROSS_BUILD_TARGETS)} ({args.target} {march}) with {args.jobs} jobs",
                    lambda log, d=level_dir: build.build(runner, log, d, args.jobs, build.CROSS_BUILD_TARGETS))
    shown = log_dir.relative_to(Path.cwd()) if log_dir.is_relative_to(Path.cwd()) else log_dir
    print(f"ready: {', '.join(str(build_dir / level / 'bin') for level in build.ARM_LEVELS)} (logs in {shown})",
          file=sys.stderr)
    return 0
