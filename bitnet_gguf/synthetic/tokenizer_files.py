"""Real Hugging Face tokenizer files rebuilt from a llama.cpp vocab GGUF, for synthetic checkpoints.

- Llama-3 byte-level BPE: tokenizer.json + tokenizer_config.json (with a chat template), readable by the
  `tokenizers` package, transformers' AutoTokenizer and our converter alike.
- SentencePiece: tokenizer.model, a ModelProto serialised by hand (a few protobuf fields) so neither
  protobuf nor sentencepiece's trainer is needed to make one.
"""

from __future__ import annotations

import hashlib
import json
import shutil
import struct
from collections.abc import Callable
from pathlib import Path

import gguf

from ..errors import BitnetError
from ..fileio import atomic_output
from ..formats.gguf_write import open_vocab_gguf
from ..paths import cache_dir

# the Llama-3 pre-tokenizer split (tokenizer.json of Meta-Llama-3; llama.cpp keeps it as the "original regex")
LLAMA3_SPLIT = (r"(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}{1,3}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|"
                r"\s+(?!\S)|\s+")
# our own template in the style BitNet-b1.58-2B-4T uses ("Role: text<|eot_id|>")
CHAT_TEMPLATE = (
    "{{ bos_token }}{% for message in messages %}{{ message['role'] | capitalize }}: {{ message['content'] }}<|eot_id|>"
    "{% endfor %}{% if add_generation_prompt %}Assistant: {% endif %}"
)


def cached_tokenizer(writer: Callable[[Path, Path], int], vocab_gguf: Path, out_dir: Path) -> int:
    """writer(vocab_gguf, out_dir), served from a cache: parsing a 128k-token vocab GGUF with GGUFReader takes
    10-30 s, and tests generate many checkpoints from the same two vocabularies."""
    st = vocab_gguf.stat()
    key = hashlib.sha256(f"{writer.__name__}|{vocab_gguf.resolve()}|{st.st_size}|{st.st_mtime_ns}".encode()).hexdigest()[:16]
    cached = cache_dir() / "hf-tokenizers" / key
    if not (cached / "n_tokens").is_file():
        tmp = cached.with_name(cached.name + ".tmp")
        shutil.rmtree(tmp, ignore_errors=True)
        tmp.mkdir(parents=True)
        try:
            try:
                n = writer(vocab_gguf, tmp)
            except KeyError as e:  # a vocab GGUF of another kind (a BPE one where SentencePiece scores are needed)
                raise BitnetError(f"{vocab_gguf}: no tokenizer.ggml.{e.args[0]} array, expected {vocab_gguf.name} "
                                  "as llama.cpp ships it") from None
            (tmp / "n_tokens").write_text(str(n))
            shutil.rmtree(cached, ignore_errors=True)
            tmp.rename(cached)
        finally:
            shutil.rmtree(tmp, ignore_errors=True)  # a vocab that failed to convert leaves nothing in the cache
    for f in cached.iterdir():
        if f.name != "n_tokens":
            with atomic_output(out_dir / f.name) as t:
                shutil.copyfile(f, t)
    return int((cached / "n_tokens").read_text())


def _gguf_vocab(vocab_gguf: Path) -> dict[str, list]:
    r = open_vocab_gguf(vocab_gguf)
    out: dict[str, list] = {}
    for key in ("tokenizer.ggml.tokens", "tokenizer.ggml.token_type", "tokenizer.ggml.merges", "tokenizer.ggml.scores"):
        if key in r.fields:
            out[key.rsplit(".", 1)[1]] = r.fields[key].contents()
    return out


def write_llama3_tokenizer(vocab_gguf: Path, out_dir: Path) -> int:
    """tokenizer.json + tokenizer_config.json of a Llama-3 BPE vocab GGUF; returns the number of tokens."""
    v = _gguf_vocab(vocab_gguf)
    tokens, types, merges = v["tokens"], v["token_type"], v["merges"]
    vocab = {t: i for i, (t, ty) in enumerate(zip(tokens, types, strict=True)) if ty != gguf.TokenType.CONTROL}
    added = [
        {"id": i, "content": t, "single_word": False, "lstrip": False, "rstrip": False, "normalized": False, "special": True}
        for i, (t, ty) in enumerate(zip(tokens, types, strict=True)) if ty == gguf.TokenType.CONTROL
    ]
    bos = "<|begin_of_text|>"
    tj = {
        "version": "1.0",
        "truncation": None,
        "padding": None,
        "added_tokens": added,
        "normalizer": None,
        "pre_tokenizer": {"type": "Sequence", "pretokenizers": [
            {"type": "Split", "pattern": {"Regex": LLAMA3_SPLIT}, "behavior": "Isolated", "invert": False},
            {"type": "ByteLevel", "add_prefix_space": False, "trim_offsets": True, "use_regex": False},
        ]},
        "post_processor": {"type": "Sequence", "processors": [
            {"type": "ByteLevel", "add_prefix_space": True, "trim_offsets": False, "use_regex": True},
            {"type": "TemplateProcessing",
             "single": [{"SpecialToken": {"id": bos, "type_id": 0}}, {"Sequence": {"id": "A", "type_id": 0}}],
             "pair": [{"SpecialToken": {"id": bos, "type_id": 0}}, {"Sequence": {"id": "A", "type_id": 0}},
                      {"SpecialToken": {"id": bos, "type_id": 1}}, {"Sequence": {"id": "B", "type_id": 1}}],
             "special_tokens": {bos: {"id": bos, "ids": [tokens.index(bos)], "tokens": [bos]}}},
        ]},
        "decoder": {"type": "ByteLevel", "add_prefix_space": True, "trim_offsets": True, "use_regex": True},
        "model": {"type": "BPE", "dropout": None, "unk_token": None, "continuing_subword_prefix": None,
                  "end_of_word_suffix": None, "fuse_unk": False, "byte_fallback": False, "ignore_merges": True,
                  "vocab": vocab, "merges": [m.split(" ", 1) for m in merges]},
    }
    (out_dir / "tokenizer.json").write_text(json.dumps(tj, ensure_ascii=False))
    config = {
        "add_bos_token": True,
        "add_eos_token": False,
        "bos_token": bos,
        "eos_token": "<|eot_id|>",
        "chat_template": CHAT_TEMPLATE,
        "clean_up_tokenization_spaces": False,
        "model_input_names": ["input_ids", "attention_mask"],
        "model_max_length": 4096,
        "tokenizer_class": "PreTrainedTokenizerFast",
    }
    (out_dir / "tokenizer_config.json").write_text(json.dumps(config, indent=2, ensure_ascii=False))
    (out_dir / "special_tokens_map.json").write_text(json.dumps({"bos_token": bos, "eos_token": "<|eot_id|>"}, indent=2))
    return len(tokens)


# --- SentencePiece ModelProto, hand-serialised -------------------------------------------------------------
def _varint(n: int) -> bytes:
    out = bytearray()
    while True:
        b = n & 0x7F
        n >>= 7
        out.append(b | (0x80 if n else 0))
        if not n:
            return bytes(out)


def _field(num: int, wire: int, payload: bytes) -> bytes:
    head = _varint(num << 3 | wire)
    if wire == 2:
        return head + _varint(len(payload)) + payload
    return head + payload


def _vint(num: int, value: int) -> bytes:
    return _field(num, 0, _varint(value))


def write_spm_tokenizer(vocab_gguf: Path, out_dir: Path) -> int:
    """tokenizer.model (+ tokenizer_config.json) from a SentencePiece vocab GGUF; returns the number of pieces."""
    v = _gguf_vocab(vocab_gguf)
    tokens, types, scores = v["tokens"], v["token_type"], v["scores"]
    body = bytearray()
    for text, score, typ in zip(tokens, scores, types, strict=True):
        # SentencePiece piece types use the same numbers as gguf.TokenType (NORMAL 1 ... BYTE 6)
        piece = _field(1, 2, text.encode("utf-8")) + _field(2, 5, struct.pack("<f", score)) + _vint(3, int(typ))
        body += _field(1, 2, piece)
    # TrainerSpec: model_type BPE (2), vocab_size, byte_fallback (Llama's tokenizer has <0x..> byte pieces)
    trainer = _vint(3, 2) + _vint(4, len(tokens)) + _vint(35, 1)
    # NormalizerSpec of Llama: identity, add_dummy_prefix, keep extra whitespace, escape whitespace as ▁
    normalizer = _field(1, 2, b"identity") + _vint(3, 1) + _vint(4, 0) + _vint(5, 1)
    body += _field(2, 2, trainer) + _field(3, 2, normalizer)
    (out_dir / "tokenizer.model").write_bytes(bytes(body))
    config = {"add_bos_token": True, "add_eos_token": False, "bos_token": "<s>", "eos_token": "</s>", "unk_token": "<unk>",
              "tokenizer_class": "LlamaTokenizer", "legacy": True, "model_max_length": 2048}
    (out_dir / "tokenizer_config.json").write_text(json.dumps(config, indent=2))
    return len(tokens)
