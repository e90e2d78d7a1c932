"""`bitnet_gguf.Llama`: llama-cpp-python's Llama running on our libllama (the one that knows I2_S).

llama-cpp-python loads its shared library once, when `llama_cpp` is first imported, from $LLAMA_CPP_LIB_PATH.
This module points that at our build before the import, so importing it is what binds the process to our
library; `bitnet_gguf` itself stays free of llama_cpp (its __init__ exports Llama lazily).
"""

from __future__ import annotations

import ctypes
import os
import sys
import threading
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from ..errors import BitnetError, one_line
from ..formats.gguf_read import read_metadata
from . import chat_templates, memory_fit, rpc
from .locate import library_dir, library_name, resolve_model
from .threads import physical_cores


def _bind_library() -> Path:
    lib_dir = library_dir()
    loaded = sys.modules.get("llama_cpp.llama_cpp")
    if loaded is not None:
        # Too late to choose: the library of the first import stays for the life of the process.
        current = Path(getattr(getattr(loaded, "_lib", None), "_name", "") or "").resolve().parent
        if current != lib_dir.resolve():
            raise BitnetError(f"llama_cpp was imported before bitnet_gguf.Llama and loaded {current}; "
                              f"import bitnet_gguf.Llama first, or set LLAMA_CPP_LIB_PATH={lib_dir}")
        return lib_dir
    os.environ["LLAMA_CPP_LIB_PATH"] = str(lib_dir)
    return lib_dir


LIB_DIR = _bind_library()

import llama_cpp  # noqa: E402  (must follow _bind_library)
from llama_cpp.llama_chat_format import ChatFormatterResponse  # noqa: E402


class _TemplateFormatter:
    """A llama-cpp-python chat formatter that builds the prompt exactly as llama.cpp's server does.

    llama.cpp strips a leading BOS from the rendered template when the vocab adds one anyway, then tokenizes
    with add_special; doing the same here (added_special=False) keeps the Python API's prompts token-for-token
    equal to the CLI's and the server's, with one BOS, never two.
    """

    def __init__(self, template: chat_templates.ChatTemplate, bos_token: str, eos_token: str, add_bos: bool) -> None:
        self.template = template
        self.bos_token = bos_token
        self.eos_token = eos_token
        self.add_bos = add_bos

    def __call__(self, *, messages: Sequence[dict[str, Any]], **_: Any) -> ChatFormatterResponse:
        prompt = chat_templates.render(self.template, messages, self.bos_token, self.eos_token)
        if self.add_bos and self.bos_token and prompt.startswith(self.bos_token):
            prompt = prompt[len(self.bos_token):]
        # generation stops at end-of-generation tokens (eos, <|eot_id|>) by itself; no stop strings needed
        return ChatFormatterResponse(prompt=prompt, added_special=False)


# ggml_backend_dev_type: the devices llama.cpp offloads layers to by default (besides RPC ones)
_DEV_GPU, _DEV_IGPU = 1, 2
_rpc_lock = threading.Lock()
_rpc_registered: dict[str, list[int]] = {}  # endpoint -> its ggml devices, registered once per process
_rpc_endpoints: list[rpc.Endpoint] = []  # the same workers, for the abort line
_ABORT_CALLBACK = ctypes.CFUNCTYPE(None, ctypes.c_char_p)


@_ABORT_CALLBACK
def _exit_on_ggml_abort(message: bytes | None) -> None:
    """ggml is about to abort() the process, as ggml-rpc does when a worker's connection fails mid-run: one line that
    names the workers that do not answer, then exit 1, instead of a backtrace and SIGABRT. The process ends either
    way: nothing in llama.cpp can unwind from there (run the work in a subprocess if the caller must survive)."""
    text = (message or b"").decode(errors="replace").strip()
    lost = rpc.lost_workers(list(_rpc_endpoints), connected=True) if _rpc_endpoints else None
    os.write(2, f"error: {lost or 'llama.cpp aborted'}; the process exits (ggml: {text})\n".encode())
    os._exit(1)


def _ggml() -> ctypes.CDLL:
    """libggml of our build (already loaded with libllama: the same handle)."""
    lib = ctypes.CDLL(str(LIB_DIR / library_name("ggml")))
    vp, cp, sz = ctypes.c_void_p, ctypes.c_char_p, ctypes.c_size_t
    for name, res, args in (("ggml_backend_reg_by_name", vp, [cp]), ("ggml_backend_load_all", None, []),
                            ("ggml_backend_reg_get_proc_address", vp, [vp, cp]), ("ggml_backend_register", None, [vp]),
                            ("ggml_backend_reg_dev_count", sz, [vp]), ("ggml_backend_reg_dev_get", vp, [vp, sz]),
                            ("ggml_backend_dev_count", sz, []), ("ggml_backend_dev_get", vp, [sz]),
                            ("ggml_backend_dev_type", ctypes.c_int, [vp]), ("ggml_backend_dev_backend_reg", vp, [vp]),
                            ("ggml_backend_reg_name", cp, [vp]), ("ggml_set_abort_callback", vp, [_ABORT_CALLBACK])):
        fn = getattr(lib, name)
        fn.restype, fn.argtypes = res, args
    return lib


def _rpc_devices(endpoints: Sequence[rpc.Endpoint]) -> list[int]:
    """The ggml devices of these workers, registered with ggml as llama.cpp's --rpc does (once per endpoint: ggml
    cannot unregister, and registering twice would list the devices twice)."""
    with _rpc_lock:
        lib = _ggml()
        reg = lib.ggml_backend_reg_by_name(b"RPC")
        if not reg:  # a build with dynamically loaded backends (--portable) loads them on request
            lib.ggml_backend_load_all()
            reg = lib.ggml_backend_reg_by_name(b"RPC")
        add = lib.ggml_backend_reg_get_proc_address(reg, b"ggml_backend_rpc_add_server") if reg else None
        if not add:
            raise BitnetError(f"rpc_servers: this build has no RPC backend ({LIB_DIR}); run python setup_env.py again")
        add_server = ctypes.CFUNCTYPE(ctypes.c_void_p, ctypes.c_char_p)(add)
        out: list[int] = []
        for ep in endpoints:
            key = str(ep)
            if key not in _rpc_registered:
                ep_reg = add_server(key.encode())
                if not ep_reg:
                    raise BitnetError(f"RPC worker {key}: exposes no device")
                lib.ggml_backend_register(ep_reg)
                _rpc_endpoints.append(ep)
                lib.ggml_set_abort_callback(_exit_on_ggml_abort)
                _rpc_registered[key] = [lib.ggml_backend_reg_dev_get(ep_reg, i)
                                        for i in range(lib.ggml_backend_reg_dev_count(ep_reg))]
            out += _rpc_registered[key]
        return out


def _local_offload_devices() -> list[int]:
    """The non-RPC devices llama.cpp would offload to by default: GPUs, else integrated GPUs (none in a CPU build)."""
    lib = _ggml()
    gpus, igpus = [], []
    for i in range(lib.ggml_backend_dev_count()):
        dev = lib.ggml_backend_dev_get(i)
        kind = lib.ggml_backend_dev_type(dev)
        if lib.ggml_backend_reg_name(lib.ggml_backend_dev_backend_reg(dev)) == b"RPC":
            continue
        if kind == _DEV_GPU:
            gpus.append(dev)
        elif kind == _DEV_IGPU:
            igpus.append(dev)
    return gpus or igpus


class Llama(llama_cpp.Llama):
    """llama_cpp.Llama with bitnet-gguf defaults: our library, physical-core threads, a 2048-token context,
    quiet loading, and the same chat template as run_inference.py -cnv and run_server.py.

    Everything else is llama-cpp-python's API: create_completion / __call__, create_chat_completion,
    tokenize / detokenize, eval and scores (all rows with logits_all=True).

    rpc_servers="host:port,..." spreads the layers over ggml-rpc-server workers (as llama.cpp's --rpc; all layers
    unless n_gpu_layers says otherwise), tensor_split ("3,1" or [3, 1]) gives each worker's share (docs/rpc.md).
    """

    _device_array: Any = None  # the NULL-terminated ggml device list this model loads onto (None: llama.cpp's choice)

    def __init__(self, model_path: str | os.PathLike[str], *, n_ctx: int = 2048, n_threads: int | None = None,
                 n_threads_batch: int | None = None, chat_template: str | None = None, verbose: bool = False,
                 rpc_servers: str | None = None, memory_check: bool = True, **kwargs: Any) -> None:
        if not isinstance(model_path, (str, os.PathLike)):
            raise BitnetError(f"model_path: expected a GGUF file path, got {type(model_path).__name__}")
        path = resolve_model(model_path)
        meta = read_metadata(path)  # the checks of check_gguf, and the chat template's metadata
        # what llama.cpp would otherwise take as is (a negative context or thread count) or abort on
        for name, value, lowest in (("n_ctx", n_ctx, 0), ("n_threads", n_threads, 1), ("n_threads_batch", n_threads_batch, 1),
                                    ("n_batch", kwargs.get("n_batch"), 1), ("n_ubatch", kwargs.get("n_ubatch"), 1)):
            if value is not None and (isinstance(value, bool) or not isinstance(value, int) or value < lowest):
                raise BitnetError(f"{name}={value!r}: expected an integer >= {lowest}")
        if chat_template is not None and not isinstance(chat_template, str):
            raise BitnetError(f"chat_template: expected a name or a Jinja file path, got {type(chat_template).__name__}")
        template = chat_templates.select(meta, chat_template)  # a bad template fails before loading
        if memory_check and rpc_servers is None:  # with RPC workers, each host holds only its share
            memory_fit.check_fits(path, n_ctx, "memory_check=False")
        self._plan_devices(rpc_servers, kwargs)
        threads = n_threads or physical_cores()
        try:
            super().__init__(str(path), n_ctx=n_ctx, n_threads=threads, n_threads_batch=n_threads_batch or threads,
                             verbose=verbose, **kwargs)
        except ValueError as e:  # llama-cpp-python: "Failed to load model from file: ..." (details in llama.cpp's log)
            raise BitnetError(f"{path}: llama.cpp cannot load it ({one_line(e)}); pass verbose=True for llama.cpp's log") from None
        if kwargs.get("chat_handler") is None and kwargs.get("chat_format") is None:
            bos, eos = (self._model.token_get_text(t) if t >= 0 else "" for t in (self.token_bos(), self.token_eos()))
            add_bos = bool(llama_cpp.llama_vocab_get_add_bos(self._model.vocab))
            formatter = _TemplateFormatter(template, bos, eos, add_bos)
            self.chat_template = template
            self.chat_handler = llama_cpp.llama_chat_format.chat_formatter_to_chat_completion_handler(formatter)

    def _plan_devices(self, rpc_servers: str | None, kwargs: dict[str, Any]) -> None:
        """Check the workers and choose the devices before llama.cpp sees them (a worker that is down would make
        llama.cpp abort the whole process)."""
        split = kwargs.get("tensor_split")
        if rpc_servers is None:
            if split is not None:
                raise BitnetError("tensor_split needs rpc_servers (this build computes on the CPU; the split is over RPC workers)")
            if _rpc_registered:  # RPC devices of an earlier model stay registered: keep them out of this one
                self._device_array = self._devices(_local_offload_devices())
            return
        endpoints = rpc.parse_rpc_servers(rpc_servers, "rpc_servers")
        workers = rpc.check_workers(endpoints)
        if split is not None:
            kwargs["tensor_split"] = list(rpc.parse_tensor_split(split, "tensor_split"))
            rpc.check_split(kwargs["tensor_split"], workers, "tensor_split")
        kwargs.setdefault("n_gpu_layers", -1)  # every layer on the workers, as the CLI's default
        self._device_array = self._devices(_rpc_devices(endpoints) + _local_offload_devices())

    @staticmethod
    def _devices(devices: list[int]) -> Any:
        return (ctypes.c_void_p * (len(devices) + 1))(*devices, None)

    # llama_cpp.Llama.__init__ fills self.model_params and loads the model from it with no hook in between; this
    # property sees the assignment and sets the device list on the struct first (llama-cpp-python never sets it)
    @property
    def model_params(self) -> Any:
        return self.__dict__["_bitnet_model_params"]

    @model_params.setter
    def model_params(self, params: Any) -> None:
        if self._device_array is not None:
            params.devices = ctypes.cast(self._device_array, ctypes.c_void_p).value
        self.__dict__["_bitnet_model_params"] = params

    def close(self) -> None:
        # llama_cpp.Llama.__del__ calls close(), which fails if __init__ stopped early (e.g. model not found)
        if hasattr(self, "_stack"):
            super().close()

    def logits(self, prompt: str | Sequence[int], add_bos: bool = True) -> np.ndarray:
        """Logits after evaluating `prompt` from an empty context: one row per token with logits_all=True,
        else only the last row; shape (rows, n_vocab), float32."""
        tokens = self.tokenize(prompt.encode("utf-8"), add_bos=add_bos, special=True) if isinstance(prompt, str) else list(prompt)
        if not tokens:
            raise BitnetError("logits() needs at least one token")
        self.reset()
        self.eval(tokens)
        if self._logits_all:
            return np.array(self.scores[: self.n_tokens], dtype=np.float32)
        # without logits_all llama-cpp-python keeps no scores; the context still holds the last token's row
        last = llama_cpp.llama_get_logits_ith(self.ctx, -1)
        return np.ctypeslib.as_array(last, shape=(self.n_vocab(),)).astype(np.float32).reshape(1, -1)
