"""setup_env.py's model step: (download with -hr, then) convert -md DIR to DIR/ggml-model-<q>.gguf.

Differences from bitnet.cpp's setup_env.py, on purpose:
- conversion packs I2_S in numpy (no f32 GGUF + single-threaded llama-quantize round trip);
- the GGUF is rebuilt unless its stamp (`<gguf>.stamp.json`: converter version, options, the checkpoint files'
  names, sizes and mtimes, and the GGUF's own size and mtime) matches (bitnet.cpp only checks "exists and not empty");
- token_embd (and an untied output) is Q6_K, not F16: generation reads the tied lm_head whole every token and
  Q6_K is ~40 % faster with no measurable perplexity change (docs/bench/README.md). --quant-embd is accepted
  for command compatibility and changes nothing (bitnet.cpp's flag asks for F16, which its own default already is);
  `python -m bitnet_gguf convert --embd-type f16` writes bitnet.cpp's choice;
- tl1/tl2 files name their layout in the file and do not depend on the build that wrote them; -md may name an
  I2_S .gguf, which is converted beside it (llama-quantize, lossless); TL1 is refused on x86 and TL2 on ARM
  (bitnet.cpp's pairing) in one line, before anything is built.
"""

from __future__ import annotations

import platform
import subprocess
from argparse import Namespace
from pathlib import Path
from typing import IO

from ..convert.checkpoint import has_checkpoint
from ..errors import BitnetError
from ..fileio import atomic_output, fingerprint, stamp_matches, write_stamp
from ..formats.constants import GGML_TYPE_I2_S, GGML_TYPE_TL1, GGML_TYPE_TL2
from .hub import download
from .steps import say

FILE_TYPE_OF = {"i2_s": GGML_TYPE_I2_S, "tl1": GGML_TYPE_TL1, "tl2": GGML_TYPE_TL2}  # tensor type of each -q
# the CPU family each lookup-table layout is made for (bitnet.cpp's pairing: TL1 on ARM, TL2 on x86)
TL_FAMILY = {"tl1": "arm", "tl2": "x86"}


def cpu_family(machine: str | None = None) -> str:
    m = (machine or platform.machine()).lower()
    return "x86" if m in ("x86_64", "amd64", "i386", "i686") else "arm" if m in ("aarch64", "arm64") or m.startswith("arm") else m


def check_quant_type(qt: str, machine: str | None = None) -> None:
    """Refuse a lookup-table type made for another CPU family than this one (before a build, not after)."""
    want, have = TL_FAMILY.get(qt), cpu_family(machine)
    if want is not None and want != have:
        ours = next((q for q, f in TL_FAMILY.items() if f == have), None)
        hint = f"use -q {ours} or i2_s" if ours else "use -q i2_s"
        raise BitnetError(f"-q {qt} is the lookup-table layout for {want} CPUs and this one is {machine or platform.machine()}: {hint}")


def convert_gguf(src: Path, qt: str, build_dir: Path | None, log: IO[str] | None = None) -> Path:
    """An I2_S GGUF -> its TL1/TL2 twin beside it (ggml-model-<qt>.gguf), by the build's llama-quantize."""
    from ..formats.gguf_read import GGUFFile
    from ..runtime.locate import find_tool

    types = {t.ggml_type for t in GGUFFile(src).tensors.values()}
    if FILE_TYPE_OF[qt] in types:
        say(log, f"{src} already holds {qt} weights: using it as is")
        return src
    if GGML_TYPE_I2_S not in types:
        raise BitnetError(f"-md {src}: no I2_S tensors to convert to {qt} (give an I2_S GGUF or the checkpoint folder)")
    out = src.with_name(f"ggml-model-{qt}.gguf")
    quantize = find_tool("llama-quantize", build_dir)
    # the build's llama-quantize is the converter here: a rebuilt one makes the file again
    inputs = {"tool": fingerprint([quantize]), "outtype": qt, "files": fingerprint([src])}
    if stamp_matches(out, inputs):
        say(log, f"{out} was made from this {src.name} by this llama-quantize: not converting again")
        return out
    say(log, f"converting {src} -> {out} (llama-quantize, lossless)")
    with atomic_output(out) as tmp:
        proc = subprocess.run([str(quantize), str(src), str(tmp), qt.upper()], capture_output=True, text=True)
        if proc.returncode != 0:
            last = (proc.stderr.strip().splitlines() or [f"exit code {proc.returncode}"])[-1]
            raise BitnetError(f"llama-quantize {src.name} -> {qt.upper()} failed: {last}")
    write_stamp(out, inputs)
    return out


def prepare_model(args: Namespace, log: IO[str] | None = None) -> Path:
    """Convert (or keep) MODEL_DIR/ggml-model-<q>.gguf; returns its path. Conversion needs no llama.cpp binary."""
    qt = getattr(args, "quant_type", "i2_s") or "i2_s"
    check_quant_type(qt)
    model_dir = Path(args.model_dir) if getattr(args, "model_dir", None) else Path("models")
    if model_dir.suffix == ".gguf" and model_dir.is_file():
        from ..paths import build_dir

        return convert_gguf(model_dir, qt, build_dir(getattr(args, "build_dir", None)), log)
    if getattr(args, "hf_repo", None):
        model_dir = download(args.hf_repo, model_dir, log)
    out = model_dir / f"ggml-model-{qt}.gguf"
    if not has_checkpoint(model_dir):
        if out.is_file() and out.stat().st_size > 0:
            say(log, f"{out} is there and {model_dir} has no checkpoint to convert: using it as is")
            return out
        if not model_dir.is_dir():
            raise BitnetError(f"-md {model_dir}: folder not found")
        raise BitnetError(f"-md {model_dir}: no Hugging Face checkpoint (config.json + *.safetensors) and no {out.name}")
    from ..convert import convert
    from ..convert.converter import conversion_inputs

    inputs = conversion_inputs(model_dir, qt)
    if stamp_matches(out, inputs):
        say(log, f"{out} was made from this checkpoint by this converter with these options: not converting again")
        return out
    say(log, f"converting {model_dir} -> {out} (weights {qt})")
    res = convert(model_dir, qt, out, progress=False)
    write_stamp(out, inputs)  # after the GGUF: a crash in between only costs a conversion next time
    say(log, res.describe())
    return res.path
