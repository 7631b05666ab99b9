"""Eval records and a tiny fake OpenAI-compatible server (http.server on loopback, in a thread)."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest


def record(subject: str, cases: list[tuple[Any, Any, Any, bool, float]]) -> dict[str, Any]:
    from kolmbuild.compare import summarize

    rows = [
        {
            "id": i,
            "input": inp,
            "expected": exp,
            "output": out,
            "passed": ok,
            "latency_ms": ms,
            "route": "model",
        }
        for i, (inp, exp, out, ok, ms) in enumerate(cases)
    ]
    return {"kind": "kolm-eval", "version": 1, "subject": subject, "examples": "data/eval.jsonl",
            "cases": rows, "summary": summarize(rows)}  # fmt: skip


@pytest.fixture
def make_record():
    return record


@pytest.fixture
def eval_pair(tmp_path: Path) -> tuple[Path, Path]:
    """A: 3/5 pass; B: 4/5 pass (two fixed, one regressed, a duplicated input, inputs in another order)."""
    a = record("artifacts/demo-0.1.0.kolm", [
        ("2+2", "4", "4", True, 10.0),
        ("capital of France", "Paris", "Lyon", False, 12.0),
        ({"q": "x", "lang": "en"}, "X", "X", True, 20.0),
        ("dup", "d", "d", True, 5.0),
        ("dup", "d", "e", False, 6.0),
    ])  # fmt: skip
    b = record("http://127.0.0.1:9/v1 model=gpt", [
        ({"lang": "en", "q": "x"}, "X", "Y", False, 200.0),
        ("capital of France", "Paris", "Paris", True, 150.0),
        ("2+2", "4", "4", True, 100.0),
        ("dup", "d", "d", True, 90.0),
        ("dup", "d", "d", True, 80.0),
    ])  # fmt: skip
    pa, pb = tmp_path / "a.json", tmp_path / "b.json"
    pa.write_text(json.dumps(a))
    pb.write_text(json.dumps(b))
    return pa, pb


class _Handler(BaseHTTPRequestHandler):
    answers: dict[str, str] = {}
    seen: list[dict[str, Any]] = []
    auth: list[str] = []

    def log_message(self, *args: Any) -> None:
        pass

    def _send(self, code: int, body: dict[str, Any]) -> None:
        data = json.dumps(body).encode()
        self.send_response(code)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def do_GET(self) -> None:
        if self.path.endswith("/models"):
            self._send(200, {"object": "list", "data": [{"id": "fake-1", "object": "model", "created": 0,
                                                        "owned_by": "test"}]})  # fmt: skip
        else:
            self._send(404, {"error": {"message": "not found"}})

    def do_POST(self) -> None:
        body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
        self.seen.append(body)
        self.auth.append(self.headers.get("Authorization", ""))
        prompt = body["messages"][-1]["content"]
        if prompt == "boom":
            self._send(500, {"error": {"message": "internal", "type": "server_error"}})
            return
        answer = self.answers.get(prompt, "I don't know")
        self._send(200, {
            "id": "chatcmpl-1", "object": "chat.completion", "created": 0, "model": body["model"],
            "choices": [{"index": 0, "finish_reason": "stop",
                         "message": {"role": "assistant", "content": answer}}],
            "usage": {"prompt_tokens": 1, "completion_tokens": 1, "total_tokens": 2},
        })  # fmt: skip


@pytest.fixture
def fake_openai() -> Iterator[tuple[str, type[_Handler]]]:
    handler = type("H", (_Handler,), {"answers": {}, "seen": [], "auth": []})
    server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}/v1", handler
    finally:
        server.shutdown()
        server.server_close()
        thread.join(5)
