"""Chat templates for conversation mode, the server's /v1/chat/completions and the Python API.

A GGUF that carries `tokenizer.chat_template` is used as is. Otherwise one of the built-ins is picked from the
architecture and tokenizer: bitnet.cpp GGUFs (bitnet-b1.58 / bitnet-25) usually have no template, and upstream
llama.cpp has no "bitnet" built-in, so without this the 2B-4T model would be prompted in the wrong format.
All three are Jinja, handed to llama.cpp with --jinja --chat-template and rendered by jinja2 in Python,
so every way in builds the same prompt.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ..errors import BitnetError
from ..formats.architectures import BITNET_ARCHS

# bitnet.cpp's "bitnet" template (BitNet-b1.58-2B-4T): "System: " + text with no terminator, then
# "User: " + text + "<|eot_id|>Assistant: ". Earlier assistant turns get their "<|eot_id|>" back, because in
# bitnet.cpp's interactive CLI the generated end-of-turn token stays in the context; a stateless server that
# re-renders the history must write it out to show the model the same tokens.
BITNET = (
    "{{ bos_token }}"
    "{% for message in messages %}"
    "{% if message['role'] == 'system' %}{{ 'System: ' + message['content'] }}"
    "{% elif message['role'] == 'user' %}{{ 'User: ' + message['content'] + '<|eot_id|>' }}"
    "{% elif message['role'] == 'assistant' %}{{ 'Assistant: ' + message['content'] + '<|eot_id|>' }}"
    "{% endif %}"
    "{% endfor %}"
    "{% if add_generation_prompt %}{{ 'Assistant: ' }}{% endif %}"
)

# Llama 3 instruct (HF1BitLLM/Llama3-8B-1.58-100B-tokens and other llama-bpe models).
LLAMA3 = (
    "{{ bos_token }}"
    "{% for message in messages %}"
    r"{{ '<|start_header_id|>' + message['role'] + '<|end_header_id|>\n\n' + (message['content'] | trim) + '<|eot_id|>' }}"
    "{% endfor %}"
    r"{% if add_generation_prompt %}{{ '<|start_header_id|>assistant<|end_header_id|>\n\n' }}{% endif %}"
)

# Falcon3 / Falcon-E instruct (tiiuae *-1.58bit): role tags on their own line, assistant turns end with eos.
FALCON3 = (
    "{% for message in messages %}"
    r"{% if message['role'] == 'system' %}{{ '<|system|>\n' + message['content'] + '\n' }}"
    r"{% elif message['role'] == 'user' %}{{ '<|user|>\n' + message['content'] + '\n' }}"
    r"{% elif message['role'] == 'assistant' %}{{ '<|assistant|>\n' + message['content'] + eos_token + '\n' }}"
    "{% endif %}"
    "{% endfor %}"
    r"{% if add_generation_prompt %}{{ '<|assistant|>\n' }}{% endif %}"
)

BUILTIN: dict[str, str] = {"bitnet": BITNET, "llama3": LLAMA3, "falcon3": FALCON3}


@dataclass(frozen=True)
class ChatTemplate:
    name: str  # "gguf" (the model's own), a built-in name, or the path of a Jinja file
    text: str
    from_gguf: bool = False


def builtin_for(meta: Mapping[str, Any]) -> str:
    """The built-in template that fits a GGUF without its own template."""
    arch = str(meta.get("general.architecture", ""))
    pre = str(meta.get("tokenizer.ggml.pre", ""))
    if pre.startswith("falcon"):  # Falcon3 and Falcon-E are `llama` models with their own pre-tokenizers
        return "falcon3"
    if arch in BITNET_ARCHS:
        return "bitnet"
    return "llama3"


def select(meta: Mapping[str, Any], override: str | None = None) -> ChatTemplate:
    """--chat-template NAME|FILE if given, else the GGUF's own template, else a built-in by architecture."""
    if override:
        if override in BUILTIN:
            return ChatTemplate(override, BUILTIN[override])
        if override == "gguf":
            override = None
        else:
            path = Path(override).expanduser()
            if not path.is_file():
                raise BitnetError(f"unknown chat template {override!r}: use one of {', '.join(BUILTIN)}, gguf, or a Jinja file")
            try:
                text = path.read_text(encoding="utf-8")
            except (OSError, UnicodeDecodeError) as e:
                raise BitnetError(f"--chat-template {override}: cannot be read as a UTF-8 Jinja file ({e})") from None
            if "\0" in text or not text.strip():
                got = "binary data" if text.strip() else "an empty file"
                raise BitnetError(f"--chat-template {override}: expected a Jinja text file, got {got}")
            _check_syntax(text, f"--chat-template {override}")
            return ChatTemplate(str(path), text)
    own = meta.get("tokenizer.chat_template")
    if isinstance(own, str) and own.strip():
        return ChatTemplate("gguf", own, from_gguf=True)
    name = builtin_for(meta)
    return ChatTemplate(name, BUILTIN[name])


def _check_syntax(text: str, where: str) -> None:
    """A template that jinja2 cannot parse fails here, in one line, not in llama.cpp's log or mid-request."""
    from jinja2 import TemplateSyntaxError
    from jinja2.sandbox import ImmutableSandboxedEnvironment

    try:
        ImmutableSandboxedEnvironment(trim_blocks=True, lstrip_blocks=True).parse(text)
    except TemplateSyntaxError as e:
        raise BitnetError(f"{where}: not a valid Jinja template (line {e.lineno}: {e.message})") from None


def llama_cpp_args(template: ChatTemplate) -> list[str]:
    """llama-completion / llama-server options for `template`.

    --jinja always: llama-completion otherwise accepts only its own named templates, and a GGUF's template
    then renders with the same engine as ours. The model's own template needs no override.
    """
    return ["--jinja"] if template.from_gguf else ["--jinja", "--chat-template", template.text]


def render(template: ChatTemplate | str, messages: Sequence[Mapping[str, Any]], bos_token: str = "",
           eos_token: str = "", add_generation_prompt: bool = True, **extra: Any) -> str:
    """The prompt text for `messages` (jinja2 sandbox, as Hugging Face and llama-cpp-python render templates)."""
    from jinja2.exceptions import TemplateError
    from jinja2.sandbox import ImmutableSandboxedEnvironment

    def raise_exception(message: str) -> None:
        raise TemplateError(message)

    text = template.text if isinstance(template, ChatTemplate) else template
    env = ImmutableSandboxedEnvironment(trim_blocks=True, lstrip_blocks=True)
    try:
        return env.from_string(text).render(messages=list(messages), bos_token=bos_token, eos_token=eos_token,
                                            add_generation_prompt=add_generation_prompt,
                                            raise_exception=raise_exception, **extra)
    except TemplateError as e:
        raise BitnetError(f"chat template failed: {e}") from None
