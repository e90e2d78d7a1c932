"""Type ids and sizes of our formats (docs/formats.md §1-2): the one home of every number a GGUF file carries for them."""

from __future__ import annotations

# ggml tensor type of I2_S, as bitnet.cpp writes it (upstream has no type 36)
GGML_TYPE_I2_S = 36
QK_I2_S = 128  # elements per block: a tensor must hold a whole number of blocks
I2_S_TAIL_BYTES = 32  # after the codes: the f32 per-tensor scale, then zeros

# Lookup-table layouts (docs/formats.md §5). TL1 keeps bitnet.cpp's id 38 (free upstream); TL2 cannot take
# bitnet.cpp's 39 (upstream's MXFP4), so it takes 43, the first id after upstream's GGML_TYPE_COUNT at our pin.
GGML_TYPE_TL1 = 38
GGML_TYPE_TL2 = 43
TL1_TILE_ROWS = 32  # rows per tile; one 16-byte vector of 4-bit indices covers a tile's rows for one pair
TL2_TILE_ROWS = 64  # rows per tile; one 64-byte vector of indices covers a tile's rows for one group
TL2_CHUNK_GROUPS = 8  # groups of 3 weights per chunk: 4 x 64 index bytes, then 8 x 8 sign bytes (320 bytes)
# A file with TL1/TL2 tensors names each layout in a key; a build reads only its own (GGML_TL*_LAYOUT in patch 0016)
TL1_LAYOUT_KEY = "bitnet.tl1.layout"
TL1_LAYOUT = "tl1/1 tile_rows=32 pair_index=3w0+w1+4"
TL2_LAYOUT_KEY = "bitnet.tl2.layout"
TL2_LAYOUT = "tl2/1 tile_rows=64 chunk_groups=8 signs=unpack16"

# general.file_type by the weight type of a whole file (the converter's --outtype). 40 is what bitnet.cpp writes
# for I2_S files (upstream's id for MOSTLY_Q1_0; readers tell the two apart by the tensor types, §1).
LLAMA_FTYPE_I2_S_IN_FILES = 40
# TL1/TL2 files say 138/143 (100 + the tensor type, clear of upstream's and bitnet.cpp's ids; patch 0018)
LLAMA_FTYPE_TL1 = 138
LLAMA_FTYPE_TL2 = 143
# upstream's ternary types (docs/convert.md "Files for stock llama.cpp"): ggml types 34/35, 256-element blocks with
# an f16 scale each; files say upstream's LLAMA_FTYPE_MOSTLY_TQ1_0 / TQ2_0 (llama.h), as llama-quantize writes them
GGML_TYPE_TQ1_0 = 34
GGML_TYPE_TQ2_0 = 35
QK_TQ = 256  # elements per block (ggml's QK_K)
TQ1_0_BLOCK_BYTES = 48 + 4 + 2  # qs: 5 trits per byte (240 values), qh: 4 trits per byte (16 values), f16 d
TQ2_0_BLOCK_BYTES = 64 + 2  # qs: 2-bit codes, f16 d
LLAMA_FTYPE_TQ1_0 = 36
LLAMA_FTYPE_TQ2_0 = 37
FILE_TYPES: dict[str, int] = {"f32": 0, "f16": 1, "bf16": 32, "i2_s": LLAMA_FTYPE_I2_S_IN_FILES,
                              "tl1": LLAMA_FTYPE_TL1, "tl2": LLAMA_FTYPE_TL2,
                              "tq1_0": LLAMA_FTYPE_TQ1_0, "tq2_0": LLAMA_FTYPE_TQ2_0}
# --outtype values whose files an unpatched llama.cpp loads (upstream types and keys only)
STOCK_TERNARY_TYPES = ("tq1_0", "tq2_0")

# bitnet.cpp's ternary weight types (setup_env.py -q)
TERNARY_TYPES = ("i2_s", "tl1", "tl2")

# general.file_type of bitnet.cpp's own TL files (its MOSTLY_TL1/TL2; upstream uses 38/39 for MXFP4_MOE/NVFP4,
# never with a bitnet architecture). Their tensors (types 38 and 39) are refused by our build (docs/formats.md §5).
BITNET_CPP_TL_FILE_TYPES: dict[int, str] = {38: "TL1", 39: "TL2"}

# ggml type ids an unpatched llama.cpp at our pin reads: 0..42 (GGML_TYPE_COUNT 43) without the removed ids
# 4, 5 (Q4_2, Q4_3), 31-33 (Q4_0_4_4 and friends), 37 (IQ4_NL_4_8) and 36 / 38 (unused upstream: our I2_S / TL1)
UPSTREAM_GGML_TYPE_COUNT = 43
UPSTREAM_GGML_TYPES = frozenset(range(UPSTREAM_GGML_TYPE_COUNT)) - {4, 5, 31, 32, 33, 36, 37, 38}
