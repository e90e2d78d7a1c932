"""gguf-py on our files: the installed gguf after `import bitnet_gguf` (gguf_compat), `bitnet-gguf dump`, and the
vendored gguf-py of the patched llama.cpp source (patch 0019: gguf-dump, gguf-new-metadata, gguf-set-metadata).

The vendored tests read paths.source_dir()/gguf-py, or $BITNET_GGUF_TEST_SOURCE_DIR/gguf-py (a scratch tree with
the patches applied) when set."""

from __future__ import annotations

import hashlib
import json
import os
import pickle
import subprocess
import sys
from pathlib import Path

import gguf
import numpy as np
import pytest

import bitnet_gguf  # noqa: F401  (installs gguf_compat)
from bitnet_gguf import gguf_compat, paths
from bitnet_gguf.formats.gguf_read import GGUFFile
from bitnet_gguf.formats.gguf_write import _RawType, add_layout_keys, add_ternary_tensor
from bitnet_gguf.formats.quants import I2S
from bitnet_gguf.synthetic.gguf_model import write_synthetic_gguf

from .conftest import REPO_ROOT, run_tool


@pytest.fixture(scope="module")
def shakespeare(tiny_shakespeare_i2s: Path, bin_dir: Path) -> Path:
    """A folder with the trained default model as I2_S (Q6_K embedding) and as TL2 (a fresh clone has no .gguf)."""
    folder = tiny_shakespeare_i2s.parent
    tl2 = folder / "ggml-model-tl2.gguf"
    if not tl2.exists():
        r = subprocess.run([str(bin_dir / "llama-quantize"), str(tiny_shakespeare_i2s), str(tl2), "TL2"],
                           capture_output=True, text=True, timeout=300)
        assert r.returncode == 0, r.stderr[-2000:]
    return folder
QT = gguf.GGMLQuantizationType


def _up(n: int, m: int) -> int:
    return -(-n // m) * m


def expected_nbytes(type_name: str, k: int, m: int) -> int:
    """docs/formats.md §2 and §5, written out here on purpose (the code under test takes them from quants.py)."""
    if type_name == "I2_S":
        return m * k // 4 + 32
    if type_name == "TL1":
        return _up(m, 32) * _up(k, 2) // 4 + 32
    assert type_name == "TL2"
    return _up(m, 64) // 64 * _up(_up(k, 3) // 3, 8) // 8 * 320 + 32


def check_against_our_reader(path: Path, reader: gguf.GGUFReader | None = None) -> dict[str, gguf.ReaderTensor]:
    """Every tensor gguf-py reads has our reader's type, shape, offset, size and bytes; returns them by name."""
    reader = reader or gguf.GGUFReader(path)
    ours = GGUFFile(path)
    assert [t.name for t in reader.tensors] == list(ours.tensors)
    for t in reader.tensors:
        e = ours.tensors[t.name]
        assert int(t.tensor_type) == e.ggml_type, t.name
        assert tuple(int(d) for d in t.shape) == e.shape, t.name
        assert t.n_elements == e.n_elements and t.data_offset == e.offset and t.n_bytes == e.nbytes, t.name
        assert t.data.nbytes == t.n_bytes, t.name
        assert t.data.tobytes() == ours.data(t.name).tobytes(), t.name
    return {t.name: t for t in reader.tensors}


def check_ternary(tensors: dict[str, gguf.ReaderTensor], type_name: str) -> int:
    """The ternary tensors are `type_name`, with formats.md's byte counts, and 1-D data (bytes are not rows)."""
    n = 0
    for t in tensors.values():
        if t.tensor_type.name in ("I2_S", "TL1", "TL2"):
            assert t.tensor_type.name == type_name, t.name
            k, m = (int(d) for d in t.shape)
            assert t.n_elements == k * m and t.n_bytes == expected_nbytes(type_name, k, m), t.name
            assert t.data.shape == (t.n_bytes,) and t.data.dtype == np.uint8, t.name
            scale = float(t.data[-32:-28].view("<f4")[0])  # the tail: the f32 scale, then 28 zero bytes
            assert scale > 0 and not t.data[-28:].any(), t.name
            n += 1
    return n


@pytest.fixture(scope="module")
def small_vocab() -> Path:
    # 32000 tokens: the synthetic files stay small (the token embedding dominates them)
    return paths.vocab_gguf("ggml-vocab-llama-spm.gguf")


# ---- the installed gguf-py after import bitnet_gguf ---------------------------------------------------------


def test_enum_learns_our_types_once() -> None:
    n = len(QT)
    gguf_compat.install()
    gguf_compat.install()
    assert len(QT) == n
    assert [QT(i).name for i in (36, 38, 43)] == ["I2_S", "TL1", "TL2"]
    assert QT["I2_S"] is QT.I2_S is QT(36) and int(QT.TL2) == 43 and isinstance(QT.TL1, int)
    assert QT(39).name == "MXFP4"  # upstream's 39 is untouched: bitnet.cpp's TL2 id cannot be ours
    assert list(QT)[-3:] == [QT.I2_S, QT.TL1, QT.TL2]
    assert pickle.loads(pickle.dumps(QT.I2_S)) is QT.I2_S
    # bytes per element of the codes alone: 2 bits (I2_S, TL1), 5 bits per 3 weights (TL2)
    assert [gguf.GGML_QUANT_SIZES[QT(i)] for i in (36, 38, 43)] == [(4, 1), (4, 1), (24, 5)]


@pytest.mark.parametrize("order", ["gguf first", "bitnet_gguf first", "bitnet_gguf alone"])
def test_install_whatever_the_import_order(shakespeare: Path, order: str) -> None:
    code = {"gguf first": "import gguf, bitnet_gguf",
            "bitnet_gguf first": "import bitnet_gguf, gguf",
            "bitnet_gguf alone": "import bitnet_gguf, sys; assert 'gguf' not in sys.modules; import gguf"}[order]
    model = shakespeare / "ggml-model-i2_s.gguf"
    proc = subprocess.run([sys.executable, "-W", "error", "-c", f"{code}; r = gguf.GGUFReader({str(model)!r}); "
                           "print(sum(t.tensor_type.name == 'I2_S' for t in r.tensors), r.tensors[-1].n_bytes)"],
                          capture_output=True, text=True, timeout=60, cwd=REPO_ROOT)
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert proc.stdout.split() == ["28", str(768 * 256 // 4 + 32)]  # 4 layers x 7 projections; ffn_down 768 x 256


def test_tiny_shakespeare_i2s_with_q6k_embedding(shakespeare: Path) -> None:
    tensors = check_against_our_reader(shakespeare / "ggml-model-i2_s.gguf")
    assert check_ternary(tensors, "I2_S") == 28
    embd = tensors["token_embd.weight"]  # the tied lm_head: Q6_K, 210 bytes per 256 elements
    assert embd.tensor_type == QT.Q6_K and embd.n_elements == 256 * 2048 and embd.n_bytes == 2048 * 210
    q = tensors["blk.0.attn_q.weight"]
    assert q.n_bytes == 256 * 256 // 4 + 32 == len(q.data) == 16416
    t, scale = I2S.unpack(np.asarray(q.data), q.n_elements)  # exactly the bytes the codec needs
    assert scale > 0 and set(np.unique(t).tolist()) <= {-1, 0, 1}


def test_tiny_shakespeare_tl2(shakespeare: Path) -> None:
    tensors = check_against_our_reader(shakespeare / "ggml-model-tl2.gguf")
    assert check_ternary(tensors, "TL2") == 28
    # ffn_down: M = 256 rows (4 tiles of 64), K = 768 (256 groups of 3, 32 chunks of 8): 4 * 32 * 320 + 32
    assert tensors["blk.0.ffn_down.weight"].n_bytes == 40992


@pytest.fixture(scope="module")
def generated_tl1(tmp_path_factory: pytest.TempPathFactory, small_vocab: Path) -> Path:
    d = tmp_path_factory.mktemp("gen")
    # generate-model reads ggml-vocab-llama-bpe.gguf (128k tokens, a 70 MB file); the vocabulary does not matter
    # to the reader, so it gets the 32000-token one under that name
    (d / "vocab").mkdir()
    (d / "vocab" / "ggml-vocab-llama-bpe.gguf").symlink_to(small_vocab)
    out = d / "tl1.gguf"
    proc = subprocess.run([sys.executable, "-m", "bitnet_gguf", "generate-model", "--arch", "bitnet-b1.58", "--size", "tiny",
                           "--gguf", "tl1", "--vocab-dir", str(d / "vocab"), "--out", str(out)],
                          capture_output=True, text=True, timeout=300, cwd=REPO_ROOT)
    assert proc.returncode == 0, proc.stderr[-2000:]
    return out


def test_generate_model_tl1(generated_tl1: Path) -> None:
    tensors = check_against_our_reader(generated_tl1)
    assert check_ternary(tensors, "TL1") == 2 * 7
    # attn_k: K = 256, M = 128 (4 tiles of 32, 128 pairs): 128 * 256 / 4 + 32
    assert tensors["blk.0.attn_k.weight"].n_bytes == 8224


@pytest.mark.parametrize("qtype", ["i2_s", "tl2"])
@pytest.mark.parametrize("arch", ["bitnet-b1.58", "llama"])
def test_synthetic_models(tmp_path: Path, small_vocab: Path, arch: str, qtype: str) -> None:
    model = write_synthetic_gguf(tmp_path / "m.gguf", arch, "tiny", qtype, small_vocab, seed=3)
    tensors = check_against_our_reader(model)
    assert check_ternary(tensors, qtype.upper()) == 2 * 7
    assert ("output.weight" in tensors) == (arch == "llama")  # the bitnet presets are tied


@pytest.mark.parametrize("arch", ["bitnet", "bitnet-25"])
def test_bitnet_cpp_style_i2s(tmp_path: Path, small_vocab: Path, arch: str) -> None:
    """bitnet.cpp's I2_S files: the same type 36 and tail, an F16 embedding (its default)."""
    model = write_synthetic_gguf(tmp_path / f"{arch}.gguf", arch, "tiny", "i2_s", small_vocab, seed=4, embd_type="f16")
    reader = gguf.GGUFReader(model)
    assert reader.fields["general.architecture"].contents() == arch
    assert reader.fields["general.file_type"].contents() == 40  # bitnet.cpp's MOSTLY_I2_S
    tensors = check_against_our_reader(model, reader)
    assert check_ternary(tensors, "I2_S") == 14
    embd = tensors["token_embd.weight"]
    assert embd.tensor_type == QT.F16 and embd.data.shape == (32000, 256) and embd.n_bytes == 32000 * 256 * 2


def test_llama_quantize_output(bin_dir: Path, small_vocab: Path, tmp_path: Path) -> None:
    """llama-quantize's I2_S file (the C writer): gguf-py's sizes are ggml's, the embedding Q6_K."""
    f32 = write_synthetic_gguf(tmp_path / "f32.gguf", "bitnet-b1.58", "tiny", "f32", small_vocab, seed=6)
    out = tmp_path / "q.gguf"
    proc = run_tool(bin_dir, "llama-quantize", str(f32), str(out), "I2_S", "2")
    assert proc.returncode == 0, proc.stderr[-2000:]
    tensors = check_against_our_reader(out)
    assert check_ternary(tensors, "I2_S") == 14
    assert tensors["token_embd.weight"].tensor_type == QT.Q6_K


def _odd_shapes_file(path: Path, qtype: str) -> Path:
    """Shapes that are no whole number of rows per byte: K = 8640 for I2_S (rows start inside 128-blocks), TL rows
    and K padded to tiles and groups."""
    shapes = {"i2_s": [(4, 8640), (3, 128)], "tl1": [(33, 101), (32, 2)], "tl2": [(70, 100), (64, 24)]}[qtype]
    w = gguf.GGUFWriter(path, "bitnet-b1.58")
    add_layout_keys(w, qtype)
    rng = np.random.default_rng(5)
    for i, (m, k) in enumerate(shapes):
        add_ternary_tensor(w, f"t{i}.weight", rng.integers(-1, 2, size=(m, k), dtype=np.int8), 0.5 + i, qtype)
    w.add_tensor("after.weight", np.arange(7, dtype=np.float32))
    w.write_header_to_file()
    w.write_kv_data_to_file()
    w.write_tensors_to_file()
    w.close()
    return path


@pytest.mark.parametrize(("qtype", "sizes"), [("i2_s", [8672, 128]), ("tl1", [1664, 48]), ("tl2", [3232, 352])])
def test_odd_shapes(tmp_path: Path, qtype: str, sizes: list[int]) -> None:
    tensors = check_against_our_reader(_odd_shapes_file(tmp_path / "odd.gguf", qtype))
    assert check_ternary(tensors, qtype.upper()) == 2
    assert [tensors["t0.weight"].n_bytes, tensors["t1.weight"].n_bytes] == sizes
    assert [float(tensors[n].data[-32:-28].view("<f4")[0]) for n in ("t0.weight", "t1.weight")] == [0.5, 1.5]
    assert tensors["after.weight"].data.tolist() == list(range(7))  # the next tensor is where our sizes say


def _bitnet_cpp_tl_file(path: Path, kind: str) -> Path:
    """A bitnet.cpp TL file (as test_tl_refusal.py makes them): its file type, projections of its TL type, no
    layout key; the bytes are bitnet.cpp's size for 256 x 256 (n/4 + 32)."""
    type_id = {"TL1": 38, "TL2": 39}[kind]
    w = gguf.GGUFWriter(path, "bitnet-b1.58")
    w.add_file_type(type_id)
    w.add_tensor("token_embd.weight", np.zeros((64, 256), dtype=np.float16))
    for i in range(2):
        w.add_tensor(f"blk.{i}.attn_q.weight", np.full(256 * 256 // 4 + 32, i + 1, dtype=np.int8),
                     raw_shape=[256, 256], raw_dtype=_RawType(type_id, kind))  # type: ignore[arg-type]
    w.write_header_to_file()
    w.write_kv_data_to_file()
    w.write_tensors_to_file()
    w.close()
    return path


@pytest.mark.parametrize(("kind", "shown_as"), [("TL1", "TL1"), ("TL2", "MXFP4")])
def test_bitnet_cpp_tl_files_open(tmp_path: Path, kind: str, shown_as: str) -> None:
    """Their layout's size is not ours to know: each tensor gets the bytes the file reserves for it."""
    model = _bitnet_cpp_tl_file(tmp_path / "m.gguf", kind)
    reader = gguf.GGUFReader(model)
    t0, t1 = reader.tensors[1:]
    assert t0.tensor_type.name == t1.tensor_type.name == shown_as
    assert t0.n_elements == 65536 and t0.n_bytes == 16416 and set(t0.data.tolist()) == {1}  # 16416 is 32-aligned
    assert t1.data_offset + t1.n_bytes == model.stat().st_size and set(t1.data.tolist()) == {2}
    assert gguf_compat.bitnet_cpp_tl_note(reader) is not None
    proc = _dump(model)
    assert proc.returncode == 0 and f"| {shown_as:7} | blk.1.attn_q.weight" in proc.stdout
    assert f"note: {model}: bitnet.cpp {kind}" in proc.stderr and "Traceback" not in proc.stderr


def test_real_mxfp4_type_is_still_upstreams(tmp_path: Path) -> None:
    """Type 39 outside a bitnet.cpp TL2 file keeps gguf-py's MXFP4 sizes (17 bytes per 32 elements)."""
    w = gguf.GGUFWriter(tmp_path / "mx.gguf", "llama")
    w.add_file_type(38)  # upstream's MOSTLY_MXFP4_MOE
    w.add_tensor("x.weight", np.zeros((4, 64 // 32 * 17), dtype=np.uint8), raw_dtype=QT.MXFP4)
    w.write_header_to_file()
    w.write_kv_data_to_file()
    w.write_tensors_to_file()
    w.close()
    (t,) = gguf.GGUFReader(tmp_path / "mx.gguf").tensors
    assert t.tensor_type == QT.MXFP4 and t.n_elements == 256 and t.n_bytes == 136 and t.data.shape == (4, 34)


# ---- bitnet-gguf dump -------------------------------------------------------------------------------------


def _dump(*args: str | Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "bitnet_gguf", "dump", *map(str, args)],
                          capture_output=True, text=True, timeout=120, cwd=REPO_ROOT)


def test_dump_i2s_table(shakespeare: Path) -> None:
    model = shakespeare / "ggml-model-i2_s.gguf"
    proc = _dump(model)
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert "* Dumping 46 tensor(s)" in proc.stdout
    assert "      7:      65536 |   256,   256,     1,     1 | I2_S    | blk.0.attn_q.weight" in proc.stdout
    assert "     46:     196608 |   768,   256,     1,     1 | I2_S    | blk.3.ffn_down.weight" in proc.stdout
    assert "      1:     524288 |   256,  2048,     1,     1 | Q6_K    | token_embd.weight" in proc.stdout
    assert proc.stdout.count("| I2_S    |") == 28


def test_dump_json_and_markdown(shakespeare: Path) -> None:
    model = shakespeare / "ggml-model-tl2.gguf"
    proc = _dump("--json", model)
    assert proc.returncode == 0, proc.stderr[-2000:]
    data = json.loads(proc.stdout)
    assert data["tensors"]["blk.2.ffn_up.weight"]["type"] == "TL2"
    assert data["tensors"]["blk.2.ffn_up.weight"]["shape"] == [256, 768]
    assert data["metadata"]["bitnet.tl2.layout"]["value"] == "tl2/1 tile_rows=64 chunk_groups=8 signs=unpack16"
    md = _dump("--markdown", shakespeare / "ggml-model-i2_s.gguf")
    # bits per weight from n_bytes: 16416 bytes for 65536 weights (the tail included)
    assert "| 256 x 256 x 1 x 1 | I2_S |  2.0039 |" in md.stdout


def test_dump_equals_gguf_dump_where_gguf_dump_works(tmp_path: Path) -> None:
    """A file of upstream types only: our dump prints what gguf-dump prints, in each output form."""
    model = tmp_path / "upstream.gguf"
    w = gguf.GGUFWriter(model, "llama")
    w.add_name("upstream types")
    w.add_context_length(128)
    w.add_rope_freq_base(10000.0)
    w.add_array("tokenizer.ggml.tokens", ["a", "b", "<s>"])
    w.add_array("tokenizer.ggml.scores", [0.5, 0.25, 0.0])
    w.add_tensor("f32.weight", np.arange(64, dtype=np.float32).reshape(2, 32))
    w.add_tensor("f16.weight", np.ones((4, 32), dtype=np.float16))
    w.add_tensor("q8.weight", np.zeros((2, 34), dtype=np.uint8), raw_dtype=QT.Q8_0)
    w.write_header_to_file()
    w.write_kv_data_to_file()
    w.write_tensors_to_file()
    w.close()
    for form in ([], ["--json", "--json-array"], ["--markdown"], ["--no-tensors"], ["--data-offset"]):
        ours = _dump(*form, model)
        theirs = subprocess.run([sys.executable, "-m", "gguf.scripts.gguf_dump", *form, str(model)],
                                capture_output=True, text=True, timeout=120)
        assert ours.returncode == theirs.returncode == 0, ours.stderr[-2000:]
        assert ours.stdout == theirs.stdout and ours.stdout.strip(), form
    assert "| Q8_0    | q8.weight" in _dump(model).stdout


def test_stock_gguf_dump_cannot_read_our_files(shakespeare: Path) -> None:
    """Why the compat exists (if gguf-py learns type 36 one day, this fails and the compat steps aside)."""
    proc = subprocess.run([sys.executable, "-m", "gguf.scripts.gguf_dump", str(shakespeare / "ggml-model-i2_s.gguf")],
                          capture_output=True, text=True, timeout=120)
    assert proc.returncode != 0 and proc.stderr.rstrip().endswith("np.uint32(36) is not a valid GGMLQuantizationType")


def _one_line_error(proc: subprocess.CompletedProcess[str], path: Path, what: str) -> None:
    assert proc.returncode == 1 and proc.stdout == ""
    assert proc.stderr.count("\n") == 1 and proc.stderr.startswith(f"error: {path}: ") and what in proc.stderr, proc.stderr


def test_dump_errors_are_one_line(shakespeare: Path, tmp_path: Path) -> None:
    good = (shakespeare / "ggml-model-i2_s.gguf").read_bytes()
    _one_line_error(_dump(tmp_path / "missing.gguf"), tmp_path / "missing.gguf", "No such file")
    (tmp_path / "text.gguf").write_text("hello, not a model\n")
    _one_line_error(_dump(tmp_path / "text.gguf"), tmp_path / "text.gguf", "not a GGUF file")
    (tmp_path / "empty.gguf").write_bytes(b"")
    _one_line_error(_dump(tmp_path / "empty.gguf"), tmp_path / "empty.gguf", "not a GGUF file")
    for n in (30, 5000, 1_000_000, len(good) - 1):  # in the header, the metadata, the tensor data, the last byte
        cut = tmp_path / f"cut{n}.gguf"
        cut.write_bytes(good[:n])
        _one_line_error(_dump(cut), cut, "truncated")


# ---- the vendored gguf-py with patch 0019 -----------------------------------------------------------------


@pytest.fixture(scope="module")
def gguf_py() -> Path:
    src = Path(os.environ.get("BITNET_GGUF_TEST_SOURCE_DIR") or paths.source_dir())
    d = src / "gguf-py"
    if "I2_S    = 36" not in (d / "gguf" / "constants.py").read_text():
        pytest.fail(f"{d} lacks patch 0019 (gguf-py I2_S/TL1/TL2): run python setup_env.py")
    return d


def _vendored(gguf_py: Path, script: str, *args: str | Path, check: bool = True) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "PYTHONPATH": str(gguf_py)}
    proc = subprocess.run([sys.executable, str(gguf_py / "gguf" / "scripts" / script), *map(str, args)],
                          capture_output=True, text=True, timeout=300, env=env, cwd=REPO_ROOT)
    if check:
        assert proc.returncode == 0, proc.stderr[-2000:]
    return proc


_READ = """
import hashlib, json, sys
import gguf
import bitnet_gguf  # must leave a gguf-py that knows type 36 alone
assert not hasattr(gguf.GGUFReader, "_bitnet_gguf_compat")
r = gguf.GGUFReader(sys.argv[1])
print(json.dumps({"gguf": gguf.__file__, "tensors": [[t.name, t.tensor_type.name, t.n_elements, t.n_bytes, t.data_offset,
    list(t.data.shape), hashlib.sha256(t.data.tobytes()).hexdigest()] for t in r.tensors]}))
"""


@pytest.mark.parametrize("which", ["i2_s", "tl1", "tl2", "odd-i2_s", "odd-tl1", "odd-tl2"])
def test_vendored_reader(shakespeare: Path, gguf_py: Path, generated_tl1: Path, tmp_path: Path, which: str) -> None:
    model = {"i2_s": shakespeare / "ggml-model-i2_s.gguf", "tl1": generated_tl1, "tl2": shakespeare / "ggml-model-tl2.gguf"}.get(which)
    if model is None:
        model = _odd_shapes_file(tmp_path / "odd.gguf", which[4:])
    env = {**os.environ, "PYTHONPATH": str(gguf_py)}
    proc = subprocess.run([sys.executable, "-c", _READ, str(model)], capture_output=True, text=True, timeout=120, env=env, cwd=REPO_ROOT)
    assert proc.returncode == 0, proc.stderr[-2000:]
    got = json.loads(proc.stdout)
    assert Path(got["gguf"]).resolve().is_relative_to(gguf_py.resolve())
    ours = GGUFFile(model)
    n_ternary = 0
    for name, type_name, n_elements, n_bytes, offset, data_shape, sha in got["tensors"]:
        e = ours.tensors[name]
        assert (n_elements, n_bytes, offset) == (e.n_elements, e.nbytes, e.offset), name
        assert sha == hashlib.sha256(ours.data(name).tobytes()).hexdigest(), name
        if type_name in ("I2_S", "TL1", "TL2"):
            assert n_bytes == expected_nbytes(type_name, *e.shape) and data_shape == [n_bytes], name
            n_ternary += 1
    assert n_ternary == {"i2_s": 28, "tl1": 14, "tl2": 28}.get(which, 2)


def test_vendored_gguf_dump(shakespeare: Path, gguf_py: Path) -> None:
    proc = _vendored(gguf_py, "gguf_dump.py", shakespeare / "ggml-model-i2_s.gguf")
    assert "      7:      65536 |   256,   256,     1,     1 | I2_S    | blk.0.attn_q.weight" in proc.stdout
    assert proc.stdout.count("| I2_S    |") == 28
    proc = _vendored(gguf_py, "gguf_dump.py", shakespeare / "ggml-model-tl2.gguf")
    assert proc.stdout.count("| TL2     |") == 28


def _greedy(bin_dir: Path, model: Path) -> str:
    proc = run_tool(bin_dir, "llama-completion", "-m", str(model), "-p", "ROMEO:", "-n", "16", "-t", "2", "--temp", "0",
                    "-no-cnv", "--no-warmup", timeout=120)
    assert proc.returncode == 0, proc.stderr[-2000:]
    return proc.stdout


@pytest.mark.parametrize("qtype", ["i2_s", "tl2"])
def test_vendored_new_metadata_round_trip(shakespeare: Path, gguf_py: Path, bin_dir: Path, tmp_path: Path, qtype: str) -> None:
    src = shakespeare / f"ggml-model-{qtype}.gguf"
    out = tmp_path / "renamed.gguf"
    _vendored(gguf_py, "gguf_new_metadata.py", src, out, "--general-name", "renamed by gguf-new-metadata")
    before, after = GGUFFile(src), GGUFFile(out)
    assert before.metadata["general.name"] == "tiny-shakespeare"
    assert after.metadata == {**before.metadata, "general.name": "renamed by gguf-new-metadata"}
    assert {n: (t.ggml_type, t.shape, t.nbytes) for n, t in after.tensors.items()} == \
        {n: (t.ggml_type, t.shape, t.nbytes) for n, t in before.tensors.items()}
    for name in before.tensors:
        assert after.data(name).tobytes() == before.data(name).tobytes(), name
    text = _greedy(bin_dir, out)
    assert text == _greedy(bin_dir, src) and len(text) > len("ROMEO:") + 10


def test_vendored_set_metadata_in_place(shakespeare: Path, gguf_py: Path, tmp_path: Path) -> None:
    model = tmp_path / "m.gguf"
    model.write_bytes((shakespeare / "ggml-model-i2_s.gguf").read_bytes())
    key = "bitnet-b1.58.context_length"
    old = GGUFFile(model).metadata[key]
    _vendored(gguf_py, "gguf_set_metadata.py", model, key, str(old // 2), "--force")
    assert GGUFFile(model).metadata[key] == old // 2 and old // 2 > 0


def test_vendored_writer_refuses_a_byte_shape(gguf_py: Path) -> None:
    """The writer takes the element shape of these types and checks it against the byte count."""
    code = ("import gguf, numpy as np\nw = gguf.GGUFWriter('/dev/null', 'x')\n"
            "w.add_tensor('ok', np.zeros(8 * 128 // 4 + 32, np.uint8), raw_shape=[8, 128], raw_dtype=gguf.GGMLQuantizationType.I2_S)\n"
            "try:\n    w.add_tensor('bad', np.zeros(8 * 128 // 4 + 32, np.uint8), raw_dtype=gguf.GGMLQuantizationType.I2_S)\n"
            "except ValueError as e:\n    print(e)\n")
    env = {**os.environ, "PYTHONPATH": str(gguf_py)}
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60, env=env)
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert proc.stdout.strip() == "'bad': 288 bytes for I2_S of shape (288,), expected 104"

