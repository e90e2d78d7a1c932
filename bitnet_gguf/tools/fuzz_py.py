"""The Python fuzz targets: our GGUF reader and our safetensors reader on arbitrary bytes.

The contract both readers keep: any input either parses or raises `BitnetError` with a one-line message. Any other
exception is a crash, and so are a hang and a huge allocation driven by a bogus length (libFuzzer's -timeout and
-rss_limit_mb catch those). `check_input` is that contract for one input; the replay test runs it over the committed
corpus. Run as a module, this is the atheris worker that `bitnet_gguf.tools.fuzz` starts:

    python -m bitnet_gguf.tools.fuzz_py py-gguf --crash-dir DIR -- [libFuzzer flags] [corpus dirs]

The worker records a crash (input + traceback, one per distinct place) and keeps fuzzing, so one shallow bug does not
end a run; libFuzzer's -print_final_stats=1 reports the executions.
"""

from __future__ import annotations

import argparse
import hashlib
import sys
import tempfile
import traceback
from collections.abc import Callable
from pathlib import Path

PY_TARGETS = ("py-gguf", "py-safetensors")
# read at most this much of one tensor when exercising the safetensors reader (inputs are small anyway)
MAX_READ_BYTES = 1 << 20


def _gguf_full(path: Path) -> None:
    from ..formats.gguf_read import GGUFFile

    g = GGUFFile(path)
    for name in g.tensors:
        _ = g.tensors[name].n_elements


def _gguf_metadata(path: Path) -> None:
    from ..formats.gguf_read import read_metadata

    read_metadata(path)  # the metadata_only parse (arrays skipped, not read), then the TL-file check


def _safetensors(path: Path) -> None:
    from ..formats.safetensors_reader import SafetensorsReader, read_header

    read_header(path)
    reader = SafetensorsReader(path.parent)
    for name, rec in reader.tensors.items():
        if rec.nbytes <= MAX_READ_BYTES:
            reader.read(name)
            if rec.shape and rec.shape[0] > 0:
                reader.read(name, rows=(0, 1))


def _runner(target: str) -> tuple[list[Callable[[Path], None]], str]:
    """The reader calls for `target`, each held to the contract on its own (the metadata-only parse takes other
    paths than the full one), and the file name the input must have (the safetensors reader opens a folder)."""
    if target == "py-gguf":
        return [_gguf_full, _gguf_metadata], "input.gguf"
    if target == "py-safetensors":
        return [_safetensors], "model.safetensors"
    raise ValueError(f"unknown Python fuzz target {target}")


def safetensors_bytes(data: bytes) -> bytes:
    """The file a py-safetensors input stands for. An input starting with `{` is `JSON header NUL tensor data`
    and gets the 8-byte header length prepended: a mutated header keeps a matching length, so the fuzzer reaches
    the header's checks instead of stopping at the length test. Any other input is the file itself."""
    if data.startswith(b"{") and b"\0" in data:
        header, _, rest = data.partition(b"\0")
        return len(header).to_bytes(8, "little") + header + rest
    return data


def check_input(target: str, data: bytes, workdir: Path) -> None:
    """Run the reader on `data` (written to a file in `workdir`); raises AssertionError if the contract breaks."""
    from ..errors import BitnetError

    calls, name = _runner(target)
    path = workdir / name
    path.write_bytes(safetensors_bytes(data) if target == "py-safetensors" else data)
    for fn in calls:
        try:
            fn(path)
        except BitnetError as e:
            if "\n" in str(e):
                raise AssertionError(f"BitnetError message spans lines: {str(e)!r}") from None


def _signature(exc: BaseException) -> str:
    """Where an exception came from: its type and the innermost frame in our package (else the innermost)."""
    frames = traceback.extract_tb(exc.__traceback__)
    ours = [f for f in frames if "bitnet_gguf" in f.filename and not f.filename.endswith("fuzz_py.py")]
    f = (ours or frames)[-1]
    return f"{type(exc).__name__} at {Path(f.filename).name}:{f.lineno}"


def worker(target: str, crash_dir: Path, libfuzzer_args: list[str]) -> int:
    import atheris

    # instrument only the readers: coverage feedback from numpy or json internals would only slow atheris down
    with atheris.instrument_imports(include=["bitnet_gguf.formats.gguf_read", "bitnet_gguf.formats.safetensors_reader"]):
        from ..formats import gguf_read, safetensors_reader  # noqa: F401

    crash_dir.mkdir(parents=True, exist_ok=True)
    seen: set[str] = set()
    stats = {"crashes": 0}
    work = Path(tempfile.mkdtemp(prefix="bitnet-fuzz-"))

    def one(data: bytes) -> None:
        try:
            check_input(target, data, work)
        except Exception as e:  # noqa: BLE001 - anything but BitnetError breaks the contract
            sig = _signature(e)
            if sig not in seen:
                seen.add(sig)
                stats["crashes"] += 1
                name = "crash-" + hashlib.sha1(data).hexdigest()
                (crash_dir / name).write_bytes(data)
                (crash_dir / f"{name}.txt").write_text(sig + "\n\n" + "".join(traceback.format_exception(e)))
                print(f"NEW CRASH {sig}: {crash_dir / name}", file=sys.stderr, flush=True)

    atheris.Setup([sys.argv[0], *libfuzzer_args], one)
    atheris.Fuzz()
    return 0


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    # everything after -- goes to libFuzzer untouched (its flags start with a single dash)
    ours, rest = (argv[:argv.index("--")], argv[argv.index("--") + 1:]) if "--" in argv else (argv, [])
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0], epilog="after --: libFuzzer flags and corpus folders")
    p.add_argument("target", choices=PY_TARGETS)
    p.add_argument("--crash-dir", required=True, type=Path)
    args = p.parse_args(ours)
    return worker(args.target, args.crash_dir, rest)


if __name__ == "__main__":
    sys.exit(main())
