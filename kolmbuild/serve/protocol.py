"""Request bodies the server accepts (pydantic at the edge) and the errors it answers with.

OpenAI: ``/v1/chat/completions`` and ``/v1/completions`` bodies (unknown keys are accepted and
ignored, as OpenAI-compatible servers do). LoRAX: ``{"inputs", "parameters", "stream"}``.

Every JSON document a client sends (the body, and the input of a JSON-input task) is read with
:func:`load_json`, which turns each way JSON can go wrong into a :class:`BadRequest` (400): bytes
that are not UTF-8, a string with an unpaired surrogate (it could not be tokenized or echoed),
integers longer than Python's digit limit, NaN/Infinity (also ``1e999``, which overflows to
infinity) and nesting deeper than :data:`MAX_DEPTH`.
"""

from __future__ import annotations

import json
import math
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

MAX_DEPTH = 64  # deeper JSON is refused: no request needs it, and recursion in validators must stay bounded
INT32 = 2**31 - 1
INT64 = 2**63 - 1


class BadRequest(Exception):
    """A request the server refuses: ``status`` and a message naming the field."""

    def __init__(self, message: str, status: int = 400, param: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.status = status
        self.param = param


class Unavailable(BadRequest):
    """503: the server cannot take this request now (queue full, too many connections, shutting
    down); ``retry_after`` seconds go into the Retry-After header (OpenAI clients retry on it)."""

    def __init__(self, message: str, retry_after: int = 1) -> None:
        super().__init__(message, status=503)
        self.retry_after = max(1, int(retry_after))


class _BadNumber(ValueError):
    pass


def _reject_constant(name: str) -> Any:
    raise _BadNumber(f"{name} is not a JSON number")


def _finite(text: str) -> float:
    value = float(text)
    if math.isinf(value):
        raise _BadNumber(f"the number {text[:40]} is out of range")
    return value


def load_json(raw: bytes | str, what: str = "the body") -> Any:
    """Parse a client's JSON; every malformed or hostile document is a :class:`BadRequest` naming ``what``."""
    try:
        # JSON between systems is UTF-8 (RFC 8259 §8.1): no guessing UTF-16/32 the way json.loads(bytes) does
        text = raw.decode("utf-8-sig") if isinstance(raw, bytes) else raw
        doc = json.loads(text, parse_constant=_reject_constant, parse_float=_finite)
    except UnicodeDecodeError as exc:
        raise BadRequest(f"{what} is not JSON: it is not UTF-8 text ({exc.reason} at byte {exc.start})") from None
    except json.JSONDecodeError as exc:
        raise BadRequest(f"{what} is not JSON: {exc}") from None
    except RecursionError:
        raise BadRequest(f"{what} is nested deeper than {MAX_DEPTH} levels") from None
    except _BadNumber as exc:
        raise BadRequest(f"{what} is not valid JSON: {exc}") from None
    except ValueError as exc:  # an integer longer than sys.get_int_max_str_digits()
        raise BadRequest(f"{what} has a number out of range: {exc}") from None
    # a lone surrogate can only come from a \u escape (strict UTF-8 refuses encoded ones), and nesting
    # deeper than MAX_DEPTH needs that many brackets: most bodies skip the walk
    if "\\u" in text or text.count("[") + text.count("{") > MAX_DEPTH:
        _check_tree(doc, what)
    return doc


def _check_tree(doc: Any, what: str) -> None:
    """Depth limit and unpaired surrogates, in one pass without recursion."""
    stack: list[tuple[Any, int]] = [(doc, 1)]
    while stack:
        node, depth = stack.pop()
        if isinstance(node, str):
            _check_text(node, what)
            continue
        if not isinstance(node, (dict, list)):
            continue
        if depth > MAX_DEPTH:
            raise BadRequest(f"{what} is nested deeper than {MAX_DEPTH} levels")
        if isinstance(node, dict):
            for key, value in node.items():
                _check_text(key, what)
                stack.append((value, depth + 1))
        else:
            stack.extend((value, depth + 1) for value in node)


def _check_text(text: str, what: str) -> None:
    if not text.isascii():
        try:
            text.encode("utf-8")
        except UnicodeEncodeError:
            raise BadRequest(f"{what} has a string with an unpaired surrogate (\\u{ord(text[_lone(text)]):04x})") from None


def _lone(text: str) -> int:
    return next(i for i, ch in enumerate(text) if 0xD800 <= ord(ch) <= 0xDFFF)


class _Loose(BaseModel):
    # NaN/Infinity never reach the sampler, even from a caller that skipped load_json
    model_config = ConfigDict(extra="ignore", frozen=True, allow_inf_nan=False)


def _stops(v: Any) -> tuple[str, ...]:
    if v is None:
        return ()
    if isinstance(v, str):
        return (v,)
    if isinstance(v, list) and all(isinstance(s, str) for s in v):
        return tuple(v)
    raise ValueError("expected a string or a list of strings")


class Message(_Loose):
    role: str
    content: str | list[dict[str, Any]] | None = None

    def text(self) -> str:
        if self.content is None:
            return ""
        if isinstance(self.content, str):
            return self.content
        return "".join(str(p.get("text", "")) for p in self.content if p.get("type") == "text")


class Sampling(_Loose):
    model: str | None = None
    stream: bool = False
    max_tokens: int | None = Field(default=None, ge=1, le=INT32)
    temperature: float | None = Field(default=None, ge=0, le=2)
    top_p: float | None = Field(default=None, gt=0, le=1)
    stop: tuple[str, ...] = ()
    seed: int | None = Field(default=None, ge=-INT64 - 1, le=INT64)  # OpenAI's seed is an int64
    n: int = Field(default=1, ge=1, le=1)
    stream_options: dict[str, Any] | None = None

    _stop = field_validator("stop", mode="before")(classmethod(lambda cls, v: _stops(v)))

    @property
    def include_usage(self) -> bool:
        return bool(self.stream_options and self.stream_options.get("include_usage"))


class ChatRequest(Sampling):
    messages: list[Message] = Field(min_length=1)
    max_completion_tokens: int | None = Field(default=None, ge=1, le=INT32)
    response_format: dict[str, Any] | None = None

    def user_input(self) -> str:
        for m in reversed(self.messages):
            if m.role == "user":
                return m.text()
        raise BadRequest("messages: no user message to answer", param="messages")

    @property
    def token_limit(self) -> int | None:
        return self.max_completion_tokens or self.max_tokens


class CompletionRequest(Sampling):
    prompt: str | list[str]
    response_format: dict[str, Any] | None = None

    def user_input(self) -> str:
        if isinstance(self.prompt, str):
            return self.prompt
        if len(self.prompt) != 1:
            raise BadRequest("prompt: send one prompt per request", param="prompt")
        return self.prompt[0]


class LoraxParameters(_Loose):
    adapter_id: str | None = None
    max_new_tokens: int | None = Field(default=None, ge=1, le=INT32)
    temperature: float | None = Field(default=None, ge=0, le=100)
    top_p: float | None = Field(default=None, gt=0, le=1)
    top_k: int | None = Field(default=None, ge=1, le=INT32)
    do_sample: bool = False
    stop: tuple[str, ...] = ()
    seed: int | None = Field(default=None, ge=0, le=2**64 - 1)  # LoRAX's seed is a u64
    details: bool = False
    decoder_input_details: bool = False
    return_full_text: bool = False
    response_format: dict[str, Any] | None = None

    _stop = field_validator("stop", mode="before")(classmethod(lambda cls, v: _stops(v)))


class LoraxRequest(_Loose):
    inputs: str = Field(min_length=1)
    parameters: LoraxParameters = LoraxParameters()
    stream: bool = False

    @field_validator("parameters", mode="before")
    @classmethod
    def _none_is_default(cls, v: Any) -> Any:
        return {} if v is None else v


def parse(model: type[BaseModel], body: Any) -> Any:
    """Validate ``body`` into ``model``; errors become a 400/422 naming the field."""
    if not isinstance(body, dict):
        raise BadRequest("the request body must be a JSON object")
    try:
        return model.model_validate(body)
    except ValidationError as exc:
        first = exc.errors()[0]
        loc = ".".join(str(p) for p in first["loc"]) or "body"
        raise BadRequest(f"{loc}: {first['msg']}", param=loc) from exc
