"""setup_env.py's model step: (download with -hr, then) convert -md DIR to DIR/ggml-model-<q>.gguf.

Differences from bitnet.cpp's setup_env.py, on purpose:
- conversion packs I2_S in numpy (no f32 GGUF + single-threaded llama-quantize round trip);
- the GGUF is rebuilt when the checkpoint is newer than it (bitnet.cpp only checks "exists and not empty");
- token_embd (and an untied output) is Q6_K, not F16: generation reads the tied lm_head whole every token and
  Q6_K is ~40 % faster with no measurable perplexity change (docs/bench/README.md). --quant-embd is accepted
  for command compatibility and changes nothing (bitnet.cpp's flag asks for F16, which its own default already is);
  `python -m bitnet_gguf convert --embd-type f16` writes bitnet.cpp's choice;
- tl1/tl2 are refused with a clear message instead of producing build-specific files.
"""

from __future__ import annotations

from argparse import Namespace
from pathlib import Path
from typing import IO

from ..convert.checkpoint import has_checkpoint
from ..errors import BitnetError
from .hub import download
from .steps import say

CHECKPOINT_GLOBS = ("config.json", "*.safetensors", "model.safetensors.index.json", "tokenizer.json", "tokenizer.model",
                    "tokenizer_config.json")


def _checkpoint_mtime(d: Path) -> float:
    times = [p.stat().st_mtime for g in CHECKPOINT_GLOBS for p in d.glob(g)]
    return max(times) if times else 0.0


def check_quant_type(qt: str) -> None:
    if qt != "i2_s":
        raise BitnetError(f"-q {qt} is not supported yet; use i2_s")


def prepare_model(args: Namespace, log: IO[str] | None = None) -> Path:
    """Convert (or keep) MODEL_DIR/ggml-model-<q>.gguf; returns its path. Conversion needs no llama.cpp binary."""
    qt = getattr(args, "quant_type", "i2_s") or "i2_s"
    check_quant_type(qt)
    model_dir = Path(args.model_dir) if getattr(args, "model_dir", None) else Path("models")
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
    if out.is_file() and out.stat().st_size > 0 and out.stat().st_mtime >= _checkpoint_mtime(model_dir):
        say(log, f"{out} is newer than the checkpoint: not converting again")
        return out
    from ..convert import convert

    say(log, f"converting {model_dir} -> {out} (weights i2_s)")
    res = convert(model_dir, "i2_s", out, progress=False)
    say(log, res.describe())
    return res.path
