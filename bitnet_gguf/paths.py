"""Where things live: the source checkout, the download cache, the unpacked llama.cpp source, the build, the vocab GGUFs.

A pip-installed package has no checkout. Converting, generating models and the Python API work without one;
building (patches/, kernels/, the pin) needs one, and the build itself is then located explicitly
(--build-dir or $BITNET_GGUF_BUILD_DIR).
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from pathlib import Path

from .errors import BitnetError

PACKAGE_DIR = Path(__file__).resolve().parent


def _find_checkout() -> Path | None:
    root = PACKAGE_DIR.parent
    markers = (root / "setup_env.py", root / "patches", root / "kernels", root / "third_party" / "pin.json")
    return root if all(m.exists() for m in markers) else None


# the clone this package runs from (an editable install, or python run inside the clone), else None
CHECKOUT: Path | None = _find_checkout()


def checkout(what: str) -> Path:
    """The source checkout, which `what` needs; one clear line when the package was installed without one."""
    if CHECKOUT is None:
        raise BitnetError(f"{what} needs a source checkout of bitnet-gguf (patches/, kernels/, third_party/): "
                          f"run it from a clone, not from the installed package in {PACKAGE_DIR.parent}")
    return CHECKOUT


# the patched llama.cpp source setup_env.py unpacks, inside the clone
SOURCE_SUBDIR = "third_party/llama.cpp"


def source_dir() -> Path:
    return checkout("the llama.cpp source") / SOURCE_SUBDIR


def patches_dir() -> Path:
    return checkout("patching llama.cpp") / "patches"


def kernels_dir() -> Path:
    return checkout("building the kernels") / "kernels"


BUILD_DIR_HELP = "llama.cpp build folder (default: $BITNET_GGUF_BUILD_DIR, else build/ in the clone)"


def _folder(override: str | os.PathLike[str] | None, env_var: str, flag: str, in_checkout: str, what: str) -> Path:
    """A folder the user may name (flag, else $env_var); otherwise in_checkout relative to the clone."""
    chosen = override or os.environ.get(env_var)
    if chosen:
        return Path(chosen)
    if CHECKOUT is None:
        raise BitnetError(f"no {what} located: pass {flag} or set ${env_var} ({in_checkout} of a clone after python setup_env.py)")
    return CHECKOUT / in_checkout


def build_dir(override: str | os.PathLike[str] | None = None) -> Path:
    """--build-dir, else $BITNET_GGUF_BUILD_DIR, else build/ in the checkout."""
    return _folder(override, "BITNET_GGUF_BUILD_DIR", "--build-dir", "build", "llama.cpp build")


def cross_build_dir(target: str, override: str | os.PathLike[str] | None = None) -> Path:
    """setup_env.py --target's build: --build-dir, else build-<target>/ beside build/ (never $BITNET_GGUF_BUILD_DIR,
    which names the build this machine runs)."""
    return Path(override) if override else checkout(f"the {target} build") / f"build-{target}"


def vocab_dir(override: str | os.PathLike[str] | None = None) -> Path:
    """llama.cpp's vocab GGUFs: --vocab-dir, else $BITNET_GGUF_VOCAB_DIR, else the unpacked source's models/."""
    return _folder(override, "BITNET_GGUF_VOCAB_DIR", "--vocab-dir", f"{SOURCE_SUBDIR}/models",
                   "folder of llama.cpp vocab GGUFs")


def vocab_gguf(name: str, override: str | os.PathLike[str] | None = None) -> Path:
    """One vocab GGUF (e.g. ggml-vocab-llama-bpe.gguf), which must exist."""
    path = vocab_dir(override) / name
    if not path.is_file():
        raise BitnetError(f"{path}: vocab GGUF not found (run python setup_env.py, or pass --vocab-dir / set $BITNET_GGUF_VOCAB_DIR)")
    return path


def cache_dir() -> Path:
    """Download cache: $BITNET_GGUF_CACHE, else ~/.cache/bitnet-gguf."""
    env = os.environ.get("BITNET_GGUF_CACHE")
    return Path(env) if env else Path.home() / ".cache" / "bitnet-gguf"


@dataclass(frozen=True)
class Pin:
    package: str
    version: str
    filename: str
    sha256: str
    subdir: str
    llama_cpp_commit: str
    llama_cpp_build: int


def load_pin() -> Pin:
    """The pinned llama.cpp source (third_party/pin.json)."""
    return Pin(**json.loads((checkout("the llama.cpp pin") / "third_party" / "pin.json").read_text()))
