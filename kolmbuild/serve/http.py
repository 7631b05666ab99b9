"""The HTTP layer: stdlib ``ThreadingHTTPServer``, HTTP/1.1 keep-alive, SSE over chunked encoding.

Why the standard library: the runtime serializes generations on one llama.cpp context anyway, so
an async framework buys no throughput; a thread per connection lets health checks, model lists and
recipe answers proceed while a generation streams; and it adds no dependency to an offline install.
Per-token overhead is one small JSON encode and one socket write (measured by bench/tps.py).

Routes: ``GET /health``, ``GET /v1/models``, ``POST /v1/chat/completions``, ``POST /v1/completions``;
with LoRAX compatibility also ``POST /generate``, ``POST /generate_stream`` (SSE), ``POST /``
(a JSON array, or SSE when ``stream`` is true: what the official lorax-client sends) and ``GET /info``.
"""

from __future__ import annotations

import json
import logging
import socket
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from kolmbuild.errors import KolmError
from kolmbuild.serve.protocol import BadRequest, ChatRequest, CompletionRequest, LoraxRequest, parse
from kolmbuild.serve.service import Service

MAX_BODY = 8 * 1024**2
log = logging.getLogger("kolmbuild.serve")


@dataclass(frozen=True)
class Reply:
    status: int
    body: Any = None  # JSON-able, for a plain response
    events: Iterator[Any] | None = None  # SSE data objects
    done_marker: bool = False  # OpenAI streams end with "data: [DONE]"


def _openai_error(exc: BadRequest) -> Reply:
    kind = "invalid_request_error" if exc.status < 500 else "server_error"
    return Reply(exc.status, {"error": {"message": exc.message, "type": kind, "param": exc.param, "code": None}})


def _lorax_error(exc: BadRequest) -> Reply:
    kind = "validation" if exc.status < 500 else "generation"
    return Reply(422 if exc.status == 400 else exc.status, {"error": exc.message, "error_type": kind})


class Router:
    """Maps (method, path) to a handler over the :class:`Service`; no sockets here (testable alone)."""

    def __init__(self, service: Service, *, lorax_compat: bool) -> None:
        self.service = service
        self.lorax = lorax_compat

    def handle(self, method: str, path: str, body: Any) -> Reply:
        path = path.split("?", 1)[0].rstrip("/") or "/"
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
                return _openai_error(exc)
        if self.lorax and path in lorax:
            try:
                return lorax[path](body)
            except BadRequest as exc:
                return _lorax_error(exc)
        return Reply(404, {"error": {"message": f"no route POST {path}", "type": "not_found"}})

    def _chat(self, body: Any) -> Reply:
        r = parse(ChatRequest, body)
        if r.stream:
            return Reply(200, events=self.service.chat_stream(r), done_marker=True)
        return Reply(200, self.service.chat(r))

    def _completion(self, body: Any) -> Reply:
        r = parse(CompletionRequest, body)
        if r.stream:
            return Reply(200, events=self.service.completion_stream(r), done_marker=True)
        return Reply(200, self.service.completion(r))

    def _lorax(self, body: Any, *, stream: bool | None) -> Reply:
        r = parse(LoraxRequest, body)
        if stream is None:  # POST / : the official client; stream decides, and a plain answer is an array
            if r.stream:
                return Reply(200, events=self.service.lorax_stream(r))
            return Reply(200, [self.service.lorax_generate(r)])
        if stream:
            return Reply(200, events=self.service.lorax_stream(r))
        return Reply(200, self.service.lorax_generate(r))


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server: KolmHTTPServer

    def setup(self) -> None:
        super().setup()
        # one small write per token: without TCP_NODELAY, Nagle + delayed ACKs add ~40 ms per event
        self.connection.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)

    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 (stdlib's signature)
        if self.server.access_log:
            log.info("%s - %s", self.address_string(), format % args)

    def _read_body(self) -> Any:
        length = self.headers.get("Content-Length")
        if length is None:
            if self.headers.get("Transfer-Encoding"):  # its unread chunks would be parsed as the next request
                self.close_connection = True
                raise BadRequest("send the body with a Content-Length (chunked request bodies are not supported)",
                                 status=411)
            return None
        try:
            n = int(length)
        except ValueError:
            self.close_connection = True  # the body's end is unknown: the next request cannot be found
            raise BadRequest("Content-Length is not a number") from None
        if n < 0 or n > MAX_BODY:
            self.close_connection = True  # the unread body must not be parsed as the next request
            raise BadRequest(f"the body must be at most {MAX_BODY} bytes", status=413)
        raw = self.rfile.read(n)
        try:
            return json.loads(raw) if raw else None
        except (UnicodeDecodeError, json.JSONDecodeError) as exc:
            raise BadRequest(f"the body is not JSON: {exc}") from None

    def do_GET(self) -> None:  # noqa: N802 (stdlib's naming)
        self._dispatch("GET")

    def do_POST(self) -> None:  # noqa: N802
        self._dispatch("POST")

    def _dispatch(self, method: str) -> None:
        try:
            body = self._read_body() if method == "POST" else None
            reply = self.server.router.handle(method, self.path, body)
        except BadRequest as exc:
            reply = _openai_error(exc)
        except KolmError as exc:
            reply = Reply(500, {"error": {"message": exc.message, "type": "server_error"}})
        except Exception as exc:  # a bug must not kill the server thread silently
            log.exception("request failed")
            reply = Reply(500, {"error": {"message": f"{type(exc).__name__}: {exc}", "type": "server_error"}})
        if reply.events is not None:
            self._send_events(reply)
        else:
            self._send_json(reply.status, reply.body)

    def _send_json(self, status: int, body: Any) -> None:
        data = json.dumps(body, ensure_ascii=False).encode("utf-8")
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def _chunk(self, data: bytes) -> None:
        self.wfile.write(b"%x\r\n%s\r\n" % (len(data), data))
        self.wfile.flush()

    def _send_events(self, reply: Reply) -> None:
        events = reply.events
        assert events is not None
        try:
            first = next(events, None)  # errors before the first byte still get a proper status
        except BadRequest as exc:
            self._send_json(*_status_body(_openai_error(exc)))
            return
        except KolmError as exc:  # e.g. a prompt longer than the context, found on the first step
            self._send_json(500, {"error": {"message": exc.message, "type": "server_error"}})
            return
        self.send_response(200)
        self.send_header("Content-Type", "text/event-stream")
        self.send_header("Cache-Control", "no-cache")
        self.send_header("Transfer-Encoding", "chunked")
        self.end_headers()
        try:
            if first is not None:
                self._chunk(b"data: " + json.dumps(first, ensure_ascii=False).encode("utf-8") + b"\n\n")
                for event in events:
                    self._chunk(b"data: " + json.dumps(event, ensure_ascii=False).encode("utf-8") + b"\n\n")
            if reply.done_marker:
                self._chunk(b"data: [DONE]\n\n")
            self.wfile.write(b"0\r\n\r\n")
            self.wfile.flush()
        except (BrokenPipeError, ConnectionResetError):
            self.close_connection = True  # the client left; closing the generator frees the model
        except KolmError as exc:  # after the headers: report in-band, then end the stream
            self._chunk(b"data: " + json.dumps({"error": exc.message, "error_type": "generation"}).encode() + b"\n\n")
            self.wfile.write(b"0\r\n\r\n")
        finally:
            close = getattr(events, "close", None)
            if close is not None:
                close()


def _status_body(reply: Reply) -> tuple[int, Any]:
    return reply.status, reply.body


class KolmHTTPServer(ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True

    def __init__(self, address: tuple[str, int], router: Router, *, access_log: bool = False) -> None:
        self.router = router
        self.access_log = access_log
        super().__init__(address, _Handler)

    @property
    def url(self) -> str:
        host, port = self.server_address[:2]
        return f"http://{host}:{port}"

    def start_background(self) -> threading.Thread:
        t = threading.Thread(target=self.serve_forever, name="kolm-serve", daemon=True)
        t.start()
        return t


def make_server(service: Service, host: str = "127.0.0.1", port: int = 8080, *, lorax_compat: bool = False,
                access_log: bool = False) -> KolmHTTPServer:
    return KolmHTTPServer((host, port), Router(service, lorax_compat=lorax_compat), access_log=access_log)
