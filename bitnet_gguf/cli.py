"""`bitnet-gguf` / `python -m bitnet_gguf`: convert, generate-model and setup subcommands."""

from __future__ import annotations

import argparse
import importlib
import sys
from pathlib import Path

from .errors import ArgumentParser, BitnetError, run_cli


def _convert(args: argparse.Namespace) -> int:
    from .convert import convert

    res = convert(Path(args.model_dir), args.outtype, Path(args.outfile) if args.outfile else None,
                  args.embd_type, args.tokenizer_pre, progress=not args.no_progress)
    print(res.describe(), file=sys.stderr)
    return 0


def _generate(args: argparse.Namespace) -> int:
    if not 0 <= args.seed < 2**63:  # numpy's generator takes no negative seed
        raise BitnetError(f"--seed {args.seed}: expected an integer from 0 to 2**63 - 1")
    if args.gguf:
        from .paths import vocab_gguf
        from .synthetic.gguf_model import write_synthetic_gguf

        vocab = vocab_gguf("ggml-vocab-llama-bpe.gguf", args.vocab_dir)
        out = write_synthetic_gguf(Path(args.out), args.arch, args.size, args.gguf, vocab, seed=args.seed,
                                   embd_type=args.embd_type, progress=not args.no_progress)
    else:
        from .synthetic.hf_model import generate_model

        out = generate_model(args.arch, args.size, Path(args.out), args.vocab_dir, args.form, args.seed,
                             args.linear_class, args.force)
    print(f"wrote {out}", file=sys.stderr)
    return 0


def parser() -> argparse.ArgumentParser:
    from .convert.tensor_plan import EMBD_TYPES, NOT_YET_EMBD
    from .formats.architectures import BY_GGUF
    from .formats.constants import FILE_TYPES
    from .synthetic.gguf_model import OUTTYPES as GGUF_OUTTYPES
    from .synthetic.hf_model import FORMS, LINEAR_CLASSES
    from .synthetic.shapes import SHAPES

    p = ArgumentParser(prog="bitnet-gguf", description="BitNet b1.58 models as GGUF for a llama.cpp with I2_S.")
    sub = p.add_subparsers(dest="command", required=True)

    c = sub.add_parser("convert", help="convert a Hugging Face BitNet checkpoint folder to GGUF")
    c.add_argument("model_dir", help="folder with config.json, *.safetensors and the tokenizer")
    c.add_argument("--outtype", default="i2_s", choices=list(FILE_TYPES),
                   help="type of the ternary weights (default: i2_s); tq1_0/tq2_0: upstream's types for stock llama.cpp, "
                        "the same bytes as llama-quantize from the f32 file (embeddings as it picks them)")
    c.add_argument("--outfile", help="output path (default: MODEL_DIR/ggml-model-<outtype>.gguf)")
    c.add_argument("--embd-type", metavar="TYPE",
                   help=f"type of token_embd and output: {', '.join(EMBD_TYPES)} (default: q6_k for i2_s/tl1/tl2 "
                        f"[q8_0 when rows are not 256-multiples]; for tq1_0/tq2_0 what llama-quantize picks: q6_k "
                        f"output, q4_k untied token_embd; else the outtype; f16 is bitnet.cpp's choice); "
                        f"{', '.join(NOT_YET_EMBD)} not yet")
    c.add_argument("--tokenizer-pre", metavar="NAME", help="BPE pre-tokenizer name when the tokenizer is not recognised")
    c.add_argument("--no-progress", action="store_true", help="no progress bar")
    c.set_defaults(func=_convert)

    g = sub.add_parser("generate-model", help="write a random-weight checkpoint (Hugging Face folder, or --gguf)")
    g.add_argument("--arch", required=True, choices=sorted(BY_GGUF))
    g.add_argument("--size", required=True, choices=list(SHAPES))
    g.add_argument("--out", required=True, help="output folder (or file with --gguf)")
    g.add_argument("--form", default="master", choices=FORMS, help="master bf16 weights or packed uint8 + weight_scale")
    g.add_argument("--linear-class", choices=LINEAR_CLASSES,
                   help="packed form: transformers' BitLinear class (default: autobitlinear for bitnet-b1.58, else bitlinear)")
    g.add_argument("--seed", type=int, default=0)
    g.add_argument("--vocab-dir", help="folder with llama.cpp's ggml-vocab-*.gguf "
                                       "(default: $BITNET_GGUF_VOCAB_DIR, else the unpacked source's models/)")
    g.add_argument("--gguf", metavar="OUTTYPE", choices=GGUF_OUTTYPES,
                   help="write a GGUF directly (any size, e.g. 7B+) instead of a Hugging Face folder")
    g.add_argument("--force", action="store_true", help="write Hugging Face checkpoints above 8 GiB anyway")
    g.add_argument("--embd-type", choices=("f32", "f16", "q6_k"),
                   help="with --gguf: type of token_embd (and output): f32/f16 random floats, q6_k random blocks (the "
                        "product's default head type; default: f32 for --gguf f32, else f16)")
    g.add_argument("--no-progress", action="store_true", help="with --gguf: no progress bar")
    g.set_defaults(func=_generate)

    sub.add_parser("setup", help="build llama.cpp with I2_S and optionally convert a model (setup_env.py)", add_help=False)
    sub.add_parser("bench", help="llama-bench one model (bitnet.cpp's e2e_benchmark flags: -m -n -p -t)", add_help=False)
    sub.add_parser("bench-suite", help="our I2_S against upstream types on the 2B-4T shape: table + chart", add_help=False)
    sub.add_parser("ceilings", help="memory and compute ceilings of tg for a model here; tg against them in rounds",
                   add_help=False)
    sub.add_parser("serve", help="run_server.py: the OpenAI-compatible server with its chat page and dashboard", add_help=False)
    sub.add_parser("soak", help="load and abuse a running server for a while, then report latency and failures", add_help=False)
    sub.add_parser("dump", help="gguf-dump for our files: metadata and tensor table (I2_S, TL1, TL2 included)", add_help=False)
    sub.add_parser("info", help="what a GGUF holds, the memory it needs, the kernel this CPU runs it with", add_help=False)
    sub.add_parser("doctor", help="check the build, CPU, memory and bandwidth against what generation needs", add_help=False)
    return p


# subcommands that parse their own arguments
_DELEGATED = {"setup": ("setup.setup_env", "main"), "bench": ("tools.bench", "e2e_main"), "bench-suite": ("tools.bench", "suite_main"),
              "ceilings": ("tools.ceilings", "main"),
              "serve": ("serving.main", "main"), "soak": ("tools.soak", "main"),
              "dump": ("inspect.dump", "main"), "info": ("inspect.info", "main"), "doctor": ("inspect.doctor", "main")}


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)

    def body() -> int:
        if argv and argv[0] in _DELEGATED:
            module, func = _DELEGATED[argv[0]]
            return getattr(importlib.import_module(f".{module}", __package__), func)(argv[1:])
        args = parser().parse_args(argv)
        return args.func(args)

    return run_cli(body)


if __name__ == "__main__":
    sys.exit(main())
