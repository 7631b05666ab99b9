"""Routes: (method, path, JSON body) → :class:`Reply`, over the :class:`Service`. No sockets here.

Routes: ``GET /health``, ``GET /v1/models``, ``POST /v1/chat/completions``, ``POST /v1/completions``;
with LoRAX compatibility also ``POST /generate``, ``POST /generate_stream`` (SSE), ``POST /``
(a JSON array, or SSE when ``stream`` is true: what the official lorax-client sends) and ``GET /info``.
(``GET /metrics`` is the HTTP layer's: :mod:`kolmbuild.serve.app`.)

:meth:`Router.handle` is quick on every route: a recipe answer is complete when it returns; an
answer that needs the model comes back as work to do (``compute`` or lazy ``events``) flagged
``uses_model``, which the HTTP layer runs in a worker thread once the model queue admits it.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

from kolmbuild.serve.protocol import (
    BadRequest,
    ChatRequest,
    CompletionRequest,
    LoraxRequest,
    Unavailable,
    parse,
)
from kolmbuild.serve.service import Generation, Service

Shape = Callable[[BadRequest], "Reply"]


@dataclass(frozen=True)
class Reply:
    status: int
    body: Any = None  # JSON-able, for a plain response
    events: Iterator[Any] | None = None  # SSE data objects
    done_marker: bool = False  # OpenAI streams end with "data: [DONE]"
    compute: Callable[[], Reply] | None = None  # a plain answer still to be made by the model
    uses_model: bool = False  # compute/events need a llama.cpp context (admitted by the model queue)
    error: Shape | None = None  # shapes an error found later (queue full, shutdown): the route's API
    headers: tuple[tuple[str, str], ...] = ()
    close: bool = False  # close the connection after this reply (the request's framing cannot be trusted)


def _retry_headers(exc: BadRequest) -> tuple[tuple[str, str], ...]:
    return (("Retry-After", str(exc.retry_after)),) if isinstance(exc, Unavailable) else ()


def openai_error(exc: BadRequest) -> Reply:
    kind = "invalid_request_error" if exc.status < 500 else "server_error"
    return Reply(exc.status, {"error": {"message": exc.message, "type": kind, "param": exc.param, "code": None}},
                 headers=_retry_headers(exc))


def lorax_error(exc: BadRequest) -> Reply:
    if isinstance(exc, Unavailable):  # lorax-client raises OverloadedError for this type
        return Reply(exc.status, {"error": exc.message, "error_type": "overloaded"}, headers=_retry_headers(exc))
    kind = "validation" if exc.status < 500 else "generation"
    return Reply(422 if exc.status == 400 else exc.status, {"error": exc.message, "error_type": kind})


def server_error(message: str) -> Reply:
    return Reply(500, {"error": {"message": message, "type": "server_error"}})


OPENAI_ROUTES = frozenset({"/v1/chat/completions", "/v1/completions"})
LORAX_ROUTES = frozenset({"/generate", "/generate_stream", "/"})


def clean_path(path: str) -> str:
    return path.split("?", 1)[0].rstrip("/") or "/"


class Router:
    """Maps (method, path) to a handler over the :class:`Service`; no sockets here (testable alone)."""

    def __init__(self, service: Service, *, lorax_compat: bool) -> None:
        self.service = service
        self.lorax = lorax_compat

    def shape_for(self, path: str) -> Shape:
        """The error shape of the API a path belongs to (for refusals made before routing)."""
        return lorax_error if self.lorax and clean_path(path) in LORAX_ROUTES else openai_error

    def handle(self, method: str, path: str, body: Any) -> Reply:
        path = clean_path(path)
        s = self.service
        if method == "GET":
            if path == "/health":
                return Reply(200, s.health())
            if path == "/v1/models":
                return Reply(200, s.models())
            if path == "/info" and self.lorax:
                return Reply(200, s.info())
            return Reply(404, {"error": {"message": f"no route GET {path}", "type": "not_found"}})
        if method != "POST":
            return Reply(405, {"error": {"message": f"{method} is not supported", "type": "invalid_request_error"}})
        openai: dict[str, Callable[[Any], Reply]] = {
            "/v1/chat/completions": self._chat,
            "/v1/completions": self._completion,
        }
        lorax: dict[str, Callable[[Any], Reply]] = {
            "/generate": lambda b: self._lorax(b, stream=False),
            "/generate_stream": lambda b: self._lorax(b, stream=True),
            "/": lambda b: self._lorax(b, stream=None),
        }
        if path in openai:
            try:
                return openai[path](body)
            except BadRequest as exc:
                return openai_error(exc)
        if self.lorax and path in lorax:
            try:
                return lorax[path](body)
            except BadRequest as exc:
                return lorax_error(exc)
        return Reply(404, {"error": {"message": f"no route POST {path}", "type": "not_found"}})

    @staticmethod
    def _answer(gen: Generation, make: Callable[[], Any], shape: Shape) -> Reply:
        """A plain answer: made now for a recipe, deferred (to a worker thread) for the model."""
        if not gen.uses_model:
            return Reply(200, make())

        def compute() -> Reply:
            try:
                return Reply(200, make())
            except BadRequest as exc:
                return shape(exc)

        return Reply(200, compute=compute, uses_model=True, error=shape)

    @staticmethod
    def _stream(gen: Generation, events: Iterator[Any], shape: Shape, *, done_marker: bool = False) -> Reply:
        return Reply(200, events=events, done_marker=done_marker, uses_model=gen.uses_model, error=shape)

    def _chat(self, body: Any) -> Reply:
        r = parse(ChatRequest, body)
        gen = self.service.openai_start(r)
        if r.stream:
            return self._stream(gen, self.service.chat_chunks(gen, r.include_usage), openai_error, done_marker=True)
        return self._answer(gen, lambda: self.service.openai_body(r, gen), openai_error)

    def _completion(self, body: Any) -> Reply:
        r = parse(CompletionRequest, body)
        gen = self.service.openai_start(r)
        if r.stream:
            return self._stream(gen, self.service.completion_chunks(gen), openai_error, done_marker=True)
        return self._answer(gen, lambda: self.service.openai_body(r, gen), openai_error)

    def _lorax(self, body: Any, *, stream: bool | None) -> Reply:
        r = parse(LoraxRequest, body)
        streaming = r.stream if stream is None else stream  # POST / : the official client; stream decides
        if streaming:
            gen = self.service.lorax_start(r, logprobs=True)
            return self._stream(gen, self.service.lorax_events(r, gen), lorax_error)
        gen = self.service.lorax_start(r, logprobs=r.parameters.details)
        if stream is None:  # a plain answer to POST / is an array
            return self._answer(gen, lambda: [self.service.lorax_body(r, gen)], lorax_error)
        return self._answer(gen, lambda: self.service.lorax_body(r, gen), lorax_error)
