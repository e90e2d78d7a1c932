"""Turn one checkpoint projection (master or packed) into ternary values t in {-1,0,1} plus a scale s, W = s*t.

The direction of `weight_scale` (verified against transformers 5.23, transformers/integrations/bitnet.py):
- linear_class "bitlinear" (BitLinear, the default; HF1BitLLM): forward computes
  y = F.linear(x_q, t) / (input_scale * weight_scale), i.e. W = t / weight_scale  -> s = 1 / weight_scale;
- linear_class "autobitlinear", quantization_mode "offline" (AutoBitLinear; microsoft/BitNet-b1.58-2B-4T):
  y = F.linear(x_q, t) * weight_scale, i.e. W = t * weight_scale  -> s = weight_scale.
- "online" AutoBitLinear has no weight_scale: the stored weight is a master weight ternarized at run time
  with absmean (WeightQuant), exactly what quants.absmean_ternarize does.
A wrong guess would be silent (every layer off by s²), so the oracle tests load packed checkpoints of both
classes in transformers and compare logits.
"""

from __future__ import annotations

import numpy as np

from ..errors import BitnetError
from .checkpoint import QuantConfig

VALUES_PER_BYTE = 4


def pack_rows(t: np.ndarray) -> np.ndarray:
    """int8 [M, K] in {-1,0,1} -> uint8 [M/4, K]: the inverse of unpack_rows (transformers' packed layout)."""
    m = t.shape[0]
    codes = (t.astype(np.int16) + 1).astype(np.uint8).reshape(VALUES_PER_BYTE, m // VALUES_PER_BYTE, t.shape[1])
    out = np.zeros((m // VALUES_PER_BYTE, t.shape[1]), dtype=np.uint8)
    for i in range(VALUES_PER_BYTE):
        out |= codes[i] << np.uint8(2 * i)
    return out


def unpack_rows(packed: np.ndarray, where: str) -> np.ndarray:
    """uint8 [M/4, K] -> int8 [M, K]: element (r + i*M/4, k) = ((byte >> 2i) & 3) - 1; code 3 is an error."""
    if packed.dtype != np.uint8 or packed.ndim != 2:
        raise BitnetError(f"{where}: packed weight must be 2-D uint8, got {packed.dtype} {packed.shape}")
    rows = packed.shape[0]
    out = np.empty((rows * VALUES_PER_BYTE, packed.shape[1]), dtype=np.int8)
    for i in range(VALUES_PER_BYTE):
        codes = (packed >> (2 * i)) & 3
        if np.any(codes == 3):
            r, k = np.argwhere(codes == 3)[0]
            raise BitnetError(f"{where}: packed code 3 at row {int(r) + i * rows}, column {int(k)} (valid codes are 0, 1, 2)")
        out[i * rows:(i + 1) * rows] = codes.astype(np.int8) - 1
    return out


def scale_from_weight_scale(weight_scale: np.ndarray, quant: QuantConfig, where: str) -> float:
    ws = np.asarray(weight_scale, dtype=np.float32).reshape(-1)
    if ws.size != 1:
        # transformers' BitLinear holds exactly one scale per projection
        raise BitnetError(f"{where}: weight_scale must hold 1 value, got shape {tuple(weight_scale.shape)}")
    v = np.float32(ws[0])
    if not np.isfinite(v) or v <= 0:
        raise BitnetError(f"{where}: weight_scale must be a positive finite number, got {float(v)}")
    if quant.linear_class == "bitlinear":
        return float(np.float32(1.0) / v)
    return float(v)


def check_ternary_values(w: np.ndarray, where: str) -> np.ndarray:
    """Unpacked offline weights stored as floats must already be -1/0/+1."""
    t = np.rint(w)
    if not np.array_equal(t, w) or (t.size and (t.min() < -1 or t.max() > 1)):
        raise BitnetError(f"{where}: offline-quantized weight must hold only -1, 0, 1")
    return t.astype(np.int8)
