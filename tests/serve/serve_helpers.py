"""``kolmbuild serve`` as a child process on loopback, and a raw HTTP/1.1 client for the load tests
(a uniquely named module: conftest names collide across folders)."""

from __future__ import annotations

import asyncio
import json
import os
import re
import signal
import subprocess
import sys
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from kolmbuild.artifact import write_artifact
from kolmbuild.models import bundled_smollm2
from kolmbuild.models.resolve import file_sha256

TASK: dict[str, Any] = {
    "name": "helper",
    "description": "Answer the question in one short sentence.",
    "shape": {"input": "text", "output": "text", "max_output_tokens": 512},
}
# a real recipe pack (kolm-recipes/1) with one lookup recipe: "hello recipe" never reaches the model
RECIPES = {"format": "kolm-recipes/1", "recipes": [{"kind": "lookup", "entries": [["hello recipe", "recipe says hi"]]}]}
LONG = "Write a very long story about a dragon who learns to sing."


def write_helper_artifact(dest: Path) -> Path:
    write_artifact(dest, target="helper", version="1", task=TASK, components={"recipes": json.dumps(RECIPES).encode()},
                   base={"name": "smollm2", "sha256": file_sha256(bundled_smollm2())}, toolchain_info={})
    return dest


@dataclass
class ServeProc:
    """A running ``kolmbuild serve``; its temp folders go to ``tmpdir`` (TMPDIR), stderr is drained."""

    proc: subprocess.Popen[str]
    url: str
    tmpdir: Path
    stderr: list[str] = field(default_factory=list)

    @property
    def port(self) -> int:
        return int(self.url.rsplit(":", 1)[1])

    def threads(self) -> int:
        status = Path(f"/proc/{self.proc.pid}/status").read_text()
        return int(re.search(r"^Threads:\s+(\d+)", status, re.M).group(1))  # type: ignore[union-attr]

    def run_folders(self) -> list[Path]:
        return sorted(self.tmpdir.glob("kolm-run-*"))

    def signal(self, sig: signal.Signals) -> None:
        self.proc.send_signal(sig)

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(30)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(10)


def start_serve(art: Path, tmp: Path, *flags: str, env: dict[str, str] | None = None) -> ServeProc:
    tmpdir = tmp / "tmpdir"
    tmpdir.mkdir(parents=True, exist_ok=True)
    child_env = {**os.environ, **(env or {}), "TMPDIR": str(tmpdir)}
    cmd = [sys.executable, "-m", "kolmbuild", "serve", str(art), "--port", "0", "--threads", "1", "--no-drift", *flags]
    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True, env=child_env)
    assert proc.stderr is not None
    line = proc.stderr.readline()
    m = re.search(r" on (http://127\.0\.0\.1:\d+)", line)
    if not m:
        proc.kill()
        raise AssertionError(f"serve did not start: {line}{proc.stderr.read()}")
    sp = ServeProc(proc, m.group(1), tmpdir)

    def drain() -> None:  # a full pipe would block the server's logging
        assert proc.stderr is not None
        for rest in proc.stderr:
            sp.stderr.append(rest)

    threading.Thread(target=drain, daemon=True).start()
    return sp


@dataclass
class Response:
    status: int
    headers: dict[str, str]
    body: bytes

    def json(self) -> Any:
        return json.loads(self.body)


async def read_response(reader: asyncio.StreamReader) -> Response:
    """One HTTP/1.1 response (Content-Length or chunked); raises if the connection ends early."""
    head = await reader.readuntil(b"\r\n\r\n")
    lines = head.decode("latin-1").split("\r\n")
    status = int(lines[0].split(" ", 2)[1])
    headers = {k.strip().lower(): v.strip() for k, v in (ln.split(":", 1) for ln in lines[1:] if ln)}
    if "content-length" in headers:
        body = await reader.readexactly(int(headers["content-length"]))
    elif headers.get("transfer-encoding") == "chunked":
        parts = []
        while True:
            size = int((await reader.readuntil(b"\r\n")).strip(), 16)
            chunk = await reader.readexactly(size + 2)
            if size == 0:
                break
            parts.append(chunk[:-2])
        body = b"".join(parts)
    else:
        body = await reader.read()
    return Response(status, headers, body)


def post_bytes(path: str, doc: Any, *, close: bool = True) -> bytes:
    body = json.dumps(doc).encode()
    return (f"POST {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n"
            f"Content-Length: {len(body)}\r\n{'Connection: close' + chr(13) + chr(10) if close else ''}\r\n").encode() + body


def chat(text: str, **kw: Any) -> dict[str, Any]:
    return {"model": "helper", "messages": [{"role": "user", "content": text}], **kw}


def wait_exit(proc: subprocess.Popen[str], timeout: float) -> tuple[int | None, float]:
    t0 = time.monotonic()
    try:
        rc = proc.wait(timeout)
    except subprocess.TimeoutExpired:
        rc = None
    return rc, time.monotonic() - t0
