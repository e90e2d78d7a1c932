"""`python -m bitnet_gguf info FILE`: what a GGUF holds, the memory it needs, and the kernel this CPU runs it with.

Works on any GGUF (ours, bitnet.cpp's, upstream's): the file is read with our reader, which knows I2_S/TL1/TL2
and every upstream type; only the kernel lines need a build.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections import defaultdict
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import gguf

from ..errors import BitnetError
from ..formats.constants import GGML_TYPE_I2_S, GGML_TYPE_TL1, GGML_TYPE_TL2
from ..formats.gguf_read import GGUFFile
from ..formats.stock import stock_llama_cpp_compatible
from ..paths import BUILD_DIR_HELP, build_dir
from .kernel_choice import cpu_flags, kernel_choice

KV_BYTES = 2  # llama.cpp's default KV cache type is F16


def type_name(ggml_type: int) -> str:
    try:
        return gguf.GGMLQuantizationType(ggml_type).name
    except ValueError:
        return f"type {ggml_type}"


def mib(n: float) -> str:
    return f"{n / (1 << 20):,.1f} MiB" if n < (1 << 30) else f"{n / (1 << 30):,.2f} GiB"


@dataclass
class TypeRow:
    name: str
    tensors: int = 0
    elements: int = 0
    bytes: int = 0


@dataclass
class Info:
    file: str
    file_bytes: int
    architecture: str
    name: str | None
    parameters: int
    context_length: int | None
    layers: int | None
    tokenizer: str
    vocab: int | None
    chat_template: bool
    types: list[TypeRow]
    weight_bytes: int
    bytes_per_token: int  # weights one generated token reads: all but the embedding rows it does not look up
    kv_bytes_per_token: int | None
    ctx: int
    stock_llama_cpp: tuple[bool, str]
    kernels: list[str] = field(default_factory=list)

    @property
    def kv_bytes(self) -> int | None:
        return None if self.kv_bytes_per_token is None else self.kv_bytes_per_token * self.ctx

    @property
    def memory_bytes(self) -> int:
        """What running it keeps in memory: every weight (mapped, read per token) and the KV cache at ctx."""
        return self.weight_bytes + (self.kv_bytes or 0)


def _per_layer(value: Any, layers: int) -> list[int]:
    """A hyperparameter that may be one number or one per layer (head_count_kv of some models)."""
    return [int(v) for v in value] if isinstance(value, list) else [int(value)] * layers


def kv_bytes_per_token(meta: dict[str, Any], arch: str) -> int | None:
    """K and V of every layer for one token, at F16: layers x kv_heads x (key_length + value_length) x 2 bytes."""
    try:
        layers = int(meta[f"{arch}.block_count"])
        heads = _per_layer(meta[f"{arch}.attention.head_count"], layers)
        kv_heads = _per_layer(meta.get(f"{arch}.attention.head_count_kv", meta[f"{arch}.attention.head_count"]), layers)
        embd = int(meta[f"{arch}.embedding_length"])
    except (KeyError, TypeError, ValueError):
        return None
    total = 0
    for h, kv in zip(heads, kv_heads, strict=True):
        if h == 0 or kv == 0:
            continue  # a layer without attention (recurrent hybrids) keeps no KV
        k_len = int(meta.get(f"{arch}.attention.key_length", embd // h))
        v_len = int(meta.get(f"{arch}.attention.value_length", embd // h))
        total += kv * (k_len + v_len) * KV_BYTES
    return total


def lookup_only_bytes(f: GGUFFile) -> int:
    """token_embd is read one row per token, unless the head is tied to it (no output tensor): then the head
    reads all of it."""
    embd = f.tensors.get("token_embd.weight")
    return embd.nbytes if embd is not None and "output.weight" in f.tensors else 0


def kernel_lines(f: GGUFFile, build: Path | None) -> list[str]:
    """Which kernel each ternary type of the file runs with on this CPU and build, and why."""
    ternary = {t.ggml_type for t in f.tensors.values()} & {GGML_TYPE_I2_S, GGML_TYPE_TL1, GGML_TYPE_TL2}
    if not ternary:
        return ["no ternary tensors: llama.cpp's own kernels run this file"]
    try:
        k = kernel_choice(build)
    except BitnetError as e:
        return [f"unknown: {e}"]
    lines = []
    if GGML_TYPE_I2_S in ternary:
        ks = sorted({t.shape[0] for t in f.tensors.values() if t.ggml_type == GGML_TYPE_I2_S})
        slow = [kk for kk in ks if k.i2s_for_k(kk) != k.i2s_chosen]
        lines.append(f"I2_S: {k.i2s_chosen} ({k.why(cpu_flags())}; compiled: {', '.join(k.i2s_kernels)})")
        if slow:
            lines.append(f"I2_S: K = {', '.join(map(str, slow))} not a multiple of 128: those mat-muls run the generic kernel")
    for t, name, table in ((GGML_TYPE_TL1, "TL1", k.tl1_kernels), (GGML_TYPE_TL2, "TL2", k.tl2_kernels)):
        if t in ternary:
            chosen = k.tl(table)
            reason = "the entry named like the I2_S choice" if chosen == k.i2s_chosen else \
                f"this build has no {name} kernel named {k.i2s_chosen}"
            lines.append(f"{name}: {chosen} ({reason}; compiled: {', '.join(table)})")
    if GGML_TYPE_TL2 in ternary:
        lines.append(tl2_generated_line(f, build))
    return lines


def tl2_generated_line(f: GGUFFile, build: Path | None) -> str:
    """setup_env.py -q tl2 generates a GEMV copy per K of the model; other K run the general loop."""
    from ..setup.kernel_gen import recorded_k_values

    ks = sorted({t.shape[0] for t in f.tensors.values() if t.ggml_type == GGML_TYPE_TL2})
    have = set(recorded_k_values(build if build is not None else build_dir()))
    missing = [k for k in ks if k not in have]
    if not missing:
        return f"TL2: this build has generated GEMV copies for every K of the file ({', '.join(map(str, ks))})"
    return (f"TL2: no generated GEMV copy for K = {', '.join(map(str, missing))} (they run the general loop); "
            "python setup_env.py -md MODEL -q tl2 generates them")


def read_info(path: Path, ctx: int | None = None, build: Path | None = None) -> Info:
    f = GGUFFile(path)
    meta = f.metadata
    arch = str(meta.get("general.architecture", "?"))
    rows: dict[int, TypeRow] = defaultdict(lambda: TypeRow(""))
    for t in f.tensors.values():
        row = rows[t.ggml_type]
        row.name = type_name(t.ggml_type)
        row.tensors += 1
        row.elements += t.n_elements
        row.bytes += t.nbytes
    context = meta.get(f"{arch}.context_length")
    layers = meta.get(f"{arch}.block_count")
    tokens = meta.get("tokenizer.ggml.tokens")
    tok_model = meta.get("tokenizer.ggml.model")
    pre = meta.get("tokenizer.ggml.pre")
    tokenizer = "none" if tok_model is None else f"{tok_model}" + (f" (pre-tokenizer {pre})" if pre else "")
    return Info(
        file=str(path), file_bytes=path.stat().st_size, architecture=arch, name=meta.get("general.name"),
        parameters=sum(r.elements for r in rows.values()),
        context_length=int(context) if context is not None else None,
        layers=int(layers) if layers is not None else None,
        tokenizer=tokenizer, vocab=len(tokens) if isinstance(tokens, list) else None,
        chat_template="tokenizer.chat_template" in meta,
        types=sorted(rows.values(), key=lambda r: -r.bytes),
        weight_bytes=sum(r.bytes for r in rows.values()),
        bytes_per_token=sum(r.bytes for r in rows.values()) - lookup_only_bytes(f),
        kv_bytes_per_token=kv_bytes_per_token(meta, arch),
        ctx=ctx if ctx is not None else int(context or 4096),
        stock_llama_cpp=stock_llama_cpp_compatible(meta, {t.name: t.ggml_type for t in f.tensors.values()}),
        kernels=kernel_lines(f, build),
    )


def params(n: int) -> str:
    for unit, scale in (("B", 1e9), ("M", 1e6), ("K", 1e3)):
        if n >= scale:
            return f"{n / scale:.2f}{unit} ({n:,})"
    return str(n)


def render(info: Info) -> str:
    out = [
        f"file            {info.file} ({mib(info.file_bytes)})",
        f"architecture    {info.architecture}" + (f"  (name: {info.name})" if info.name else ""),
        f"parameters      {params(info.parameters)}",
        f"context length  {info.context_length if info.context_length is not None else 'not stated'} tokens"
        + (f", {info.layers} layers" if info.layers is not None else ""),
        f"tokenizer       {info.tokenizer}" + (f", {info.vocab:,} tokens" if info.vocab else ""),
        "chat template   " + ("yes (tokenizer.chat_template)" if info.chat_template
                                 else "no (run_inference.py -cnv picks one by architecture)"),
        "",
        f"{'type':<8} {'tensors':>8} {'elements':>15} {'bytes':>14} {'bits/weight':>12}",
    ]
    for r in info.types:
        out.append(f"{r.name:<8} {r.tensors:>8} {r.elements:>15,} {r.bytes:>14,} {8 * r.bytes / max(r.elements, 1):>12.2f}")
    out.append("")
    if info.kv_bytes is None:
        out.append(f"memory          weights {mib(info.weight_bytes)}; KV cache unknown (attention sizes not in the file)")
    else:
        total = info.weight_bytes + info.kv_bytes
        out.append(f"memory at -c {info.ctx}: weights {mib(info.weight_bytes)} + KV cache {mib(info.kv_bytes)} (F16) "
                   f"= {mib(total)}, plus llama.cpp's compute buffers")
    ok, why = info.stock_llama_cpp
    out.append(f"stock llama.cpp {'loads it' if ok else 'cannot run it'}: {why}")
    out += [f"kernel          {line}" for line in info.kernels]
    return "\n".join(out)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="bitnet-gguf info",
                                description="What a GGUF holds, the memory it needs and the kernel this CPU runs it with.")
    p.add_argument("file", help="a GGUF file (ours, bitnet.cpp's or any upstream one)")
    p.add_argument("-c", "--ctx-size", type=int, help="context size for the KV cache estimate (default: the model's)")
    p.add_argument("--build-dir", help=BUILD_DIR_HELP)
    p.add_argument("--json", action="store_true", help="print the figures as JSON")
    args = p.parse_args(argv)
    if args.ctx_size is not None and args.ctx_size <= 0:
        raise BitnetError(f"-c/--ctx-size must be positive, got {args.ctx_size}")
    path = Path(args.file)
    if not path.is_file():
        raise BitnetError(f"{path}: no such file")
    info = read_info(path, args.ctx_size, build_dir(args.build_dir) if args.build_dir else None)
    if args.json:
        d = asdict(info)
        d["kv_bytes"] = info.kv_bytes
        json.dump(d, sys.stdout, indent=1)
        print()
    else:
        print(render(info))
    return 0
