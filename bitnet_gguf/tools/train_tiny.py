"""Train the project's own small ternary model: BitNet b1.58 (transformers' BitNetForCausalLM) on tinyshakespeare.

    python -m bitnet_gguf.tools.train_tiny --data tests/data/tinyshakespeare.txt --out models/tiny-shakespeare

- Split by characters: the first 90 % trains the tokenizer and the model, the last 10 % is held out (only
  ever evaluated). The held-out slice is written to --heldout-out (default build/, which git ignores) so the
  very same text can be given to llama-perplexity.
- Tokenizer: byte-level BPE trained with `tokenizers` on the train split, GPT-2 pre-tokenizer (ByteLevel,
  add_prefix_space false, GPT-2 regex: llama.cpp pre-tokenizer "gpt-2"), one special token <|endoftext|>
  serving as BOS and EOS, prepended to every encoding like Llama-3 does (add_bos_token true).
- Model: BitNetForCausalLM with quantization_config {quant_method bitnet, linear_class autobitlinear,
  quantization_mode online}; every projection is transformers' own AutoBitLinear, so the training forward
  IS the inference forward: absmean-ternary weights and per-token int8 activations, with transformers'
  straight-through estimator (WeightQuant / ActQuant) in the backward. The lm_head stays a plain Linear tied
  to the embedding, as transformers' quantizer leaves it when loading.
- The checkpoint holds the float32 latent weights; from_pretrained re-ternarizes them online, and the
  script checks that the reloaded model gives the trained model's logits bit for bit.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import sys
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch

from ..errors import ArgumentParser, BitnetError, run_cli
from ..fileio import atomic_output, check_output_path, write_text_atomic

SPECIAL = "<|endoftext|>"
QUANT_CONFIG: dict[str, Any] = {
    "quant_method": "bitnet",
    "linear_class": "autobitlinear",
    "quantization_mode": "online",
    "use_rms_norm": False,  # the sub-norms are explicit modules in BitNet; no per-projection norm
    "rms_norm_eps": 1e-6,
    "modules_to_not_convert": None,  # transformers then skips the tied lm_head by itself
}
# relative to the working directory (the checkout, where build/ is git-ignored)
DEFAULT_HELDOUT = Path("build") / "data" / "tinyshakespeare-heldout.txt"


# ----------------------------------------------------------------------------- data


def read_text(path: Path) -> str:
    # newline="" keeps the bytes exactly, so the held-out file we write is byte-identical to the source slice
    with open(path, encoding="utf-8", newline="") as f:
        return f.read()


def split_text(text: str, train_fraction: float = 0.9) -> tuple[str, str]:
    """Character split: (first train_fraction, the rest). The held-out part is never trained on."""
    cut = int(len(text) * train_fraction)
    return text[:cut], text[cut:]


def write_heldout(text: str, path: Path) -> None:
    with atomic_output(path) as tmp, open(tmp, "w", encoding="utf-8", newline="") as f:
        f.write(text)


# ----------------------------------------------------------------------------- tokenizer


def train_tokenizer(train_text: str, vocab_size: int) -> Any:
    """Byte-level BPE with GPT-2's pre-tokenizer; id 0 is <|endoftext|>, prepended to every encoding."""
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, processors, trainers

    tok = Tokenizer(models.BPE())
    # add_prefix_space false + the GPT-2 regex is exactly llama.cpp's "gpt-2" pre-tokenizer
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=True)
    tok.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=vocab_size,
        special_tokens=[SPECIAL],
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),  # all 256 bytes: any text stays encodable
        show_progress=False,
    )
    tok.train_from_iterator([train_text], trainer)
    bos = tok.token_to_id(SPECIAL)
    # BOS in front of every encoding, like Llama-3: the model always sees BOS at position 0 (as in
    # llama-perplexity, which puts BOS at the start of each chunk), and converters read add_bos from here
    tok.post_processor = processors.Sequence([
        processors.ByteLevel(trim_offsets=False),
        processors.TemplateProcessing(single=f"{SPECIAL} $A", pair=f"{SPECIAL} $A {SPECIAL} $B", special_tokens=[(SPECIAL, bos)]),
    ])
    return tok


def save_tokenizer(tok: Any, out: Path, model_max_length: int) -> None:
    """tokenizer.json + a tokenizer_config.json that AutoTokenizer (PreTrainedTokenizerFast) loads."""
    tok.save(str(out / "tokenizer.json"))
    config = {
        "tokenizer_class": "PreTrainedTokenizerFast",
        "bos_token": SPECIAL,
        "eos_token": SPECIAL,
        "unk_token": None,  # byte-level: every string has a tokenization
        "add_bos_token": True,
        "add_eos_token": False,
        "add_prefix_space": False,
        "clean_up_tokenization_spaces": False,
        "model_max_length": model_max_length,
    }
    (out / "tokenizer_config.json").write_text(json.dumps(config, indent=2) + "\n", encoding="utf-8")


def encode_plain(tok: Any, text: str) -> list[int]:
    # no BOS: the training stream is one long text; BOS is put at the start of each window instead
    return tok.encode(text, add_special_tokens=False).ids


# ----------------------------------------------------------------------------- model


@dataclass
class ModelShape:
    vocab_size: int = 2048
    hidden_size: int = 256
    intermediate_size: int = 768
    num_hidden_layers: int = 4
    num_attention_heads: int = 4
    num_key_value_heads: int = 2
    max_position_embeddings: int = 512
    rope_theta: float = 10000.0

    def check(self) -> None:
        head_dim = self.hidden_size // self.num_attention_heads
        dims = {"hidden_size": self.hidden_size, "intermediate_size": self.intermediate_size,
                "kv width": self.num_key_value_heads * head_dim}
        bad = {k: v for k, v in dims.items() if v % 128}
        # I2_S packs 128-element blocks along K and M of every ternary projection
        if bad:
            raise ValueError(f"projection dimensions must be multiples of 128 (I2_S blocks): {bad}")


def build_config(shape: ModelShape, bos_id: int, eos_id: int) -> Any:
    from transformers import BitNetConfig

    shape.check()
    config = BitNetConfig(
        vocab_size=shape.vocab_size,
        hidden_size=shape.hidden_size,
        intermediate_size=shape.intermediate_size,
        num_hidden_layers=shape.num_hidden_layers,
        num_attention_heads=shape.num_attention_heads,
        num_key_value_heads=shape.num_key_value_heads,
        max_position_embeddings=shape.max_position_embeddings,
        hidden_act="relu2",
        rms_norm_eps=1e-5,
        tie_word_embeddings=True,
        bos_token_id=bos_id,
        eos_token_id=eos_id,
        rope_parameters={"rope_type": "default", "rope_theta": shape.rope_theta},
    )
    config.quantization_config = dict(QUANT_CONFIG)
    return config


def ternarize_linears(model: torch.nn.Module) -> int:
    """Swap every nn.Linear but the (tied) lm_head for transformers' AutoBitLinear in online mode.

    This is what from_pretrained's bitnet quantizer does with the same quantization_config (minus its
    meta-device dance), so the module we train is the module transformers runs at inference.
    """
    from transformers.integrations.bitnet import AutoBitLinear

    swapped = 0
    for name, mod in list(model.named_modules()):
        if type(mod) is not torch.nn.Linear or name == "lm_head":
            continue
        new = AutoBitLinear(mod.in_features, mod.out_features, bias=mod.bias is not None, online_quant=True)
        with torch.no_grad():
            new.weight.copy_(mod.weight)
        model.set_submodule(name, new)
        swapped += 1
    return swapped


def build_model(config: Any, seed: int) -> torch.nn.Module:
    from transformers import BitNetForCausalLM

    torch.manual_seed(seed)
    model = BitNetForCausalLM(config)  # transformers' init: normal(0, initializer_range) for weights
    ternarize_linears(model)
    return model


def count_params(model: torch.nn.Module) -> tuple[int, int]:
    """(all parameters, of which ternary projection weights); tied weights counted once."""
    from transformers.integrations.bitnet import AutoBitLinear

    total = sum(p.numel() for p in model.parameters())
    ternary = sum(m.weight.numel() for m in model.modules() if isinstance(m, AutoBitLinear))
    return total, ternary


# ----------------------------------------------------------------------------- training


@dataclass
class TrainSettings:
    ctx: int = 256
    batch: int = 8
    lr: float = 2e-3
    min_lr_ratio: float = 0.1
    warmup: int = 30
    weight_decay: float = 0.05
    grad_clip: float = 1.0
    steps: int | None = None  # None: chosen from `minutes` after measuring speed during warmup
    minutes: float = 20.0
    seed: int = 1234
    compile: bool = True
    log_every: int = 10


@dataclass
class TrainResult:
    steps: int
    losses: list[float] = field(default_factory=list)
    seconds: float = 0.0
    tokens: int = 0


def batch_stream(tokens: torch.Tensor, ctx: int, batch: int, bos_id: int, seed: int) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
    """Random windows of the train stream, each as BOS + ctx-1 tokens predicting the next ctx tokens.

    BOS at position 0 followed by text from the middle of the corpus is exactly what llama-perplexity
    feeds (it overwrites each chunk's first token with BOS), so training matches evaluation.
    """
    gen = torch.Generator().manual_seed(seed)
    n = tokens.numel() - ctx
    while True:
        starts = torch.randint(0, n, (batch,), generator=gen)
        targets = torch.stack([tokens[s:s + ctx] for s in starts.tolist()])
        inputs = torch.cat([torch.full((batch, 1), bos_id, dtype=torch.long), targets[:, :-1]], dim=1)
        yield inputs, targets


def lr_at(step: int, total: int, s: TrainSettings) -> float:
    """Linear warmup, then cosine from lr down to lr * min_lr_ratio at the last step."""
    if step < s.warmup:
        return s.lr * (step + 1) / s.warmup
    progress = min(1.0, (step - s.warmup) / max(1, total - s.warmup))
    return s.lr * (s.min_lr_ratio + (1 - s.min_lr_ratio) * 0.5 * (1 + math.cos(math.pi * progress)))


def make_optimizer(model: torch.nn.Module, s: TrainSettings) -> torch.optim.Optimizer:
    # decay only the ternary projections' latent weights; norms and the (tied) embedding are left alone
    from transformers.integrations.bitnet import AutoBitLinear

    decay = [m.weight for m in model.modules() if isinstance(m, AutoBitLinear)]
    ids = {id(p) for p in decay}
    rest = [p for p in model.parameters() if id(p) not in ids]
    groups = [{"params": decay, "weight_decay": s.weight_decay}, {"params": rest, "weight_decay": 0.0}]
    return torch.optim.AdamW(groups, lr=s.lr, betas=(0.9, 0.95), fused=True)  # fused: fewer passes on CPU


def loss_fn(model: torch.nn.Module) -> Any:
    def f(inputs: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
        logits = model(input_ids=inputs).logits
        return torch.nn.functional.cross_entropy(logits.reshape(-1, logits.size(-1)), targets.reshape(-1))

    return f


def prepare_compile(enabled: bool) -> None:
    # eager runs also switch dynamo off: transformers wraps WeightQuant/ActQuant in @torch.compile, which
    # would otherwise compile them one layer shape at a time (a minute of startup, longer than a smoke test)
    import torch._dynamo

    torch._dynamo.config.disable = not enabled


def estimate_steps(seconds_per_step: float, s: TrainSettings, elapsed: float) -> int:
    budget = s.minutes * 60 - elapsed
    return max(s.warmup + 1, int(budget / seconds_per_step))


def train(model: torch.nn.Module, tokens: torch.Tensor, bos_id: int, s: TrainSettings, log: Any) -> TrainResult:
    prepare_compile(s.compile)
    model.train()
    opt = make_optimizer(model, s)
    f = loss_fn(model)
    step_fn = torch.compile(f) if s.compile else f
    data = batch_stream(tokens, s.ctx, s.batch, bos_id, s.seed)
    total = s.steps
    result = TrainResult(steps=0)
    t0 = time.time()
    t_mark, step_mark = t0, 0
    timing_from = 3 if s.compile else 1  # the first steps include compilation
    step = 0
    while total is None or step < total:
        for g in opt.param_groups:
            g["lr"] = lr_at(step, total or 10**9, s)
        inputs, targets = next(data)
        loss = step_fn(inputs, targets)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), s.grad_clip)
        opt.step()
        opt.zero_grad(set_to_none=True)
        result.losses.append(loss.item())
        step += 1
        if step == timing_from:
            t_mark, step_mark = time.time(), step
        if total is None and step == s.warmup:
            # the warmup LR does not depend on the total, so the step count can be fixed here from the speed
            total = estimate_steps((time.time() - t_mark) / max(1, step - step_mark), s, time.time() - t0)
            log(f"speed measured: {s.batch * s.ctx * (step - step_mark) / (time.time() - t_mark):.0f} tok/s; "
                f"training for {total} steps (~{s.minutes:g} min budget); reproduce with --steps {total}")
        if step % s.log_every == 0 or step == total:
            dt = time.time() - t_mark
            tps = s.batch * s.ctx * (step - step_mark) / dt if dt > 0 and step > step_mark else 0.0
            recent = result.losses[-s.log_every:]
            log(f"step {step}/{total or '?'}  loss {sum(recent) / len(recent):.4f}  lr {opt.param_groups[0]['lr']:.2e}  "
                f"{tps:.0f} tok/s  {time.time() - t0:.0f} s")
    result.steps = step
    result.seconds = time.time() - t0
    result.tokens = step * s.batch * s.ctx
    model.eval()
    return result


# ----------------------------------------------------------------------------- checkpoint


def save_checkpoint(model: torch.nn.Module, tok: Any, out: Path, model_max_length: int) -> list[str]:
    """Write the checkpoint into a temporary folder inside `out`, then move each file over its old version
    (os.replace: atomic per file). Nothing else in `out` is touched: files we did not write are never deleted.
    Returns the names written."""
    out.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix=".train_tiny.", dir=out) as tmp:
        model.save_pretrained(tmp)  # config.json (with quantization_config), generation_config.json, model.safetensors
        save_tokenizer(tok, Path(tmp), model_max_length)
        names = sorted(p.name for p in Path(tmp).iterdir())
        for name in names:
            os.replace(Path(tmp) / name, out / name)
    return names


def reload_and_compare(out: Path, model: torch.nn.Module, sample: torch.Tensor) -> tuple[torch.nn.Module, Any, float]:
    """Load the folder with plain transformers and compare logits with the trained model on `sample`."""
    from .perplexity_ref import load_model

    loaded, tokenizer = load_model(out)
    with torch.no_grad():
        diff = (loaded(input_ids=sample).logits - model(input_ids=sample).logits).abs().max().item()
    return loaded, tokenizer, diff


def generate_sample(model: torch.nn.Module, tokenizer: Any, prompt: str, n: int, temperature: float, seed: int) -> str:
    torch.manual_seed(seed)
    ids = tokenizer(prompt, return_tensors="pt")["input_ids"]  # BOS + prompt
    kwargs: dict[str, Any] = {"do_sample": True, "temperature": temperature, "top_k": 0} if temperature > 0 else {"do_sample": False}
    with torch.no_grad():
        out = model.generate(ids, max_new_tokens=n, min_new_tokens=n, pad_token_id=tokenizer.eos_token_id, **kwargs)
    return tokenizer.decode(out[0], skip_special_tokens=True)


def dir_size(path: Path) -> int:
    return sum(p.stat().st_size for p in path.iterdir() if p.is_file())


# ----------------------------------------------------------------------------- README


def readme_rows(c: dict[str, Any]) -> list[tuple[str, str]]:
    sh: ModelShape = c["shape"]
    return [
        ("shape", f"hidden {sh.hidden_size}, intermediate {sh.intermediate_size}, {sh.num_hidden_layers} layers, "
                  f"{sh.num_attention_heads} heads (head_dim {sh.hidden_size // sh.num_attention_heads}), "
                  f"{sh.num_key_value_heads} KV heads, vocab {sh.vocab_size}, RoPE theta {sh.rope_theta:g}, "
                  f"max positions {sh.max_position_embeddings}"),
        ("tokenizer", f"byte-level BPE ({sh.vocab_size} tokens) trained on the train split with `tokenizers`; GPT-2 "
                      f"pre-tokenizer (llama.cpp pre-tokenizer `gpt-2`); `{SPECIAL}` (id {c['bos']}) is BOS and EOS; "
                      "BOS is added to every encoding, EOS is not"),
        ("data", f"`{c['data_name']}` ({c['chars']:,} characters), split by characters: first 90 % "
                 f"({c['train_chars']:,} chars, {c['train_tokens']:,} tokens) train, last 10 % "
                 f"({c['heldout_chars']:,} chars) held out, never trained on"),
        ("training", f"{c['steps']} steps x {c['batch']} x {c['ctx']} tokens ({c['tokens'] / 1e6:.2f} M tokens, "
                     f"{c['epochs']:.1f} epochs), AdamW (betas 0.9/0.95, weight decay {c['wd']} on the ternary weights), "
                     f"peak LR {c['lr']:g}, {c['warmup']} warmup steps, cosine to {c['min_lr']:g}, grad clip 1.0, "
                     f"seed {c['seed']}"),
        ("time", f"{c['seconds'] / 60:.1f} min on 2 CPU cores ({c['tok_s']:.0f} tokens/s, machine shared with other jobs)"),
        ("final train loss", f"{c['final_loss']:.4f} (mean of the last 20 steps)"),
        ("held-out perplexity", f"**{c['ppl']:.4f}** (transformers, fp32, ternary forward; llama-perplexity's method, "
                                f"n_ctx {c['ppl_ctx']}, {c['ppl_chunks']} chunks, {c['ppl_count']:,} scored tokens)"),
        ("size", f"{c['size'] / 1e6:.1f} MB (this folder)"),
    ]


def write_readme(out: Path, c: dict[str, Any]) -> None:
    table = "\n".join(f"| {k} | {v} |" for k, v in readme_rows(c))
    text = f"""# tiny-shakespeare: the project's own small BitNet b1.58 model

A {c['params'] / 1e6:.2f} M-parameter ternary language model ({c['ternary'] / 1e6:.2f} M ternary weights in the
projections, {c['params'] - c['ternary']:,} in the tied embedding and the norms), trained from scratch on
tinyshakespeare by `bitnet_gguf/tools/train_tiny.py`. It is transformers' `BitNetForCausalLM` (model_type `bitnet`,
the BitNet-b1.58-2B-4T graph: relu² FFN, attn_sub_norm and ffn_sub_norm, NEOX RoPE, tied embeddings) with
`quantization_config` {{quant_method: bitnet, linear_class: autobitlinear, quantization_mode: online}}: trained
with quantization on (absmean ternary weights, per-token int8 absmax activations, straight-through estimator),
and `from_pretrained` runs the same ternary forward. `model.safetensors` holds the float32 latent weights;
absmean gives the ternary model: s = max(mean|W|, 1e-5), t = clamp(round(W/s), -1, 1), W ~ s*t.

| | |
|---|---|
{table}

## Reproduce

```
{c['command']}
python -m bitnet_gguf.tools.perplexity_ref models/tiny-shakespeare {c['heldout_rel']} --ctx {c['ppl_ctx']}
```

`train_tiny` writes the held-out slice to `{c['heldout_rel']}` (git-ignored; the script regenerates it from
the data file). The same file gives the llama.cpp number:

```
build/bin/llama-perplexity -m models/tiny-shakespeare/ggml-model-i2_s.gguf -f {c['heldout_rel']} -c {c['ppl_ctx']}
```

`perplexity_ref` follows tools/perplexity/perplexity.cpp: the text (one trailing newline dropped) is tokenized
once with BOS, cut into chunks of n_ctx tokens, each chunk's first token is replaced by BOS, and only the second
half of each chunk is scored. A converted GGUF should come close to this number (equal only up to float
accumulation order).

## Sample (transformers, temperature 0.8, prompt "ROMEO:")

```
{c['sample']}
```
"""
    write_text_atomic(out / "README.md", text)


# ----------------------------------------------------------------------------- main


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    ap = ArgumentParser(prog="python -m bitnet_gguf.tools.train_tiny", description=__doc__.splitlines()[0])
    ap.add_argument("--data", type=Path, required=True, help="plain text file (tinyshakespeare.txt)")
    ap.add_argument("--out", type=Path, required=True, help="output folder for the Hugging Face checkpoint")
    ap.add_argument("--minutes", type=float, default=20.0, help="training time budget; sets the step count (default 20)")
    ap.add_argument("--steps", type=int, default=None, help="exact step count (overrides --minutes; for reproducing)")
    ap.add_argument("--seed", type=int, default=1234)
    ap.add_argument("--heldout-out", type=Path, default=DEFAULT_HELDOUT,
                    help=f"where to write the held-out text (default {DEFAULT_HELDOUT})")
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--no-compile", action="store_true", help="train eagerly (slower per step, no compile start-up)")
    ap.add_argument("--no-eval", action="store_true", help="skip held-out perplexity and the sample (tests)")
    # model and training shape; the defaults are the committed model
    ap.add_argument("--vocab-size", type=int, default=2048)
    ap.add_argument("--hidden-size", type=int, default=256)
    ap.add_argument("--intermediate-size", type=int, default=768)
    ap.add_argument("--layers", type=int, default=4)
    ap.add_argument("--heads", type=int, default=4)
    ap.add_argument("--kv-heads", type=int, default=2)
    ap.add_argument("--rope-theta", type=float, default=10000.0)
    ap.add_argument("--ctx", type=int, default=256)
    ap.add_argument("--batch", type=int, default=8)
    ap.add_argument("--lr", type=float, default=2e-3)
    ap.add_argument("--warmup", type=int, default=30)
    ap.add_argument("--log-every", type=int, default=10)
    return ap.parse_args(argv)


def rel(path: Path) -> str:
    try:
        return str(path.resolve().relative_to(Path.cwd()))
    except ValueError:
        return str(path)


def run(args: argparse.Namespace, log: Any) -> tuple[torch.nn.Module, TrainResult, dict[str, Any]]:
    """The whole pipeline; returns the trained model, its training record and the README facts."""
    torch.set_num_threads(args.threads)
    text = read_text(args.data)
    train_text, heldout_text = split_text(text)
    write_heldout(heldout_text, args.heldout_out)
    log(f"data: {len(text):,} chars -> train {len(train_text):,}, held out {len(heldout_text):,} (written to {args.heldout_out})")

    tok = train_tokenizer(train_text, args.vocab_size)
    bos = tok.token_to_id(SPECIAL)
    tokens = torch.tensor(encode_plain(tok, train_text), dtype=torch.long)
    log(f"tokenizer: {tok.get_vocab_size()} tokens; train split = {tokens.numel():,} tokens")

    shape = ModelShape(vocab_size=args.vocab_size, hidden_size=args.hidden_size, intermediate_size=args.intermediate_size,
                       num_hidden_layers=args.layers, num_attention_heads=args.heads, num_key_value_heads=args.kv_heads,
                       max_position_embeddings=max(512, args.ctx), rope_theta=args.rope_theta)
    model = build_model(build_config(shape, bos, bos), args.seed)
    n_params, n_ternary = count_params(model)
    log(f"model: {n_params:,} parameters ({n_ternary:,} ternary)")

    settings = TrainSettings(ctx=args.ctx, batch=args.batch, lr=args.lr, warmup=args.warmup, steps=args.steps,
                             minutes=args.minutes, seed=args.seed, compile=not args.no_compile, log_every=args.log_every)
    result = train(model, tokens, bos, settings, log)
    save_checkpoint(model, tok, args.out, shape.max_position_embeddings)

    probe = torch.cat([torch.tensor([[bos]]), tokens[: args.ctx - 1].unsqueeze(0)], dim=1)
    loaded, tokenizer, diff = reload_and_compare(args.out, model, probe)
    log(f"reloaded with transformers from_pretrained: max |logit difference| = {diff:g}")
    if diff > 1e-4:
        raise RuntimeError(f"the saved checkpoint does not reproduce the trained model (max logit diff {diff})")

    info: dict[str, Any] = {
        "shape": shape, "data_name": args.data.name, "params": n_params, "ternary": n_ternary, "bos": bos, "chars": len(text),
        "train_chars": len(train_text), "heldout_chars": len(heldout_text), "train_tokens": tokens.numel(),
        "steps": result.steps, "batch": settings.batch, "ctx": settings.ctx, "tokens": result.tokens,
        "epochs": result.tokens / tokens.numel(), "wd": settings.weight_decay, "lr": settings.lr,
        "warmup": settings.warmup, "min_lr": settings.lr * settings.min_lr_ratio, "seed": settings.seed,
        "seconds": result.seconds, "tok_s": result.tokens / result.seconds,
        "final_loss": sum(result.losses[-20:]) / len(result.losses[-20:]), "heldout_rel": rel(args.heldout_out),
        "command": f"python -m bitnet_gguf.tools.train_tiny --data {args.data} --out {rel(args.out)} "
                   f"--steps {result.steps} --seed {args.seed}",
    }
    if not args.no_eval:
        evaluate(loaded, tokenizer, args, info, log)
        info["size"] = dir_size(args.out)
        write_readme(args.out, info)
        info["size"] = dir_size(args.out)  # again, now with the README itself counted
        write_readme(args.out, info)
    return model, result, info


def evaluate(model: torch.nn.Module, tokenizer: Any, args: argparse.Namespace, info: dict[str, Any], log: Any) -> None:
    from .perplexity_ref import perplexity, read_prompt_file, tokenize_like_llama

    ids, add_bos = tokenize_like_llama(tokenizer, read_prompt_file(args.heldout_out))
    r = perplexity(model, ids, args.ctx, tokenizer.bos_token_id if add_bos else None)
    log(f"held-out perplexity (ctx {args.ctx}, {r.n_chunks} chunks, {r.count} scored tokens): {r.ppl:.4f}")
    info.update(ppl=r.ppl, ppl_ctx=args.ctx, ppl_chunks=r.n_chunks, ppl_count=r.count)
    info["sample"] = generate_sample(model, tokenizer, "ROMEO:", 200, 0.8, args.seed)
    log("sample (temperature 0.8):\n" + info["sample"])


def check_args(args: argparse.Namespace) -> None:
    if not args.data.is_file():
        raise BitnetError(f"--data {args.data}: file not found")
    if args.out.exists() and not args.out.is_dir():
        raise BitnetError(f"--out {args.out}: is a file, expected a folder")
    check_output_path(args.heldout_out, "--heldout-out")
    for name in ("threads", "vocab_size", "hidden_size", "intermediate_size", "layers", "heads", "kv_heads", "ctx", "batch"):
        if getattr(args, name) < 1:
            raise BitnetError(f"--{name.replace('_', '-')} {getattr(args, name)}: expected at least 1")
    if args.steps is not None and args.steps < 1:
        raise BitnetError(f"--steps {args.steps}: expected at least 1")


def main(argv: list[str] | None = None) -> int:
    return run_cli(lambda: _main(argv))


def _main(argv: list[str] | None) -> int:
    args = parse_args(argv)
    check_args(args)

    def log(msg: str) -> None:
        print(msg, flush=True)

    _, _, info = run(args, log)
    if "size" in info:
        log(f"checkpoint folder {args.out}: {info['size'] / 1e6:.2f} MB")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
