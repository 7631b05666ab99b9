"""Request bodies the server accepts (pydantic at the edge) and the errors it answers with.

OpenAI: ``/v1/chat/completions`` and ``/v1/completions`` bodies (unknown keys are accepted and
ignored, as OpenAI-compatible servers do). LoRAX: ``{"inputs", "parameters", "stream"}``.
"""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator


class BadRequest(Exception):
    """A request the server refuses: ``status`` and a message naming the field."""

    def __init__(self, message: str, status: int = 400, param: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.status = status
        self.param = param


class _Loose(BaseModel):
    model_config = ConfigDict(extra="ignore", frozen=True)


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
    max_tokens: int | None = Field(default=None, ge=1)
    temperature: float | None = Field(default=None, ge=0, le=2)
    top_p: float | None = Field(default=None, gt=0, le=1)
    stop: tuple[str, ...] = ()
    seed: int | None = None
    n: int = Field(default=1, ge=1, le=1)
    stream_options: dict[str, Any] | None = None

    _stop = field_validator("stop", mode="before")(classmethod(lambda cls, v: _stops(v)))

    @property
    def include_usage(self) -> bool:
        return bool(self.stream_options and self.stream_options.get("include_usage"))


class ChatRequest(Sampling):
    messages: list[Message] = Field(min_length=1)
    max_completion_tokens: int | None = Field(default=None, ge=1)
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
    max_new_tokens: int | None = Field(default=None, ge=1)
    temperature: float | None = Field(default=None, ge=0)
    top_p: float | None = Field(default=None, gt=0, le=1)
    top_k: int | None = Field(default=None, ge=1)
    do_sample: bool = False
    stop: tuple[str, ...] = ()
    seed: int | None = None
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
