"""Reference perplexity of a Hugging Face checkpoint, computed exactly the way llama-perplexity does it.

llama.cpp's tools/perplexity/perplexity.cpp (function `perplexity`, no --ppl-stride):
- the text file is read whole, one trailing newline dropped (common/arg.cpp, -f);
- it is tokenized once with add_special = true (a BOS in front if the vocab adds BOS);
- the tokens are cut into n_chunk = n_tokens // n_ctx chunks of n_ctx tokens (the tail is dropped);
- each chunk is evaluated from an empty KV cache, its first token replaced by BOS when the vocab adds BOS;
- only the logits of positions first = n_ctx/2 .. n_ctx-2 are scored, each against the next token,
  so every chunk contributes n_ctx - n_ctx/2 - 1 tokens;
- PPL = exp(sum of -log p / count).
So `python -m bitnet_gguf.tools.perplexity_ref MODEL_DIR TEXT --ctx 256` and `llama-perplexity -m X.gguf -f TEXT -c 256`
measure the same quantity over the same tokens.

The model is run in float32 through transformers' own BitNetForCausalLM; for a bitnet checkpoint with
quantization_config {linear_class: autobitlinear, quantization_mode: online} that means ternary weights
(absmean) and per-token int8 activations, i.e. the computation docs/formats.md §3 defines.
torch.compile is switched off (transformers decorates its quantizers with it): the eager ops are the
reference semantics, and compiling would cost minutes on a small CPU.
"""

from __future__ import annotations

import argparse
import math
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch


@dataclass
class PerplexityResult:
    ppl: float
    nll: float  # summed negative log-likelihood (nats)
    count: int  # scored tokens
    n_chunks: int
    n_tokens: int  # tokens of the whole text, BOS included when the vocab adds it
    add_bos: bool


def read_prompt_file(path: Path) -> str:
    """The text as llama.cpp's `-f` reads it: bytes as they are, one trailing newline removed."""
    with open(path, encoding="utf-8", newline="") as f:
        text = f.read()
    return text[:-1] if text.endswith("\n") else text


def tokenize_like_llama(tokenizer: Any, text: str) -> tuple[list[int], bool]:
    """common_tokenize(ctx, text, add_special=true): the tokenizer's own special-token rule decides the BOS."""
    # verbose=False: the whole text is longer than model_max_length on purpose (it is chunked afterwards)
    with_special: list[int] = tokenizer(text, add_special_tokens=True, verbose=False)["input_ids"]
    plain: list[int] = tokenizer(text, add_special_tokens=False, verbose=False)["input_ids"]
    bos = tokenizer.bos_token_id
    add_bos = len(with_special) == len(plain) + 1 and bos is not None and with_special[0] == bos
    # llama-perplexity asserts the vocab does not add EOS; anything else would change the token stream
    if with_special[len(with_special) - len(plain):] != plain:
        raise ValueError("the tokenizer adds tokens other than a leading BOS; llama-perplexity would refuse this vocab")
    return with_special, add_bos


def chunk_inputs(tokens: list[int], n_ctx: int, bos_id: int | None) -> torch.Tensor:
    """[n_chunk, n_ctx] token ids of the chunks, first token replaced by BOS when the vocab adds BOS."""
    n_chunk = len(tokens) // n_ctx
    if n_chunk < 2:
        # same refusal as llama-perplexity: it needs at least 2 * n_ctx tokens
        raise ValueError(f"need at least {2 * n_ctx} tokens for n_ctx={n_ctx}, the text has {len(tokens)}")
    chunks = torch.tensor(tokens[: n_chunk * n_ctx], dtype=torch.long).view(n_chunk, n_ctx).clone()
    if bos_id is not None:
        chunks[:, 0] = bos_id
    return chunks


@torch.no_grad()
def chunk_nll(model: torch.nn.Module, inputs: torch.Tensor, targets: torch.Tensor, first: int) -> float:
    """Summed -log p(target) over positions first .. n_ctx-2 of every row (the logits llama.cpp keeps)."""
    logits = model(input_ids=inputs).logits.float()
    scored = logits[:, first:-1, :].double()  # double: like llama.cpp's double sum, no float32 drift over many chunks
    logp = torch.log_softmax(scored, dim=-1)
    picked = logp.gather(-1, targets[:, first + 1:].unsqueeze(-1)).squeeze(-1)
    return float(-picked.sum())


def perplexity(model: torch.nn.Module, tokens: list[int], n_ctx: int, bos_id: int | None,
               batch: int = 8, log: Any = None) -> PerplexityResult:
    """llama-perplexity's number for `tokens` (already tokenized with add_special=true)."""
    # the targets are the ORIGINAL tokens: llama.cpp restores the token it overwrote with BOS before scoring,
    # and position 0 is never scored anyway (first >= 1)
    n_chunk = len(tokens) // n_ctx
    inputs = chunk_inputs(tokens, n_ctx, bos_id)
    targets = torch.tensor(tokens[: n_chunk * n_ctx], dtype=torch.long).view(n_chunk, n_ctx)
    first = n_ctx // 2
    nll = 0.0
    count = 0
    t0 = time.time()
    for i in range(0, n_chunk, batch):
        nll += chunk_nll(model, inputs[i:i + batch], targets[i:i + batch], first)
        count += (n_ctx - first - 1) * min(batch, n_chunk - i)
        if log is not None:
            log(f"[{min(i + batch, n_chunk)}/{n_chunk}] ppl {math.exp(nll / count):.4f} ({time.time() - t0:.1f} s)")
    return PerplexityResult(math.exp(nll / count), nll, count, n_chunk, len(tokens), bos_id is not None)


def disable_torch_compile() -> None:
    # transformers' WeightQuant/ActQuant carry @torch.compile; eager gives the same ops without a compile step
    import torch._dynamo

    torch._dynamo.config.disable = True


def load_model(model_dir: Path) -> tuple[torch.nn.Module, Any]:
    """float32 model + tokenizer through plain transformers (quantization_config applied by from_pretrained)."""
    from transformers import AutoModelForCausalLM, AutoTokenizer

    disable_torch_compile()
    model = AutoModelForCausalLM.from_pretrained(model_dir, dtype=torch.float32)
    model.eval()
    tokenizer = AutoTokenizer.from_pretrained(model_dir)
    return model, tokenizer


def perplexity_of_file(model_dir: Path, text_file: Path, n_ctx: int, batch: int = 8, log: Any = None) -> PerplexityResult:
    model, tokenizer = load_model(model_dir)
    tokens, add_bos = tokenize_like_llama(tokenizer, read_prompt_file(text_file))
    return perplexity(model, tokens, n_ctx, tokenizer.bos_token_id if add_bos else None, batch=batch, log=log)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m bitnet_gguf.tools.perplexity_ref", description=__doc__.splitlines()[0])
    ap.add_argument("model_dir", type=Path, help="Hugging Face folder (config.json, model.safetensors, tokenizer.json)")
    ap.add_argument("text_file", type=Path, help="the same file you pass to llama-perplexity -f")
    ap.add_argument("--ctx", type=int, default=256, help="n_ctx, as llama-perplexity -c (default 256)")
    ap.add_argument("--batch", type=int, default=8, help="chunks per forward pass (does not change the result)")
    ap.add_argument("--threads", type=int, default=2)
    args = ap.parse_args(argv)
    torch.set_num_threads(args.threads)

    def log(msg: str) -> None:
        print(msg, file=sys.stderr, flush=True)

    r = perplexity_of_file(args.model_dir, args.text_file, args.ctx, args.batch, log=log)
    print(f"tokens {r.n_tokens} (add_bos={r.add_bos}), chunks {r.n_chunks} x {args.ctx}, scored {r.count}")
    print(f"Final estimate: PPL = {r.ppl:.4f}  (mean NLL {r.nll / r.count:.5f} nats)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
