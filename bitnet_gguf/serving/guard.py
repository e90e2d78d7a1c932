"""What a request must satisfy before it reaches llama-server: the API key, the body size, UTF-8 and JSON,
the field types, the model name and the max_tokens cap. Each refusal is an ApiError: a 4xx with an
OpenAI-style body, where llama-server would answer 500 (bad JSON, bad UTF-8) or accept (any model name)."""

from __future__ import annotations

import hmac
import json
from collections.abc import Mapping
from typing import Any

from .options import Limits

GENERATION_PATHS = frozenset({"/v1/chat/completions", "/chat/completions", "/v1/completions", "/completions", "/completion"})
CHAT_PATHS = frozenset({"/v1/chat/completions", "/chat/completions"})
TOKEN_FIELDS = ("max_tokens", "max_completion_tokens", "n_predict")
NUMBER_FIELDS = ("temperature", "top_p", "top_k", "min_p", "presence_penalty", "frequency_penalty", "repeat_penalty", "seed")
MAX_JSON_DEPTH = 64  # llama-server would recurse through any depth; nothing legitimate nests deeper


class ApiError(Exception):
    """A refusal: HTTP status and an OpenAI-style error body."""

    def __init__(self, status: int, message: str, code: str, kind: str = "invalid_request_error") -> None:
        super().__init__(message)
        self.status, self.message, self.code, self.kind = status, message, code, kind

    def body(self) -> bytes:
        return error_body(self.message, self.kind, self.code)


def error_body(message: str, kind: str, code: str) -> bytes:
    return json.dumps({"error": {"message": message, "type": kind, "code": code}}).encode()


def check_api_key(headers: Mapping[str, str], api_key: str | None) -> None:
    if api_key is None:
        return
    auth = headers.get("Authorization") or ""
    scheme, _, token = auth.strip().partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        token = headers.get("X-Api-Key") or ""
        if not token:
            raise ApiError(401, "missing API key: send 'Authorization: Bearer <key>'", "missing_api_key", "authentication_error")
    # constant-time: response timing must not reveal how much of a guess was right
    if not hmac.compare_digest(token.strip().encode(), api_key.encode()):
        raise ApiError(401, "invalid API key", "invalid_api_key", "authentication_error")


def check_length(headers: Mapping[str, str], limits: Limits) -> int:
    """The body length a POST announces; chunked or unannounced bodies are refused (we must bound what we read)."""
    if headers.get("Transfer-Encoding"):
        raise ApiError(411, "chunked request bodies are not accepted: send Content-Length", "length_required")
    raw = headers.get("Content-Length")
    if raw is None:
        raise ApiError(411, "a POST needs a Content-Length header", "length_required")
    try:
        length = int(raw)
    except ValueError:
        raise ApiError(400, f"Content-Length {raw[:40]!r} is not a number", "invalid_content_length") from None
    if length < 0:
        raise ApiError(400, "Content-Length is negative", "invalid_content_length")
    if length > limits.max_body:
        raise ApiError(413, f"request body of {length} bytes is above this server's limit of {limits.max_body} bytes "
                            "(--max-body)", "request_too_large")
    return length


def _reject_constant(name: str) -> Any:
    raise ValueError(f"{name} is not valid JSON")


def _depth(obj: Any, limit: int) -> int:
    stack = [(obj, 1)]
    deepest = 0
    while stack:
        o, d = stack.pop()
        deepest = max(deepest, d)
        if deepest > limit:
            break
        if isinstance(o, dict):
            stack.extend((v, d + 1) for v in o.values())
        elif isinstance(o, list):
            stack.extend((v, d + 1) for v in o)
    return deepest


def parse_json_body(body: bytes) -> dict[str, Any]:
    try:
        text = body.decode("utf-8")
    except UnicodeDecodeError as e:
        raise ApiError(400, f"request body is not valid UTF-8 (byte 0x{body[e.start]:02x} at offset {e.start})",
                       "invalid_utf8") from None
    try:
        obj = json.loads(text, parse_constant=_reject_constant)
    except RecursionError:
        raise ApiError(400, "request body nests too deeply", "invalid_json") from None
    except ValueError as e:  # JSONDecodeError is a ValueError; so is NaN/Infinity, which llama-server rejects
        raise ApiError(400, f"request body is not valid JSON: {e}", "invalid_json") from None
    if not isinstance(obj, dict):
        raise ApiError(400, f"request body must be a JSON object, not {type(obj).__name__}", "invalid_json")
    if _depth(obj, MAX_JSON_DEPTH) > MAX_JSON_DEPTH:
        raise ApiError(400, f"request body nests deeper than {MAX_JSON_DEPTH} levels", "invalid_json")
    return obj


def _type_error(name: str, expected: str, value: Any) -> ApiError:
    got = "null" if value is None else type(value).__name__
    return ApiError(400, f"'{name}' must be {expected}, not {got}", "invalid_type")


def _is_int(v: Any) -> bool:
    return isinstance(v, int) and not isinstance(v, bool)


def _is_number(v: Any) -> bool:
    return isinstance(v, (int, float)) and not isinstance(v, bool)


def check_generation(path: str, req: dict[str, Any], limits: Limits, max_tokens: int | None) -> None:
    """Field checks for the routes that generate; `max_tokens` is the cap in force (None: none known yet)."""
    model = req.get("model")
    if model is not None:
        if not isinstance(model, str):
            raise _type_error("model", "a string", model)
        if limits.model_names and model not in limits.model_names:
            served = ", ".join(sorted(limits.model_names, key=len)[:3])
            raise ApiError(404, f"model {model[:100]!r} does not exist; this server serves one model (names: {served}, "
                                "see /v1/models)", "model_not_found")
    if "stream" in req and not isinstance(req["stream"], bool) and req["stream"] is not None:
        raise _type_error("stream", "true or false", req["stream"])
    for name in NUMBER_FIELDS:
        if name in req and req[name] is not None and not _is_number(req[name]):
            raise _type_error(name, "a number", req[name])
    for name in TOKEN_FIELDS:
        if name not in req or req[name] is None:
            continue
        n = req[name]
        if not _is_int(n):
            raise _type_error(name, "an integer", n)
        if n < -1:  # -1 is llama.cpp's "until the end of text or the context"
            raise ApiError(400, f"'{name}' must be positive", "invalid_value")
        if max_tokens is not None and n > max_tokens:
            raise ApiError(400, f"'{name}' {n} is above this server's limit of {max_tokens} tokens "
                                f"({'--max-tokens' if limits.max_tokens else 'the context size'})", "max_tokens_exceeded")
    if path in CHAT_PATHS:
        messages = req.get("messages")
        if not isinstance(messages, list) or not messages:
            raise _type_error("messages", "a non-empty array", messages) if not isinstance(messages, list) else \
                ApiError(400, "'messages' is empty", "invalid_value")
        for i, m in enumerate(messages):
            if not isinstance(m, dict):
                raise _type_error(f"messages[{i}]", "an object", m)
            if not isinstance(m.get("role"), str):
                raise _type_error(f"messages[{i}].role", "a string", m.get("role"))
            content = m.get("content")
            if content is not None and not isinstance(content, (str, list)):
                raise _type_error(f"messages[{i}].content", "a string or an array of parts", content)
    else:
        prompt = req.get("prompt")
        if not isinstance(prompt, (str, list)):
            raise _type_error("prompt", "a string or an array", prompt)
