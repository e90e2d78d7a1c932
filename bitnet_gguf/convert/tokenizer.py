"""Tokenizer of a Hugging Face folder -> GGUF tokenizer.* keys (the way llama.cpp's converter writes them).

- SentencePiece tokenizer.model (1bitLLM, Llama-2 style): tokenizer.ggml.model = "llama".
- Byte-level BPE tokenizer.json (Llama-3, Falcon3, Falcon-E): tokenizer.ggml.model = "gpt2"; the
  pre-tokenizer is recognised like llama.cpp does it: hash the token ids of a fixed probe text ("chkhsh").
Special token ids, add_bos/add_eos, merges and the chat template come from gguf-py's SpecialVocab, which
reads tokenizer.json / tokenizer_config.json / config.json like convert_hf_to_gguf.py.
"""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass, field
from hashlib import sha256
from pathlib import Path
from typing import Any

import gguf

from ..errors import BitnetError

# llama.cpp's probe text (conversion/base.py get_vocab_base_pre); hashing str(list of ids) of its encoding
# identifies the pre-tokenizer regex and normalisation of a BPE tokenizer
CHKTXT = (
    "\n \n\n \n\n\n \t \t\t \t\n  \n   \n    \n     \n🚀 (normal) 😶\u200d🌫️ (multiple emojis concatenated) ✅ 🦙🦙 3 33 333 "
    "3333 33333 333333 3333333 33333333 3.3 3..3 3...3 កាន់តែពិសេសអាច😁 ?我想在apple工作1314151天～ ------======= нещо на "
    "Български ''''''```````\"\"\"\"......!!!!!!?????? I've been 'told he's there, 'RE you sure? 'M not sure I'll make it, "
    "'D you like some tea? We'Ve a'lL"
)

# chkhsh -> tokenizer.ggml.pre, for the tokenizers of the BitNet models we convert (values from llama.cpp's table)
KNOWN_PRE: dict[str, str] = {
    "0ef9807a4087ebef797fc749390439009c3b9eda9ad1a097abbe738f486c01e5": "llama-bpe",  # Meta-Llama-3, BitNet 2B-4T
    "9d032fcbd5501f4a38150912590928bfb36091efb5df11b8e2124b0390e3fb1e": "falcon3",  # Falcon3-*(-1.58bit)
    # Falcon-E shares Falcon-H1's tokenizer. bitnet.cpp writes "falcon_e", which upstream llama.cpp does not know
    # (our build accepts it, for bitnet.cpp's files); "falcon-h1" selects the same LLAMA3 pre-tokenizer and loads
    # everywhere, so we write that.
    "a6b57017d60e6edb4d88ecc2845188e0eb333a70357e45dcc9b53964a73bbae6": "falcon-h1",
    "60476e1243776c4fb1b993dbd7a5f15ac22f83c80afdf425fa5ae01c8d44ef86": "falcon-h1",
    "3eda48b4c4dc7de733d1a8b3e3b4a85243dbbf704da2ee9d42c6beced8897896": "falcon-h1",
}
# accepted for --tokenizer-pre: bitnet.cpp's spelling maps to the one llama.cpp loads
PRE_ALIASES = {"falcon_e": "falcon-h1"}


@dataclass
class Vocabulary:
    model: str  # tokenizer.ggml.model: "gpt2" or "llama"
    pre: str
    tokens: list[str] = field(default_factory=list)
    types: list[int] = field(default_factory=list)
    scores: list[float] | None = None
    special: gguf.SpecialVocab | None = None
    source: Path | None = None

    def add_to(self, writer: gguf.GGUFWriter) -> None:
        writer.add_tokenizer_model(self.model)
        writer.add_tokenizer_pre(self.pre)
        writer.add_token_list(self.tokens)
        if self.scores is not None:
            writer.add_token_scores(self.scores)
        writer.add_token_types(self.types)
        if self.special is not None:
            self.special.add_to_gguf(writer, quiet=True)


def chkhsh(tokenizer_json: Path) -> str:
    """llama.cpp's pre-tokenizer fingerprint, computed with the `tokenizers` package."""
    try:
        from tokenizers import Tokenizer
    except ImportError:
        raise BitnetError(f"{tokenizer_json}: reading a BPE tokenizer needs the 'tokenizers' package (pip install tokenizers)") from None
    try:
        tok = Tokenizer.from_file(str(tokenizer_json))
    except Exception as e:  # tokenizers raises its own Exception type for malformed files
        raise BitnetError(f"{tokenizer_json}: cannot be loaded by tokenizers ({str(e).splitlines()[0]})") from None
    # AutoTokenizer.encode() adds special tokens by default, so the hashes include e.g. Llama-3's BOS
    ids = tok.encode(CHKTXT, add_special_tokens=True).ids
    return sha256(str(ids).encode()).hexdigest()


def _pad(tokens: dict[int, tuple[str, int]], n_vocab: int, path: Path) -> tuple[list[str], list[int]]:
    top = max(tokens) + 1 if tokens else 0
    if top > n_vocab:
        raise BitnetError(f"{path}: tokenizer has token id {top - 1} but the model's vocab_size is {n_vocab}")
    out_tokens: list[str] = []
    out_types: list[int] = []
    for i in range(n_vocab):
        text, typ = tokens.get(i, (f"[PAD{i}]", gguf.TokenType.UNUSED))
        out_tokens.append(text)
        out_types.append(int(typ))
    return out_tokens, out_types


def _is_plain_gpt2(tj: dict[str, Any]) -> bool:
    """GPT-2's own pre-tokenization (ByteLevel with its regex, no prefix space, no normalizer): llama.cpp's "gpt-2"."""
    pre = tj.get("pre_tokenizer") or {}
    return (tj.get("normalizer") is None and pre.get("type") == "ByteLevel" and pre.get("use_regex", True)
            and not pre.get("add_prefix_space", False))


def _bpe(model_dir: Path, n_vocab: int, pre_override: str | None) -> Vocabulary:
    path = model_dir / "tokenizer.json"
    try:
        tj: dict[str, Any] = json.loads(path.read_text(encoding="utf-8"))
        model = tj["model"]
        vocab: dict[str, int] = model["vocab"]
        if not isinstance(vocab, dict) or not all(isinstance(i, int) and i >= 0 for i in vocab.values()):
            raise ValueError("model.vocab must map tokens to ids >= 0")
    except (OSError, ValueError, KeyError, TypeError) as e:
        raise BitnetError(f"{path}: not a valid tokenizer.json ({e})") from None
    if model.get("type") != "BPE" or model.get("byte_fallback") or (tj.get("decoder") or {}).get("type") != "ByteLevel":
        raise BitnetError(f"{path}: only byte-level BPE tokenizers are supported here (Llama-3, Falcon3, Falcon-E); "
                          "SentencePiece models need tokenizer.model")
    tokens: dict[int, tuple[str, int]] = {i: (t, gguf.TokenType.NORMAL) for t, i in vocab.items()}
    added_tokens = tj.get("added_tokens") or []
    if not isinstance(added_tokens, list):
        raise BitnetError(f"{path}: added_tokens must be a list, got {type(added_tokens).__name__}")
    for i, added in enumerate(added_tokens):
        if not isinstance(added, dict) or isinstance(added.get("id"), bool) or not isinstance(added.get("id"), int) \
                or added["id"] < 0 or not isinstance(added.get("content"), str):
            raise BitnetError(f"{path}: added_tokens[{i}] needs an integer id >= 0 and a string content, got {added!r:.80}")
        # like convert_hf_to_gguf.py: special added tokens are CONTROL (never produced by plain text), others USER_DEFINED
        typ = gguf.TokenType.CONTROL if added.get("special") else gguf.TokenType.USER_DEFINED
        tokens[added["id"]] = (added["content"], typ)
    toks, types = _pad(tokens, n_vocab, path)
    if pre_override:
        pre = PRE_ALIASES.get(pre_override, pre_override)
    else:
        h = chkhsh(path)
        if h in KNOWN_PRE:
            pre = KNOWN_PRE[h]
        elif _is_plain_gpt2(tj):
            pre = "gpt-2"  # a tokenizer trained from scratch (e.g. models/tiny-shakespeare): the hash can't know it
        else:
            raise BitnetError(f"{path}: unknown BPE pre-tokenizer (chkhsh {h}); "
                              f"known: {', '.join(sorted(set(KNOWN_PRE.values())))}; pass --tokenizer-pre NAME if you know it")
    special = _special_vocab(model_dir, n_vocab, load_merges=True)
    if not special.merges:
        raise BitnetError(f"{path}: BPE tokenizer without merges")
    return Vocabulary("gpt2", pre, toks, types, None, special, path)


def _spm(model_dir: Path, n_vocab: int) -> Vocabulary:
    path = model_dir / "tokenizer.model"
    try:
        import sentencepiece  # noqa: F401
    except ImportError:
        raise BitnetError(f"{path}: reading it needs the 'sentencepiece' package (pip install sentencepiece)") from None
    try:
        sp = gguf.vocab.SentencePieceVocab(model_dir)
    except (RuntimeError, OSError, ValueError, TypeError) as e:  # sentencepiece reports a corrupt file as RuntimeError
        why = str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
        raise BitnetError(f"{path}: cannot be read as a SentencePiece model ({why})") from None
    tokens: dict[int, tuple[str, int]] = {}
    scores: dict[int, float] = {}
    for i, (text, score, typ) in enumerate(sp.all_tokens()):
        tokens[i] = (text.decode("utf-8"), typ)
        scores[i] = score
    toks, types = _pad(tokens, n_vocab, path)
    return Vocabulary("llama", "default", toks, types, [scores.get(i, -1000.0) for i in range(n_vocab)],
                      _special_vocab(model_dir, n_vocab, load_merges=False), path)


def _special_vocab(model_dir: Path, n_vocab: int, load_merges: bool) -> gguf.SpecialVocab:
    # SpecialVocab logs every key at INFO and warns about the (normal) Llama-3 pair template; errors still raise
    logging.getLogger("gguf.vocab").setLevel(logging.ERROR)
    try:
        return gguf.SpecialVocab(model_dir, load_merges=load_merges, n_vocab=n_vocab)
    except (OSError, ValueError) as e:
        raise BitnetError(f"{model_dir}: cannot read special tokens ({e})") from None


def load_vocabulary(model_dir: Path, n_vocab: int, pre_override: str | None = None) -> Vocabulary:
    """SentencePiece first (like bitnet.cpp's converter), then byte-level BPE."""
    model_dir = Path(model_dir)
    if (model_dir / "tokenizer.model").is_file():
        return _spm(model_dir, n_vocab)
    if (model_dir / "tokenizer.json").is_file():
        return _bpe(model_dir, n_vocab, pre_override)
    raise BitnetError(f"{model_dir}: no tokenizer.model or tokenizer.json")
