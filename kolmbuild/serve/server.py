"""The HTTP server: uvicorn (httptools) serving :class:`~kolmbuild.serve.app.App`, with the limits
the standard library's ``ThreadingHTTPServer`` lacked, and a shutdown that cleans up.

* the listen socket is bound here (``--backlog``, default 2048; the kernel caps it at
  ``net.core.somaxconn``), so a port in use is a clear error before uvicorn starts;
* one event loop, no thread per connection: idle and slow connections cost a file descriptor and
  a timer, and the worker threads are bounded (see :mod:`kolmbuild.serve.app`);
* **request head timeout** (``--header-timeout``): uvicorn has none (its keep-alive timer only
  runs between requests and is reset by every byte received), so a client could trickle a header
  forever. :class:`_Protocol` arms a timer when a connection opens and when a new request's first
  byte arrives, and answers 408 and closes when the head is not complete in time. The body has its
  own deadline in the app (``--body-timeout``: 408);
* **connection limit** (``--max-connections``): a request arriving on a connection past the limit
  gets 503 + Retry-After in the route's error shape, and the connection is closed. (uvicorn's own
  ``limit_concurrency`` answers a plain-text 503 without Retry-After.) A malformed request gets a
  400 in the OpenAI error shape rather than uvicorn's plain text;
* **graceful shutdown** on SIGINT, SIGTERM and SIGHUP: stop listening, close idle connections, let
  in-flight answers finish for ``--shutdown-timeout`` seconds, then end the remaining generations
  at their next token (streams get an in-band error event), join every worker thread, and return
  normally, so the caller closes the Predictor, which removes its temp folder. uvicorn re-raises a
  captured signal after its shutdown, which would kill the process before that cleanup (and with
  SIGTERM's default action, exit 143): :class:`_Server` does not.

Subclassing uvicorn's protocol and server relies on their attributes (``connections``, ``cycle``,
``on_headers_complete``, ``capture_signals``), pinned by the version range in pyproject.toml and
covered by tests/serve/test_serve_load.py.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import signal
import socket
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any, ClassVar

import uvicorn
from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol

from kolmbuild.errors import UserInputError
from kolmbuild.runtime import Predictor, RuntimeOptions
from kolmbuild.serve.app import App
from kolmbuild.serve.metrics import Metrics
from kolmbuild.serve.options import ServeOptions
from kolmbuild.serve.pool import ModelPool
from kolmbuild.serve.router import Router
from kolmbuild.serve.service import Service

SHUTDOWN_SIGNALS = (signal.SIGINT, signal.SIGTERM, signal.SIGHUP)
LINGER_S = 2.0  # after a 408/400 on a connection whose client may still be sending
HARD_STOP_S = 5.0  # after the grace period, how long ended generations get to wind down before tasks are cancelled


def _error_bytes(status: int, reason: str, message: str) -> bytes:
    body = json.dumps({"error": {"message": message, "type": "invalid_request_error", "param": None, "code": None}})
    return (f"HTTP/1.1 {status} {reason}\r\ncontent-type: application/json\r\ncontent-length: {len(body)}\r\n"
            f"connection: close\r\n\r\n{body}").encode()


class _Protocol(HttpToolsProtocol):
    """uvicorn's httptools protocol plus a request-head deadline and a connection limit."""

    options: ClassVar[ServeOptions]
    refuse: ClassVar[Any]  # the ASGI app that answers past the connection limit

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.limit_concurrency = None  # our limit, answered with Retry-After (on_headers_complete)
        self._serve_app = self.app
        self._head_timer: asyncio.TimerHandle | None = None
        self._lingering = False

    # the head deadline -----------------------------------------------------------------------------
    def _arm_head(self) -> None:
        if self._head_timer is None:
            self._head_timer = self.loop.call_later(self.options.header_timeout, self._head_timed_out)

    def _disarm_head(self) -> None:
        if self._head_timer is not None:
            self._head_timer.cancel()
            self._head_timer = None

    def _answering(self) -> bool:
        return self.cycle is not None and not self.cycle.response_complete

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        super().connection_made(transport)
        self._arm_head()

    def connection_lost(self, exc: Exception | None) -> None:
        self._disarm_head()
        super().connection_lost(exc)

    def data_received(self, data: bytes) -> None:
        if self._lingering:  # answered and closing: the rest of the request is dropped
            return
        super().data_received(data)
        # bytes between requests that start no request (blank lines) must not keep a connection open
        if not self._answering() and not self.transport.is_closing():
            self._arm_head()

    def on_message_begin(self) -> None:
        super().on_message_begin()
        self._arm_head()

    def on_headers_complete(self) -> None:
        self._disarm_head()
        over = len(self.connections) > self.options.max_connections
        self.app = self.refuse if over else self._serve_app
        super().on_headers_complete()

    def _head_timed_out(self) -> None:
        self._head_timer = None
        if self.transport.is_closing() or self._lingering:
            return
        if self._answering():  # a pipelined head trickling in behind an answer: finish it, then close
            self.cycle.keep_alive = False
            self.flow.pause_reading()
            return
        self._answer_and_close(_error_bytes(408, "Request Timeout",
                                            f"the request head did not arrive within {self.options.header_timeout:g} s"))

    def send_400_response(self, msg: str) -> None:
        if self._answering():  # garbage after a request that is still being answered: no second status line
            self.transport.close()
            return
        self._answer_and_close(_error_bytes(400, "Bad Request", f"malformed HTTP request: {msg}"))

    def _answer_and_close(self, data: bytes) -> None:
        """Send ``data`` and close without a reset: the client may still be sending, and closing a
        socket with unread input makes the kernel send RST, which can destroy the answer before the
        client reads it. So: send, shut down our side (FIN), drop what still arrives, and close when
        the client does or after :data:`LINGER_S` (nginx's lingering close)."""
        self._lingering = True
        self.transport.write(data)
        if self.transport.can_write_eof():
            self.transport.write_eof()
            self.loop.call_later(LINGER_S, self.transport.close)
        else:
            self.transport.close()

    def eof_received(self) -> None:
        if self._lingering:
            self.transport.close()
        super().eof_received()


class _Server(uvicorn.Server):
    """uvicorn's server with SIGHUP handled too, a grace period that ends generations, and no
    re-raised signal (the caller cleans up and exits 0)."""

    def __init__(self, config: uvicorn.Config, *, grace: float, end_generations: Callable[[], None]) -> None:
        super().__init__(config)
        self.grace = grace
        self.end_generations = end_generations

    @contextlib.contextmanager
    def capture_signals(self) -> Iterator[None]:
        if threading.current_thread() is not threading.main_thread():
            yield
            return
        previous = {sig: signal.signal(sig, self.handle_exit) for sig in SHUTDOWN_SIGNALS}
        try:
            yield
        finally:
            for sig, handler in previous.items():
                signal.signal(sig, handler)

    async def shutdown(self, sockets: list[socket.socket] | None = None) -> None:
        timer = asyncio.get_running_loop().call_later(self.grace, self.end_generations)
        try:
            await super().shutdown(sockets)
        finally:
            timer.cancel()
            self.end_generations()


def bind(host: str, port: int, backlog: int) -> socket.socket:
    """A listening TCP socket on host:port (OSError when the address is taken or unknown). It listens
    at once: a client that connects before the event loop runs waits in the backlog, not refused."""
    family, kind, proto, _, address = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM,
                                                         flags=socket.AI_PASSIVE)[0]
    sock = socket.socket(family, kind, proto)
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind(address)
        sock.listen(backlog)
    except BaseException:
        sock.close()
        raise
    return sock


class KolmHTTPServer:
    """A bound server over one :class:`Service`: :meth:`serve` in the foreground (handles signals), or
    :meth:`start_background` / :meth:`stop` (tests, benches)."""

    def __init__(self, service: Service, options: ServeOptions) -> None:
        self.service = service
        self.options = options
        self.router = Router(service, lorax_compat=options.lorax_compat)
        self.app = App(self.router, service.pool, service.metrics, options)
        self.socket = bind(options.host, options.port, options.backlog)
        protocol = type("KolmProtocol", (_Protocol,), {"options": options, "refuse": self.app.refuse})
        config = uvicorn.Config(
            self.app, http=protocol, ws="none", lifespan="off", interface="asgi3",
            log_config=None, access_log=options.access_log, proxy_headers=False, server_header=False,
            backlog=options.backlog, timeout_keep_alive=options.keep_alive,  # type: ignore[arg-type]
            timeout_graceful_shutdown=options.shutdown_timeout + HARD_STOP_S,  # type: ignore[arg-type]
        )
        self.server = _Server(config, grace=options.shutdown_timeout, end_generations=service.pool.stop)
        pool = service.pool
        service.metrics.watch(queue_depth=lambda: pool.stats().waiting, running=lambda: pool.stats().running,
                              connections=lambda: len(self.server.server_state.connections))
        self._thread: threading.Thread | None = None
        self._finished = False

    @property
    def server_address(self) -> tuple[str, int]:
        host, port = self.socket.getsockname()[:2]
        return host, port

    @property
    def url(self) -> str:
        host, port = self.server_address
        return f"http://[{host}]:{port}" if ":" in host else f"http://{host}:{port}"

    def serve(self) -> None:
        """Serve until SIGINT/SIGTERM/SIGHUP (or :meth:`stop`), then shut down gracefully."""
        try:
            self.server.run(sockets=[self.socket])
        finally:
            self._finish()

    def start_background(self, timeout: float = 30.0) -> None:
        self._thread = threading.Thread(target=self.server.run, kwargs={"sockets": [self.socket]},
                                        name="kolm-serve", daemon=True)
        self._thread.start()
        deadline = time.monotonic() + timeout
        while not self.server.started:
            if not self._thread.is_alive() or time.monotonic() > deadline:
                raise RuntimeError("the server did not start")
            time.sleep(0.01)

    def stop(self) -> None:
        self.server.should_exit = True
        if self._thread is not None:
            self._thread.join(self.options.shutdown_timeout + HARD_STOP_S + 10)
        self._finish()

    def _finish(self) -> None:
        if self._finished:
            return
        self._finished = True
        self.service.pool.stop()  # queued requests get 503; running generations end at their next token
        self.app.close()  # every worker thread has returned: nothing touches the model any more
        self.socket.close()


def make_server(service: Service, options: ServeOptions | None = None) -> KolmHTTPServer:
    return KolmHTTPServer(service, options or ServeOptions(port=0))


def _interrupt(signum: int, frame: Any) -> None:
    raise KeyboardInterrupt


@contextlib.contextmanager
def _interruptible() -> Iterator[None]:
    """SIGTERM and SIGHUP act like Ctrl+C while the artifact opens and the model loads, so the
    temp folder is removed on the way out (their default action would kill the process first)."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    previous = {sig: signal.signal(sig, _interrupt) for sig in (signal.SIGTERM, signal.SIGHUP)}
    try:
        yield
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)


def serve_artifact(artifact: Path, options: ServeOptions, *, pubkey: str | None = None,
                   runtime: RuntimeOptions | None = None, drift: bool = True,
                   ready: Callable[[KolmHTTPServer], None] | None = None) -> None:
    """Verify and open ``artifact``, load its model (``options.parallel`` contexts), listen, call
    ``ready``, and serve until SIGINT/SIGTERM/SIGHUP; returns after a graceful shutdown with the
    temp folder removed. A port that cannot be bound is a :class:`UserInputError` (exit 2)."""
    try:
        with _interruptible(), Predictor.open(artifact, pubkey=pubkey, options=runtime, drift=drift) as predictor:
            pool = ModelPool(predictor, parallel=options.parallel, max_queue=options.max_queue)
            try:
                if predictor.has_model:
                    pool.load()  # now, not on the first request
                try:
                    server = KolmHTTPServer(Service(predictor, pool=pool, metrics=Metrics()), options)
                except OSError as exc:
                    raise UserInputError(f"--port {options.port}: cannot listen on {options.host}:{options.port}: "
                                         f"{exc.strerror or exc}") from exc
                if ready is not None:
                    ready(server)
                server.serve()
            finally:
                pool.close()
    except KeyboardInterrupt:  # a signal before serving began: cleaned up above, a normal exit
        return
