"""Smoke test of bitnet_gguf.tools.train_tiny: a few eager steps on a tiny config, then the saved folder must load in
plain transformers (quantization_config applied) and reproduce the trained model. Also checks the
perplexity reference against a direct computation of llama-perplexity's rule."""

from __future__ import annotations

import math
from pathlib import Path

import pytest

torch = pytest.importorskip("torch")
pytest.importorskip("transformers")
pytest.importorskip("tokenizers")

from bitnet_gguf.tools import perplexity_ref, train_tiny  # noqa: E402

from .conftest import TINYSHAKESPEARE  # noqa: E402


@pytest.fixture(autouse=True)
def _restore_dynamo() -> object:
    # train_tiny and perplexity_ref switch torch.compile off process-wide; give other tests their default back
    import torch._dynamo

    saved = torch._dynamo.config.disable
    yield
    torch._dynamo.config.disable = saved


def _corpus(tmp_path: Path) -> Path:
    text = train_tiny.read_text(TINYSHAKESPEARE)[:40000]
    path = tmp_path / "corpus.txt"
    path.write_text(text, encoding="utf-8")
    return path


def test_split_is_by_characters() -> None:
    train, held = train_tiny.split_text("abcdefghij")
    assert (train, held) == ("abcdefghi", "j")


def test_train_tiny_smoke(tmp_path: Path) -> None:
    out = tmp_path / "model"
    args = train_tiny.parse_args([
        "--data", str(_corpus(tmp_path)), "--out", str(out), "--heldout-out", str(tmp_path / "held.txt"),
        "--steps", "24", "--no-compile", "--no-eval", "--vocab-size", "320", "--hidden-size", "128",
        "--intermediate-size", "256", "--layers", "1", "--heads", "1", "--kv-heads", "1", "--ctx", "64",
        "--batch", "4", "--warmup", "4", "--lr", "3e-3", "--log-every", "100",
    ])
    model, result, _ = train_tiny.run(args, log=lambda _msg: None)
    assert result.steps == 24
    first, last = sum(result.losses[:4]) / 4, sum(result.losses[-4:]) / 4
    assert last < first - 0.3, f"loss did not decrease: {first:.3f} -> {last:.3f}"

    assert sorted(p.name for p in out.iterdir()) == [
        "config.json", "generation_config.json", "model.safetensors", "tokenizer.json", "tokenizer_config.json"]

    from transformers import AutoTokenizer, BitNetForCausalLM
    from transformers.integrations.bitnet import AutoBitLinear

    loaded = BitNetForCausalLM.from_pretrained(out, dtype=torch.float32).eval()
    assert isinstance(loaded.model.layers[0].mlp.down_proj, AutoBitLinear)
    assert loaded.model.layers[0].mlp.down_proj.online_quant
    assert type(loaded.lm_head) is torch.nn.Linear and loaded.lm_head.weight is loaded.model.embed_tokens.weight
    tok = AutoTokenizer.from_pretrained(out)
    ids = tok("ROMEO: good morrow", return_tensors="pt")["input_ids"]
    assert ids[0, 0].item() == tok.bos_token_id == loaded.config.bos_token_id
    assert tok.decode(ids[0], skip_special_tokens=True) == "ROMEO: good morrow"
    with torch.no_grad():
        assert torch.equal(loaded(input_ids=ids).logits, model(input_ids=ids).logits)


def test_perplexity_matches_llama_rule() -> None:
    """perplexity() against a literal per-chunk loop of perplexity.cpp on a random model."""
    torch.manual_seed(0)
    vocab, n_ctx = 50, 16

    class Toy(torch.nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.emb = torch.nn.Embedding(vocab, vocab)

        def forward(self, input_ids: torch.Tensor) -> object:
            # causal by construction: logits at position i depend on tokens <= i only
            x = self.emb(input_ids).cumsum(dim=1)
            return type("Out", (), {"logits": x})()

    model = Toy()
    tokens = torch.randint(1, vocab, (3 * n_ctx + 5,)).tolist()
    got = perplexity_ref.perplexity(model, tokens, n_ctx, bos_id=0, batch=2)
    nll, count = 0.0, 0
    for c in range(len(tokens) // n_ctx):
        chunk = tokens[c * n_ctx:(c + 1) * n_ctx]
        logits = model(torch.tensor([[0] + chunk[1:]])).logits[0].double()
        for pos in range(n_ctx // 2, n_ctx - 1):
            nll -= torch.log_softmax(logits[pos], -1)[chunk[pos + 1]].item()
            count += 1
    assert got.count == count == 3 * (n_ctx - n_ctx // 2 - 1)
    assert math.isclose(got.ppl, math.exp(nll / count), rel_tol=1e-9)
