"""Streaming GGUF writers (issue 12, item 0): generate-model --gguf and convert write the header first, then one
tensor at a time. The bytes are those of the former in-memory writer, memory holds one tensor whatever the model's
size, and an interrupted write (Ctrl-C, SIGTERM, SIGHUP, SIGKILL) leaves no temporary file behind for long."""

from __future__ import annotations

import fcntl
import hashlib
import os
import pty
import re
import select
import signal
import struct
import subprocess
import sys
import tempfile
import termios
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import gguf
import numpy as np
import pytest

from bitnet_gguf import fileio, paths
from bitnet_gguf.formats import gguf_write, quants
from bitnet_gguf.synthetic.gguf_model import write_synthetic_gguf
from bitnet_gguf.tools.sweep import run_with_peak_rss

REPO_ROOT = Path(__file__).resolve().parent.parent
MiB = 1 << 20

# sha256 of what the in-memory writer (before streaming, commit fb2b38e) wrote for the tiny preset, seed 7, with
# llama.cpp's 32000-token SPM vocabulary: the streamed files must be these bytes exactly
BEFORE_STREAMING = {
    ("bitnet-b1.58", "f32", None): "5698cb729893ce7ee0ca21fe9e1274f594e20ad08900eee441c32a5b7bf2d1f2",
    ("bitnet-b1.58", "f16", None): "0db8dce7c26d7519ba66fa6eb10707401f7de5b4cba0eeda3c2a0f05a9a7dc1b",
    ("bitnet-b1.58", "i2_s", None): "23509841f7707fc861fb9d2b1087f0436e33b5753f52a182c95020d50f402a9f",
    ("bitnet-b1.58", "tl1", None): "4c9751e07b0becb6ed0f1f5c82a1ecf9d53bfce1e23ea0f1ca30a314884a935c",
    ("bitnet-b1.58", "tl2", None): "39a26255256848823feca81ed97b14d8215c24b5401a0507bc8a99095db1d002",
    ("bitnet-b1.58", "tq1_0", None): "f86ddba7f0fe470e9e5e536a2408e8582ccb0bde91e023e4697fb0bbf22030cf",
    ("bitnet-b1.58", "tq2_0", None): "7c8cc643ebc79faa41972a4148d355d95d6e9bef9260e396491d66ccc6fc089b",
    ("bitnet-25", "f32", None): "6993fc374c2983837d12743d62eb65ac898cf589876bf62ee8aaeb0b721120ec",
    ("bitnet-25", "f16", None): "2a156456a6592f355ca621e04b3d584bd01a9d81e90074211def95850311d73d",
    ("bitnet-25", "i2_s", None): "f8b38e6454f5d65f2f8180fd6dcea0d361f3a923270ebdd1e7274d6d55625a2d",
    ("bitnet-25", "tl1", None): "620fa5cf73753f4401ba6e813b3984beec830edfd09a98e9d1933ee6173eca1d",
    ("bitnet-25", "tl2", None): "6e021855499680430a149dbda3ec60bbb40c1a0c6ccf91773dfcbd9b3d3e1c6f",
    ("bitnet-25", "tq1_0", None): "f53d4257c6ae0216bed08ff9b1fbaecb98825688a8450436038607daf961c1af",
    ("bitnet-25", "tq2_0", None): "d0a3dbfaf2fe28f64fe6da51a457f0e860c9c44f2052244e98ff79c57f580c0a",
    ("bitnet", "f32", None): "e25d148d51db5447f0b65c0003c9d8a91c9d18da0e434edd818e28a731ef5fe1",
    ("bitnet", "f16", None): "88be36d3e3ef458da832c457699caaf547c4135d1463bde044f9b372882d4337",
    ("bitnet", "i2_s", None): "aa2832ed43f2b3596106a98e27bf66fab8889a0ec4ef0611bc0c07a964fc8b91",
    ("bitnet", "tl1", None): "d5908b92059ac446d6955ffb9cd470eab77eecbe55d39fca3ad9e11a537dfa93",
    ("bitnet", "tl2", None): "9cf3f401f0e0543808a06df4741f7dce1628c4cf7d6dfa968fa790b720db5f07",
    ("bitnet", "tq1_0", None): "ea85d4190dd30fb510a168338c4a14d55800ce73bf14c7b24a59afda544d3338",
    ("bitnet", "tq2_0", None): "560c5d5e8c085e8f368bced7b893cd87f6f598c8610a913d4e28b35cb681924f",
    ("llama", "f32", None): "efdcbdd353c5f4a77f9f3a77cc95c6d25aa61a9fa979ce352002dd61492b1645",
    ("llama", "f16", None): "635ef6d4c430056afbfe73ba81b484239919d598e9eee8559a69f14dcfd8926c",
    ("llama", "i2_s", None): "f459795156677a8cec1b918241c0976a75625042840f8c92d4ce85b8f561761b",
    ("llama", "tl1", None): "85e3fb53141cfe7e299913b6fdd2bdf91754ebdc752056cce390389f7d54dcc1",
    ("llama", "tl2", None): "65acf0e3b6e4ad85ff9cd19186febf9e4516ebf1953166e658a4087778032c64",
    ("llama", "tq1_0", None): "6b3f8e3d9ffd751f5f8806aa75dff16d6b4c2b9374c65c31d27fa4a91794f3c0",
    ("llama", "tq2_0", None): "c9238fa89651ebf4b531c4f55d04f95817e7c18dc0490c09828cb63ddf30c8b8",
    # --embd-type other than the outtype's float type (the synthetic writer's embd_type)
    ("bitnet-b1.58", "i2_s", "f32"): "ef7b3281497e42ea6d51e7e22038b0532cf6a7470b4d80645a07394995c714eb",
    ("bitnet-b1.58", "f16", "f32"): "9fef29dbb7851f6036142040715bc2a5aa393fba1503dfa2cd9c4ecc242edc70",
    ("bitnet-b1.58", "f32", "f16"): "70fca2c5ab276424d4184d7271ae61582aaebf1957c605a0a1133bb997c50aee",
    ("llama", "i2_s", "f32"): "a1681622a129c8b48c7fce6c7b3d83a5e9bf0b0de36aae9b64c1b231034be74d",
    ("llama", "f16", "f32"): "5fc75aac8d4f968f6cd22c934c3eb2b872f74142e21ef667a21c27d57ebdc130",
    ("llama", "f32", "f16"): "aa01cba206b1ffb810953515c2611c7dc8090f628b2e20fcbccf87c793922e2e",
}

# the mid-size preset of the memory and signal tests (bitnet-b1.58, i2_s, 32000-token vocabulary): 1.17 GB written
# in ~25 s here; its largest tensor is token_embd, 32000 x 3840 f16
RSS_SIZE = "3.8B"
SIGNAL_SIZE = "1.5B"  # 464 MB in ~10 s: signalled once 64 MiB are written, long before it ends
# what the writer may hold besides its largest tensor: the interpreter with numpy and gguf-py and the tokenizer
# keys (128 MB for the tiny preset here), one projection while it is packed (~30 MB at 3.8B) and a row chunk of
# the embedding. Measured here: 173 MB streamed (the embedding is drawn in chunks, never whole); the in-memory
# writer peaked at 1524 MB on this preset (the whole model).
RSS_MARGIN = 192 * MiB


def _sha256(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(16 * MiB), b""):
            h.update(block)
    return h.hexdigest()


@pytest.fixture(scope="module")
def small_vocab() -> Path:
    return paths.vocab_gguf("ggml-vocab-llama-spm.gguf")


@pytest.fixture(scope="module")
def vocab_dir(tmp_path_factory: pytest.TempPathFactory, small_vocab: Path) -> Path:
    """A --vocab-dir whose ggml-vocab-llama-bpe.gguf (what generate-model reads) is the 32000-token SPM vocabulary:
    the token embedding then stays a small part of a mid-size model."""
    d = tmp_path_factory.mktemp("vocab")
    (d / "ggml-vocab-llama-bpe.gguf").symlink_to(small_vocab)
    return d


def _generate_argv(size: str, out: Path, vocab_dir: Path) -> list[str]:
    return [sys.executable, "-m", "bitnet_gguf", "generate-model", "--arch", "bitnet-b1.58", "--size", size,
            "--gguf", "i2_s", "--vocab-dir", str(vocab_dir), "--out", str(out)]


def _temporaries(out: Path) -> list[Path]:
    return sorted(out.parent.glob(f".{out.name}.*.tmp"))


# ---- bytes: the same as the in-memory writer ----------------------------------------------------------------

@pytest.mark.parametrize(("arch", "outtype", "embd_type"), list(BEFORE_STREAMING),
                         ids=[f"{a}-{o}" + (f"-embd_{e}" if e else "") for a, o, e in BEFORE_STREAMING])
def test_bytes_equal_the_in_memory_writer(arch: str, outtype: str, embd_type: str | None, small_vocab: Path,
                                          tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    # chunks of 3 rows (and a last one of 2: 32000 = 3 * 10666 + 2), so the row-chunked draws of the embedding
    # and the lm_head are what is compared, not one whole-matrix draw as the tiny preset's default chunk makes
    monkeypatch.setattr(gguf_write, "CHUNK_BYTES", 3 * 256 * 4 + 5)
    out = write_synthetic_gguf(tmp_path / "m.gguf", arch, "tiny", outtype, small_vocab, seed=7, embd_type=embd_type,
                               progress=False)
    assert _sha256(out) == BEFORE_STREAMING[(arch, outtype, embd_type)]


@pytest.mark.parametrize("outtype", ["i2_s", "f16"])
def test_bytes_equal_with_the_default_chunks(outtype: str, small_vocab: Path, tmp_path: Path) -> None:
    out = write_synthetic_gguf(tmp_path / "m.gguf", "llama", "tiny", outtype, small_vocab, seed=7, progress=False)
    assert _sha256(out) == BEFORE_STREAMING[("llama", outtype, None)]


def test_row_blocks_cover_every_row_once(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(gguf_write, "CHUNK_BYTES", 100)
    assert list(gguf_write.row_blocks(7, 40)) == [(0, 2), (2, 4), (4, 6), (6, 7)]
    assert list(gguf_write.row_blocks(3, 1000)) == [(0, 1), (1, 2), (2, 3)]  # a row larger than a chunk: one row
    assert list(gguf_write.row_blocks(0, 40)) == []


def test_i2s_pack_in_block_chunks_equals_one_pass(monkeypatch: pytest.MonkeyPatch) -> None:
    """I2S.pack works through a tensor in chunks of whole blocks (its temporaries were 5x a 70B FFN matrix)."""
    t = np.random.default_rng(3).integers(-1, 2, size=(40, 128 * 5), dtype=np.int8)
    monkeypatch.setattr(quants, "_I2S_PACK_CHUNK", 1 << 40)
    whole = quants.I2S.pack(t, 0.3)
    monkeypatch.setattr(quants, "_I2S_PACK_CHUNK", 128 * 3)  # 66 chunks and a last partial one (25600 weights)
    chunked = quants.I2S.pack(t, 0.3)
    assert chunked.dtype == np.uint8 and chunked.tobytes() == whole.tobytes() and chunked.size == t.size // 4 + 32
    values, scale = quants.I2S.unpack(chunked, t.size)
    assert np.array_equal(values, t.reshape(-1)) and scale == np.float32(0.3)


# ---- memory: one tensor, not the model ----------------------------------------------------------------------

def _run_measured(argv: list[str], timeout: float) -> tuple[int, int, str]:
    """(exit code, peak RSS in bytes, stderr) of a child; the peak through a small intermediate process
    (run_with_peak_rss): a child forked from pytest itself would start at pytest's own RSS."""
    with tempfile.TemporaryFile("w+") as err:
        rc, peak = run_with_peak_rss(argv, stdout=subprocess.DEVNULL, stderr=err, timeout=timeout)
        err.seek(0)
        return rc, peak, err.read()


def test_peak_rss_is_one_tensor_not_the_model(vocab_dir: Path, tmp_path: Path) -> None:
    out = tmp_path / "m.gguf"
    rc, peak, err = _run_measured(_generate_argv(RSS_SIZE, out, vocab_dir), timeout=300)
    assert rc == 0, err[-2000:]
    reader = gguf.GGUFReader(out)
    largest = max(int(t.n_bytes) for t in reader.tensors)
    assert largest == 32000 * 3840 * 2  # token_embd, f16
    size = out.stat().st_size
    del reader
    out.unlink()  # 1.17 GB: not kept for the rest of the session
    assert size > 4 * largest, f"file {size / MiB:.0f} MiB, largest tensor {largest / MiB:.0f} MiB"
    assert peak < largest + RSS_MARGIN, (f"peak RSS {peak / MiB:.0f} MiB for a {size / MiB:.0f} MiB file whose "
                                         f"largest tensor is {largest / MiB:.0f} MiB (margin {RSS_MARGIN / MiB:.0f} MiB)")


# ---- interrupted writes ---------------------------------------------------------------------------------------

def _default_signals() -> None:
    # the writer starts as from an interactive shell, whatever this test runs under (CI may ignore SIGINT/SIGHUP
    # for its children, and Python then never turns SIGINT into KeyboardInterrupt)
    for s in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP):
        signal.signal(s, signal.SIG_DFL)


def _start_and_wait_for_data(argv: list[str], out: Path, min_bytes: int = 64 * MiB) -> tuple[subprocess.Popen[bytes], Path]:
    """Start a writer and return once its temporary holds min_bytes (the header and some tensor data)."""
    proc = subprocess.Popen(argv, cwd=REPO_ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
                            preexec_fn=_default_signals)
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        tmps = [p for p in _temporaries(out) if f".{proc.pid}." in p.name]
        if tmps and tmps[0].stat().st_size >= min_bytes:
            assert proc.poll() is None, "the writer ended before it could be interrupted"
            return proc, tmps[0]
        if proc.poll() is not None:
            raise AssertionError(f"writer exited with {proc.returncode}: {proc.stderr.read().decode()[-2000:]}")  # type: ignore[union-attr]
        time.sleep(0.02)
    proc.kill()
    raise AssertionError("the writer's temporary never reached 64 MiB")


@pytest.mark.parametrize(("signum", "returncode", "stderr"), [
    (signal.SIGINT, 130, "error: interrupted\n"),  # Ctrl-C: KeyboardInterrupt, run_cli's one line
    (signal.SIGTERM, -signal.SIGTERM, ""),  # still dies of the signal, after removing its temporary
    (signal.SIGHUP, -signal.SIGHUP, ""),  # the terminal closed
], ids=["SIGINT", "SIGTERM", "SIGHUP"])
def test_signal_mid_write_removes_the_temporary_and_keeps_the_previous_file(
        signum: int, returncode: int, stderr: str, vocab_dir: Path, tmp_path: Path) -> None:
    out = tmp_path / "m.gguf"
    out.write_bytes(b"previous model")
    proc, tmp = _start_and_wait_for_data(_generate_argv(SIGNAL_SIZE, out, vocab_dir), out)
    proc.send_signal(signum)
    _, err = proc.communicate(timeout=60)
    assert proc.returncode == returncode, err.decode()[-2000:]
    assert err.decode() == stderr
    assert not tmp.exists(), f"{tmp.name} ({tmp.stat().st_size} bytes) left behind"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["m.gguf"] and out.read_bytes() == b"previous model"


def test_temporaries_of_killed_writers_are_removed_by_the_next_run(vocab_dir: Path, tmp_path: Path) -> None:
    out = tmp_path / "m.gguf"
    proc, killed_tmp = _start_and_wait_for_data(_generate_argv(SIGNAL_SIZE, out, vocab_dir), out)
    proc.kill()  # SIGKILL: no cleanup can run
    proc.communicate(timeout=60)
    assert killed_tmp.stat().st_size >= 64 * MiB  # what kill -9 (or the OOM killer) leaves
    dead = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True).stdout.strip()
    stale = tmp_path / f".m.gguf.{dead}.k1ll3d.tmp"
    stale.write_bytes(b"")  # the 0-byte temporary of a writer killed before its first byte
    live = tmp_path / f".m.gguf.{os.getpid()}.writing.tmp"  # a running writer's (this process is alive): kept
    live.write_bytes(b"x")

    r = subprocess.run(_generate_argv("tiny", out, vocab_dir), cwd=REPO_ROOT, capture_output=True, text=True, timeout=120)
    assert r.returncode == 0, r.stderr[-2000:]
    assert not killed_tmp.exists() and not stale.exists() and live.exists()
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted(["m.gguf", live.name])
    assert len(gguf.GGUFReader(out).tensors) == 2 + 2 * (4 + 7)  # whole: embd, norm; 2 layers of 4 norms, 7 projections


def test_signal_handlers_are_restored_and_kept_when_not_default(tmp_path: Path) -> None:
    def mine(signum: int, frame: object) -> None:
        pass

    before = signal.signal(signal.SIGHUP, mine), signal.signal(signal.SIGTERM, signal.SIG_DFL)
    try:
        with fileio.atomic_output(tmp_path / "a", terminable=True) as tmp:
            assert signal.getsignal(signal.SIGHUP) is mine  # the program's own handler is not taken over
            assert signal.getsignal(signal.SIGTERM) not in (signal.SIG_DFL, mine)
            tmp.write_text("a")
        assert signal.getsignal(signal.SIGTERM) == signal.SIG_DFL and signal.getsignal(signal.SIGHUP) is mine
        with fileio.atomic_output(tmp_path / "b") as tmp:  # other writers: no handler at all
            assert signal.getsignal(signal.SIGTERM) == signal.SIG_DFL
            tmp.write_text("b")
    finally:
        signal.signal(signal.SIGHUP, before[0])
        signal.signal(signal.SIGTERM, before[1])

    errors: list[BaseException] = []

    def in_thread() -> None:  # signal.signal() would raise outside the main thread: there it is a plain write
        try:
            with fileio.atomic_output(tmp_path / "c", terminable=True) as tmp:
                tmp.write_text("c")
        except BaseException as e:  # noqa: BLE001 - reported below
            errors.append(e)

    t = threading.Thread(target=in_thread)
    t.start()
    t.join()
    assert errors == [] and (tmp_path / "c").read_text() == "c"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a", "b", "c"]


# ---- progress ---------------------------------------------------------------------------------------------------

def _read_all(fd: int, proc: subprocess.Popen[bytes], timeout: float) -> Iterator[bytes]:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        ready, _, _ = select.select([fd], [], [], 0.1)
        if ready:
            try:
                data = os.read(fd, 65536)
            except OSError:  # EIO: the child closed the terminal
                return
            if not data:
                return
            yield data
        elif proc.poll() is not None:
            return


def test_progress_bar_on_a_terminal_only(vocab_dir: Path, tmp_path: Path) -> None:
    out = tmp_path / "m.gguf"
    primary, secondary = pty.openpty()
    # a terminal of 0 columns (a fresh pty's) gets an empty bar from tqdm: give it a real width
    fcntl.ioctl(secondary, termios.TIOCSWINSZ, struct.pack("HHHH", 30, 100, 0, 0))
    proc = subprocess.Popen(_generate_argv("tiny", out, vocab_dir), cwd=REPO_ROOT, stdout=subprocess.DEVNULL,
                            stderr=secondary)
    os.close(secondary)
    try:
        shown = b"".join(_read_all(primary, proc, 120)).decode(errors="replace")
    finally:
        os.close(primary)
    assert proc.wait(timeout=60) == 0, shown[-2000:]
    assert re.search(r"writing m\.gguf: +\d+%\|", shown), shown[-2000:]  # tqdm's bar, on stderr
    assert f"wrote {out}" in shown

    # not a terminal (a log, a pipe): the summary line alone
    r = subprocess.run(_generate_argv("tiny", out, vocab_dir), cwd=REPO_ROOT, capture_output=True, text=True, timeout=120)
    assert r.returncode == 0 and r.stderr == f"wrote {out}\n"
