"""The ASGI application: request bodies within limits, the :class:`Router`, SSE streams, ``/metrics``.

A plain ASGI callable rather than Starlette: routing and the OpenAI/LoRAX error shapes already
live in :class:`~kolmbuild.serve.router.Router` (testable without sockets), and what is left —
reading a body under a size limit and a deadline, streaming from a worker thread, noticing a
client that hung up — needs the raw ``receive``/``send`` either way.

Where work runs:

* on the event loop: ``GET`` routes, ``/metrics``, reading bodies, sending bytes;
* on the event loop too, for a small body: parsing it and :meth:`Router.handle`, which answers a
  recipe route completely and only *decides* a model route (tens of microseconds);
* ``front`` threads (a few): the same for a large body or one with a ``response_format`` (a JSON
  schema to compile), so those never stall the loop;
* ``model`` threads (``parallel + max_queue``): a model route, once
  :meth:`~kolmbuild.serve.pool.ModelPool.reserve` admitted it; past the queue, 503 + Retry-After.
  A recipe answer therefore never waits behind a generation.

A stream's tokens are pushed from its model thread to the loop with ``call_soon_threadsafe`` (the
thread never waits for the client); the loop sends whatever has piled up in one write. When the
client hangs up, the thread stops at the next token and closes the generation, which frees the
context.
"""

from __future__ import annotations

import asyncio
import json
import logging
import threading
import time
from collections.abc import Awaitable, Callable, MutableMapping
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from kolmbuild.errors import KolmError
from kolmbuild.serve.metrics import CONTENT_TYPE, Metrics
from kolmbuild.serve.options import ServeOptions
from kolmbuild.serve.pool import ModelPool
from kolmbuild.serve.protocol import BadRequest, Unavailable, load_json
from kolmbuild.serve.router import Reply, Router, clean_path, openai_error, server_error

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]

log = logging.getLogger("kolmbuild.serve")
FRONT_THREADS = 4
# A body up to this size is parsed and routed on the event loop (JSON parsing, validation and a recipe
# answer take tens of microseconds; handing them to a thread costs more than that on a busy CPU).
# Larger bodies, and any request with a response_format (a new JSON schema is compiled into a
# grammar, which can take milliseconds), go to a front thread so the loop never stalls on them.
INLINE_BODY = 16 * 1024
_DATA, _END, _FAIL, _WAIT = 0, 1, 2, 3  # what a stream's worker thread pushes to the loop (and: none yet)


class _ClientGone(Exception):
    pass


class App:
    def __init__(self, router: Router, pool: ModelPool, metrics: Metrics, options: ServeOptions) -> None:
        self.router = router
        self.pool = pool
        self.metrics = metrics
        self.options = options
        self.front = ThreadPoolExecutor(FRONT_THREADS, thread_name_prefix="kolm-front")
        self.model = ThreadPoolExecutor(pool.parallel + pool.max_queue, thread_name_prefix="kolm-model")

    def close(self) -> None:
        """Wait for every worker thread (call :meth:`ModelPool.stop` first: they end within a token)."""
        self.front.shutdown(wait=True, cancel_futures=True)
        self.model.shutdown(wait=True)

    # ASGI entry -------------------------------------------------------------------------------------
    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":  # no lifespan (the server runs without it), no websockets
            return
        t0 = time.perf_counter()
        status = [0]

        async def tracked(message: Message) -> None:
            if message["type"] == "http.response.start":
                status[0] = message["status"]
            await send(message)

        try:
            await self._handle(scope, receive, tracked)
        finally:
            # 499 (nginx's "client closed request"): no answer went out
            self.metrics.request(scope["method"], clean_path(scope["path"]), status[0] or 499, time.perf_counter() - t0)

    async def refuse(self, scope: Scope, receive: Receive, send: Send) -> None:
        """The answer on a connection past ``--max-connections``: 503 + Retry-After, then close."""
        if scope["type"] != "http":
            return
        self.metrics.rejected.labels("connections").inc()
        exc = Unavailable(f"too many open connections (--max-connections {self.options.max_connections}); retry later")
        reply = self.router.shape_for(scope["path"])(exc)
        self.metrics.request(scope["method"], clean_path(scope["path"]), reply.status, 0.0)
        await _send_json(send, reply, close=True)

    async def _handle(self, scope: Scope, receive: Receive, send: Send) -> None:
        method, path = scope["method"], scope["path"]
        if method == "GET" and path == "/metrics":
            body = self.metrics.exposition()
            await send({"type": "http.response.start", "status": 200,
                        "headers": [(b"content-type", CONTENT_TYPE.encode()), (b"content-length", b"%d" % len(body))]})
            await send({"type": "http.response.body", "body": body})
            return
        if method != "POST":
            await _send_json(send, self.router.handle(method, path, None))
            return
        try:
            raw = await self._read_body(scope, receive)
        except BadRequest as exc:
            await _send_json(send, openai_error(exc), close=exc.status in (408, 411, 413))
            return
        except _ClientGone:
            return
        loop = asyncio.get_running_loop()
        if len(raw) <= INLINE_BODY and b'"response_format"' not in raw:
            reply = self._route(method, path, raw)  # tens of microseconds: a thread hop would cost more
        else:
            reply = await loop.run_in_executor(self.front, self._route, method, path, raw)
        if reply.uses_model:
            assert reply.error is not None
            try:
                self.pool.reserve()
            except Unavailable as exc:
                self.metrics.rejected.labels("shutting_down" if self.pool.stopping else "queue_full").inc()
                _discard(reply)
                await _send_json(send, reply.error(exc))
                return
        if reply.compute is not None:
            reply = await loop.run_in_executor(self.model, self._compute, reply.compute)
        if reply.events is not None:
            await self._stream(reply, receive, send)
        else:
            await _send_json(send, reply)

    # request body ----------------------------------------------------------------------------------
    async def _read_body(self, scope: Scope, receive: Receive) -> bytes:
        length: bytes | None = None
        chunked = False
        for name, value in scope["headers"]:
            if name == b"content-length":
                length = value
            elif name == b"transfer-encoding":
                chunked = True
        if length is None:
            if chunked:  # framing is the server's to check; the size limit needs a length up front
                raise BadRequest("send the body with a Content-Length (chunked request bodies are not supported)",
                                 status=411)
            return b""
        n = int(length)  # the HTTP parser has refused anything but digits
        if n > self.options.max_body:
            raise BadRequest(f"the body must be at most {self.options.max_body} bytes", status=413)
        deadline = asyncio.get_running_loop().time() + self.options.body_timeout
        parts: list[bytes] = []
        more = n > 0
        while more:
            try:
                async with asyncio.timeout_at(deadline):
                    message = await receive()
            except TimeoutError:
                got = sum(map(len, parts))
                raise BadRequest(f"the body did not arrive within {self.options.body_timeout:g} s "
                                 f"({got} of {n} bytes)", status=408) from None
            if message["type"] == "http.disconnect":
                raise _ClientGone
            parts.append(message.get("body", b""))
            more = message.get("more_body", False)
        return b"".join(parts)

    # routing (a front thread) ------------------------------------------------------------------------
    def _route(self, method: str, path: str, raw: bytes) -> Reply:
        try:
            body = load_json(raw) if raw else None
            return self.router.handle(method, path, body)
        except BadRequest as exc:
            return openai_error(exc)
        except KolmError as exc:
            return server_error(exc.message)
        except Exception as exc:  # a bug must not take the connection down without an answer
            log.exception("request failed")
            return server_error(f"{type(exc).__name__}: {exc}")

    # the model's work (a model thread) ---------------------------------------------------------------
    def _compute(self, compute: Callable[[], Reply]) -> Reply:
        try:
            return compute()
        except KolmError as exc:  # e.g. a prompt longer than the context
            return server_error(exc.message)
        except Exception as exc:
            log.exception("generation failed")
            return server_error(f"{type(exc).__name__}: {exc}")
        finally:
            self.pool.unreserve()

    def _pump(self, reply: Reply, put: Callable[[int, Any], None], stop: threading.Event) -> None:
        """Run a stream's generator, pushing encoded SSE events; ends at ``stop`` (client gone)."""
        events = reply.events
        assert events is not None
        try:
            for event in events:
                put(_DATA, b"data: " + json.dumps(event, ensure_ascii=False).encode("utf-8") + b"\n\n")
                if stop.is_set():
                    return
            if reply.done_marker:
                put(_DATA, b"data: [DONE]\n\n")
            put(_END, None)
        except Exception as exc:
            put(_FAIL, exc)
        finally:
            close = getattr(events, "close", None)
            if close is not None:
                close()  # frees the model context when the stream was cut short
            if reply.uses_model:
                self.pool.unreserve()

    # SSE -----------------------------------------------------------------------------------------------
    async def _stream(self, reply: Reply, receive: Receive, send: Send) -> None:
        loop = asyncio.get_running_loop()
        queue: asyncio.Queue[tuple[int, Any]] = asyncio.Queue()
        stop = threading.Event()
        if reply.uses_model:

            def put(kind: int, item: Any) -> None:
                try:
                    loop.call_soon_threadsafe(queue.put_nowait, (kind, item))
                except RuntimeError:  # the loop is gone (hard shutdown): nobody is listening
                    stop.set()

            loop.run_in_executor(self.model, self._pump, reply, put, stop)
        else:  # a recipe's single event: no thread
            self._pump(reply, lambda kind, item: queue.put_nowait((kind, item)), stop)
        kind, item = await queue.get()
        if kind == _FAIL:  # nothing sent yet: a proper status
            stop.set()
            await _send_json(send, _failure_reply(reply, item))
            return
        await send({"type": "http.response.start", "status": 200,
                    "headers": [(b"content-type", b"text/event-stream"), (b"cache-control", b"no-cache")]})
        watcher = asyncio.ensure_future(_watch_disconnect(receive, stop, queue))
        try:
            while True:
                chunks: list[bytes] = []
                while kind == _DATA:  # everything that piled up goes out in one write
                    chunks.append(item)
                    if queue.empty():
                        kind = _WAIT
                        break
                    kind, item = queue.get_nowait()
                if chunks:
                    await send({"type": "http.response.body", "body": b"".join(chunks), "more_body": True})
                if kind == _WAIT:
                    kind, item = await queue.get()
                    continue
                if kind == _FAIL:  # after the headers: report in-band, then end the stream
                    await send({"type": "http.response.body", "body": _inband_error(item), "more_body": True})
                break
            await send({"type": "http.response.body", "body": b"", "more_body": False})
        finally:
            stop.set()
            watcher.cancel()


async def _watch_disconnect(receive: Receive, stop: threading.Event, queue: asyncio.Queue[tuple[int, Any]]) -> None:
    while (await receive())["type"] != "http.disconnect":
        pass
    stop.set()
    queue.put_nowait((_END, None))  # wakes the sender, whose writes go nowhere now


def _failure_reply(reply: Reply, exc: BaseException) -> Reply:
    if isinstance(exc, BadRequest):
        return (reply.error or openai_error)(exc)
    if isinstance(exc, KolmError):  # e.g. a prompt longer than the context, found on the first step
        return server_error(exc.message)
    log.error("stream failed", exc_info=exc)
    return server_error(f"{type(exc).__name__}: {exc}")


def _inband_error(exc: BaseException) -> bytes:
    if isinstance(exc, Unavailable):
        doc = {"error": exc.message, "error_type": "overloaded"}
    elif isinstance(exc, BadRequest):
        doc = {"error": exc.message, "error_type": "validation"}
    elif isinstance(exc, KolmError):
        doc = {"error": exc.message, "error_type": "generation"}
    else:
        log.error("stream failed", exc_info=exc)
        doc = {"error": f"{type(exc).__name__}: {exc}", "error_type": "generation"}
    return b"data: " + json.dumps(doc, ensure_ascii=False).encode("utf-8") + b"\n\n"


def _discard(reply: Reply) -> None:
    """Close a refused stream's generator (it never started: nothing is held)."""
    close = getattr(reply.events, "close", None)
    if close is not None:
        close()


async def _send_json(send: Send, reply: Reply, *, close: bool = False) -> None:
    data = json.dumps(reply.body, ensure_ascii=False).encode("utf-8")
    headers = [(b"content-type", b"application/json"), (b"content-length", b"%d" % len(data))]
    headers += [(name.lower().encode("latin-1"), value.encode("latin-1")) for name, value in reply.headers]
    if close or reply.close:
        headers.append((b"connection", b"close"))
    await send({"type": "http.response.start", "status": reply.status, "headers": headers})
    await send({"type": "http.response.body", "body": data})
