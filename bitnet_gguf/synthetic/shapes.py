"""Model shapes for synthetic checkpoints: bitnet.cpp's presets plus the exact BitNet-b1.58-2B-4T shape."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Shape:
    hidden: int
    ffn: int
    layers: int
    heads: int
    kv_heads: int
    context: int = 4096
    rope_theta: float = 500000.0
    rms_eps: float = 1e-5

    @property
    def head_dim(self) -> int:
        return self.hidden // self.heads


SHAPES: dict[str, Shape] = {
    "tiny": Shape(hidden=256, ffn=512, layers=2, heads=4, kv_heads=2, context=512),
    "2B-4T": Shape(hidden=2560, ffn=6912, layers=30, heads=20, kv_heads=5),
    # 1bitLLM/bitnet_b1_58-3B: its ffn (K = 8640 for down_proj) is not a multiple of 128
    "3B": Shape(hidden=3200, ffn=8640, layers=26, heads=32, kv_heads=32, context=2048),
    # bitnet.cpp's generate-dummy-bitnet-model.py presets (kv heads = heads)
    "125M": Shape(768, 3072, 11, 12, 12),
    "350M": Shape(1024, 3072, 24, 16, 16),
    "700M": Shape(1536, 4096, 24, 16, 16),
    "1B": Shape(2048, 3584, 24, 32, 32),
    "1.5B": Shape(1536, 9216, 28, 32, 32),
    "2.7B": Shape(3072, 7680, 24, 32, 32),
    "3.8B": Shape(3840, 8192, 24, 32, 32),
    "7B": Shape(4096, 12032, 32, 32, 32),
    "13B": Shape(5120, 13824, 40, 40, 40),
    "30B": Shape(6656, 16384, 60, 52, 52),
    "70B": Shape(8192, 24576, 80, 64, 64),
    "100B": Shape(8192, 45568, 72, 64, 64),
}
