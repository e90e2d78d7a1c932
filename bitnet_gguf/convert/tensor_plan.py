"""Which GGUF tensors a checkpoint becomes, with their shapes, types and the code that produces their bytes.

Every tensor is produced when it is written (one source tensor, or a row chunk of one, in memory at a
time), so converting a 4.8 GB bf16 checkpoint needs memory for its largest projection, not for the model.
"""

from __future__ import annotations

import math
from collections.abc import Iterator

import gguf
import numpy as np

from ..errors import BitnetError
from ..formats.architectures import GGUF_SUB_NORMS, IGNORED, LAYER_NORMS, projections, sub_norm_sizes
from ..formats.constants import QK_I2_S, QK_TQ, STOCK_TERNARY_TYPES
from ..formats.gguf_write import TERNARY_GGUF_TYPES, OutTensor, StreamedTensor, row_blocks, ternary_tensor
from ..formats.kquants import Q4K, Q6K
from ..formats.quants import absmean_ternarize
from ..formats.safetensors_reader import FLOAT_DTYPES, SafetensorsReader
from .checkpoint import ModelConfig
from .ternary import check_ternary_values, scale_from_weight_scale, unpack_rows

Q = gguf.GGMLQuantizationType
# --embd-type choices we can encode in numpy (gguf.quants' encoders, and our Q6_K one)
EMBD_TYPES: dict[str, Q] = {
    "f32": Q.F32, "f16": Q.F16, "bf16": Q.BF16, "q6_k": Q.Q6_K, "q4_k": Q.Q4_K,
    "q8_0": Q.Q8_0, "q5_1": Q.Q5_1, "q5_0": Q.Q5_0, "q4_1": Q.Q4_1, "q4_0": Q.Q4_0,
}
NOT_YET_EMBD = ("q5_k", "q3_k", "q2_k")


def default_embd_type(outtype: str, row_length: int) -> str:
    """token_embd / output type when --embd-type is not given.

    Float outtypes keep their own type. Ternary files get Q6_K, llama-quantize's I2_S default here: the embedding
    is also the lm_head that generation reads whole every token, and Q6_K makes tg ~40 % faster than F16 with no
    measurable perplexity change (docs/bench/README.md). Rows that Q6_K's 256-blocks do not fit get Q8_0, or F16.
    """
    if outtype not in TERNARY_GGUF_TYPES:
        return outtype
    return "q6_k" if row_length % 256 == 0 else "q8_0" if row_length % 32 == 0 else "f16"


def stock_embd_types(row_length: int, tied: bool) -> tuple[str, str]:
    """(token_embd, output) types of a tq1_0/tq2_0 file: what llama-quantize picks for a TQ1_0/TQ2_0 ftype
    (llama-quant.cpp: the lm_head, and a tied token_embd, Q6_K; an untied token_embd Q4_K; rows that a
    256-block does not fit fall back to Q8_0 / Q5_0, then F16), so the whole file equals llama-quantize's."""
    head = default_embd_type("i2_s", row_length)
    if tied:
        return head, head
    return ("q4_k" if row_length % 256 == 0 else "q5_0" if row_length % 32 == 0 else "f16"), head


def _float_bytes(x: np.ndarray, qtype: int) -> np.ndarray:
    if qtype == Q.F32:
        return x.astype(np.float32, copy=False)
    if qtype == Q.F16:
        return x.astype(np.float16)
    if qtype == Q.Q6_K:
        return Q6K.quantize(x)
    if qtype == Q.Q4_K:
        return Q4K.quantize(x)
    return gguf.quants.quantize(x, Q(qtype))  # BF16 and the block quants, rounded as llama.cpp does


def _nbytes(shape: tuple[int, ...], qtype: int) -> int:
    block, size = gguf.GGML_QUANT_SIZES[Q(qtype)]
    return math.prod(shape) // block * size


def permute_qk(w: np.ndarray, n_head: int) -> np.ndarray:
    """llama.cpp's LlamaModel.permute: within each head, interleave the two RoPE halves (HF rotate_half
    layout -> the GPT-J pair layout the `llama` graph rotates). Rows only, so it works on ternary ints too."""
    rows = w.shape[0]
    return w.reshape(n_head, 2, rows // n_head // 2, *w.shape[1:]).swapaxes(1, 2).reshape(w.shape)


def llama3_rope_factors(cfg: ModelConfig) -> np.ndarray:
    """rope_freqs for llama3-type rope scaling (as convert_hf_to_gguf.py computes them)."""
    sc = cfg.rope_scaling or {}
    factor = float(sc.get("factor", 8.0))
    low = float(sc.get("low_freq_factor", 1.0))
    high = float(sc.get("high_freq_factor", 4.0))
    old_ctx = float(sc.get("original_max_position_embeddings", 8192))
    dim = cfg.head_dim
    freqs = 1.0 / (cfg.rope_theta ** (np.arange(0, dim, 2, dtype=np.float64) / dim))
    low_wavelen, high_wavelen = old_ctx / low, old_ctx / high
    out = []
    for f in freqs:
        wavelen = 2 * math.pi / f
        if wavelen < high_wavelen:
            out.append(1.0)
        elif wavelen > low_wavelen:
            out.append(factor)
        else:
            smooth = (old_ctx / wavelen - low) / (high - low)
            out.append(1.0 / ((1 - smooth) / factor + smooth))
    return np.array(out, dtype=np.float32)


class TensorPlanner:
    def __init__(self, cfg: ModelConfig, reader: SafetensorsReader, outtype: str, embd_type: str,
                 output_type: str | None = None) -> None:
        self.cfg = cfg
        self.reader = reader
        self.outtype = outtype
        self.embd_qtype = EMBD_TYPES[embd_type]
        self.output_qtype = EMBD_TYPES[output_type or embd_type]
        self.used: set[str] = set()

    # --- checks ---------------------------------------------------------------------------------------
    def _where(self, name: str) -> str:
        return f"{self.reader.record(name).file}: tensor {name}"

    def _require(self, name: str, shape: tuple[int, ...], float_only: bool = True) -> None:
        if name not in self.reader:
            raise BitnetError(f"{self.cfg.model_dir}: missing tensor {name} (expected shape {list(shape)})")
        rec = self.reader.record(name)
        if rec.shape != shape:
            raise BitnetError(f"{rec.file}: tensor {name} has shape {list(rec.shape)}, expected {list(shape)}")
        if float_only and rec.dtype not in FLOAT_DTYPES:
            raise BitnetError(f"{rec.file}: tensor {name} has dtype {rec.dtype}, expected a float type")
        self.used.add(name)

    def _read_finite(self, hf: str, rows: tuple[int, int] | None = None) -> np.ndarray:
        """A float tensor (or rows [start, stop) of it). NaN or inf is a broken checkpoint: stop, naming where,
        instead of writing it on (a NaN master weight would even turn into arbitrary ternary values)."""
        x = self.reader.read(hf, rows)
        bad = np.argwhere(~np.isfinite(x))
        if bad.size:
            if x.ndim == 1:
                raise BitnetError(f"{self._where(hf)}: element {int(bad[0][0])} is NaN or infinite")
            raise BitnetError(f"{self._where(hf)}: row {(rows[0] if rows else 0) + int(bad[0][0])} has NaN or infinite values")
        return x

    # --- float tensors (norms, embedding, lm_head) ----------------------------------------------------
    def _norm(self, hf: str, gg: str, size: int) -> OutTensor:
        self._require(hf, (size,))
        return OutTensor(gg, (size,), Q.F32, size * 4,
                         StreamedTensor(size * 4, lambda: iter([self._read_finite(hf).astype(np.float32)]), gg))

    def _matrix(self, hf: str, gg: str, shape: tuple[int, int], qtype: int) -> OutTensor:
        self._require(hf, shape)
        block = gguf.GGML_QUANT_SIZES[Q(qtype)][0]
        if shape[1] % block:
            raise BitnetError(f"{self._where(hf)}: {shape[1]} columns are not a multiple of {Q(qtype).name}'s block of {block}")

        def chunks() -> Iterator[np.ndarray]:
            for start, stop in row_blocks(shape[0], shape[1] * 4):  # f32 rows: what a chunk holds read
                yield _float_bytes(self._read_finite(hf, (start, stop)), qtype)

        nbytes = _nbytes(shape, qtype)
        return OutTensor(gg, shape, qtype, nbytes, StreamedTensor(nbytes, chunks, gg))

    # --- ternary projections --------------------------------------------------------------------------
    def ternary(self, hf: str) -> tuple[np.ndarray, float]:
        """(t as int8 [M, K], scale) of one projection, whatever form the checkpoint stores it in."""
        rec = self.reader.record(hf)
        where = self._where(hf)
        scale_name = hf[: -len(".weight")] + ".weight_scale"
        quant = self.cfg.quant
        if rec.dtype == "U8":
            if quant is None or quant.mode != "offline":
                raise BitnetError(f"{where}: packed uint8 weight, but {self.cfg.config_path} has no offline bitnet quantization_config")
            if scale_name not in self.reader:
                raise BitnetError(f"{self.cfg.model_dir}: missing tensor {scale_name} (packed weight {hf} needs its scale)")
            self.used.add(scale_name)
            t = unpack_rows(self.reader.read(hf), where)
            return t, scale_from_weight_scale(self.reader.read(scale_name), quant, self._where(scale_name))
        if rec.dtype not in FLOAT_DTYPES:
            raise BitnetError(f"{where}: dtype {rec.dtype}, expected a float master weight or packed U8")
        w = self._read_finite(hf)
        if quant is not None and quant.mode == "offline":
            # AutoBitLinear offline may store unpacked ternary values (transformers packs only when rows = M/4)
            if scale_name not in self.reader:
                raise BitnetError(f"{self.cfg.model_dir}: missing tensor {scale_name} (offline-quantized {hf} needs its scale)")
            self.used.add(scale_name)
            return check_ternary_values(w, where), scale_from_weight_scale(self.reader.read(scale_name), quant, self._where(scale_name))
        # transformers scales even an exactly ternary-valued master weight by its mean, so no "already ternary" shortcut
        return absmean_ternarize(w)

    def _projection(self, hf: str, gg: str, shape: tuple[int, int], permute_heads: int | None) -> OutTensor:
        if hf not in self.reader:
            raise BitnetError(f"{self.cfg.model_dir}: missing tensor {hf} (expected shape {list(shape)})")
        rec = self.reader.record(hf)
        if rec.dtype != "U8" and rec.dtype not in FLOAT_DTYPES:  # judged now, before the file is created
            raise BitnetError(f"{rec.file}: tensor {hf}: dtype {rec.dtype}, expected a float master weight or packed U8")
        module = hf[: -len(".weight")]
        if self.cfg.quant is not None and any(module == m or module.startswith(m + ".") or module.endswith("." + m)
                                              for m in self.cfg.quant.modules_to_not_convert):
            # transformers keeps such a projection in float; ternarizing it would silently change the model
            raise BitnetError(f"{self.cfg.config_path}: {module} is in quantization_config.modules_to_not_convert "
                              "(float projections inside a ternary model are not supported)")
        expect = (shape[0] // 4, shape[1]) if rec.dtype == "U8" else shape
        if rec.dtype == "U8" and shape[0] % 4:
            raise BitnetError(f"{rec.file}: tensor {hf} is packed but its {shape[0]} rows are not a multiple of 4")
        if rec.shape != expect:
            what = f"packed shape {list(expect)} for {list(shape)}" if rec.dtype == "U8" else str(list(shape))
            raise BitnetError(f"{rec.file}: tensor {hf} has shape {list(rec.shape)}, expected {what}")
        self.used.add(hf)
        n = shape[0] * shape[1]
        ternary = TERNARY_GGUF_TYPES.get(self.outtype)
        if ternary is not None:
            if self.outtype == "i2_s" and n % QK_I2_S:
                raise BitnetError(f"{rec.file}: tensor {hf} has {n} elements ({shape[0]}x{shape[1]}), "
                                  f"I2_S needs a multiple of {QK_I2_S}; use --outtype f16 or tl2")
            if self.outtype in STOCK_TERNARY_TYPES and shape[1] % QK_TQ:
                # llama-quantize would fall back to Q4_0 here, which does not hold ternary weights exactly
                raise BitnetError(f"{rec.file}: tensor {hf} has rows of {shape[1]} values, {self.outtype.upper()} needs "
                                  f"a multiple of {QK_TQ}; use --outtype i2_s")
        # a packed weight's scale must be present before the header is written
        if rec.dtype == "U8" or (self.cfg.quant is not None and self.cfg.quant.mode == "offline"):
            scale_name = hf[: -len(".weight")] + ".weight_scale"
            if scale_name not in self.reader:
                raise BitnetError(f"{self.cfg.model_dir}: missing tensor {scale_name} (weight {hf} needs its scale)")
            self.used.add(scale_name)

        def values() -> tuple[np.ndarray, float]:
            t, s = self.ternary(hf)
            return (t if permute_heads is None else permute_qk(t, permute_heads)), s

        if ternary is not None:
            return ternary_tensor(gg, shape[0], shape[1], self.outtype, values)
        qtype = int(EMBD_TYPES[self.outtype])
        nbytes = _nbytes(shape, qtype)

        def chunks() -> Iterator[np.ndarray]:
            t, s = values()
            yield _float_bytes(t.astype(np.float32) * np.float32(s), qtype)

        return OutTensor(gg, shape, qtype, nbytes, StreamedTensor(nbytes, chunks, gg))

    # --- the whole model ------------------------------------------------------------------------------
    def plan(self) -> list[OutTensor]:
        c = self.cfg
        out: list[OutTensor] = [self._matrix("model.embed_tokens.weight", "token_embd.weight", (c.vocab, c.hidden), self.embd_qtype)]
        if c.rope_scaling and c.rope_scaling.get("rope_type", c.rope_scaling.get("type")) == "llama3":
            factors = llama3_rope_factors(c)
            out.append(OutTensor("rope_freqs.weight", factors.shape, Q.F32, factors.nbytes,
                                 StreamedTensor(factors.nbytes, lambda: iter([factors]), "rope_freqs.weight")))
        out.append(self._norm("model.norm.weight", "output_norm.weight", c.hidden))
        # a tied model has no lm_head; llama.cpp then reuses token_embd (our bitnet graph duplicates it)
        if "lm_head.weight" in self.reader and not c.tied:
            out.append(self._matrix("lm_head.weight", "output.weight", (c.vocab, c.hidden), self.output_qtype))
        elif "lm_head.weight" in self.reader:
            self.used.add("lm_head.weight")
        for il in range(c.layers):
            p = f"model.layers.{il}."
            for hf, gg in LAYER_NORMS.items():
                out.append(self._norm(f"{p}{hf}.weight", f"blk.{il}.{gg}.weight", c.hidden))
            if c.arch.sub_norms:
                for gg, names, size in zip(GGUF_SUB_NORMS, c.arch.sub_norms, sub_norm_sizes(c), strict=True):
                    hf = next((f"{p}{n}.weight" for n in names if f"{p}{n}.weight" in self.reader), f"{p}{names[0]}.weight")
                    out.append(self._norm(hf, f"blk.{il}.{gg}.weight", size))
            for proj in projections(c):
                heads = None
                if c.arch.permute_qk and proj.gguf == "attn_q":
                    heads = c.heads
                elif c.arch.permute_qk and proj.gguf == "attn_k":
                    heads = c.kv_heads
                out.append(self._projection(f"{p}{proj.hf}.weight", f"blk.{il}.{proj.gguf}.weight", (proj.rows, proj.cols), heads))
        extra = sorted(n for n in self.reader.tensors if n not in self.used and not IGNORED.match(n))
        if extra:
            rec = self.reader.record(extra[0])
            more = f" (and {len(extra) - 1} more)" if len(extra) > 1 else ""
            raise BitnetError(f"{rec.file}: unexpected tensor {extra[0]}{more} for {c.arch.hf_arch} "
                              f"with {c.layers} layers (config.json disagrees with the weights?)")
        return out
