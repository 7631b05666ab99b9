"""``kolmbuild serve`` under load, as a child process on loopback: bursts, slow clients, short bodies,
the bounded model queue, the connection limit, /metrics, and signals. Every client here has a
deadline; nothing waits on a server that misbehaves for longer than the test's own timeouts."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import socket
import statistics
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from lorax import Client as LoraxClient
from lorax.errors import OverloadedError
from prometheus_client.parser import text_string_to_metric_families
from serve_helpers import (
    LONG,
    RECIPES,
    ServeProc,
    chat,
    post_bytes,
    read_response,
    start_serve,
    wait_exit,
    write_helper_artifact,
)

from kolmbuild.artifact import write_artifact

HEADER_TIMEOUT = 2.0  # the 30 s trickle, scaled down through --header-timeout
BODY_TIMEOUT = 1.0
MAX_CONNECTIONS = 220


@pytest.fixture(scope="module")
def env(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, str]]:
    """A throwaway signing key and state folder, for the artifact and the child processes."""
    root = tmp_path_factory.mktemp("serve-load-env")
    values = {"KOLM_CONFIG_DIR": str(root / "config"), "KOLM_STATE_DIR": str(root / "state")}
    with pytest.MonkeyPatch.context() as mp:
        for k, v in values.items():
            mp.setenv(k, v)
        yield values


@pytest.fixture(scope="module")
def artifact(env: dict[str, str], tmp_path_factory: pytest.TempPathFactory) -> Path:
    return write_helper_artifact(tmp_path_factory.mktemp("serve-load-art") / "helper.kolm")


@pytest.fixture(scope="module")
def served(artifact: Path, env: dict[str, str], tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServeProc]:
    sp = start_serve(artifact, tmp_path_factory.mktemp("serve-load"), "--lorax-compat", "--max-queue", "1",
                     "--max-connections", str(MAX_CONNECTIONS), "--header-timeout", str(HEADER_TIMEOUT),
                     "--body-timeout", str(BODY_TIMEOUT), env=env)
    try:
        yield sp
    finally:
        sp.stop()


def metrics(url: str) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    r = httpx.get(url + "/metrics", timeout=10)
    assert r.status_code == 200 and r.headers["content-type"].startswith("text/plain; version=0.0.4")
    return {(s.name, tuple(sorted(s.labels.items()))): s.value
            for fam in text_string_to_metric_families(r.text) for s in fam.samples}


def assert_refusal(resp: Any, shape: str = "openai") -> str:
    """A 503 with Retry-After (whole seconds) and the API's error shape; returns the message."""
    assert resp.status == 503 if hasattr(resp, "status") else resp.status_code == 503
    assert int(resp.headers["retry-after"]) >= 1
    doc = resp.json()
    if shape == "openai":
        assert doc["error"]["type"] == "server_error"
        return str(doc["error"]["message"])
    assert doc["error_type"] == "overloaded"
    return str(doc["error"])


# -- 200 concurrent requests ---------------------------------------------------------------------------
def test_200_concurrent_requests_get_an_answer_or_a_503_with_retry_after(served: ServeProc) -> None:
    threads_before = served.threads()

    async def burst() -> list[Any]:
        conns = await asyncio.gather(*[asyncio.open_connection("127.0.0.1", served.port) for _ in range(200)])

        async def one(i: int, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> Any:
            doc = chat("hello recipe") if i % 2 else chat("Say one word.", max_tokens=2)
            writer.write(post_bytes("/v1/chat/completions", doc))
            try:
                return i, await asyncio.wait_for(read_response(reader), 120)
            finally:
                writer.close()

        return await asyncio.gather(*[one(i, r, w) for i, (r, w) in enumerate(conns)], return_exceptions=True)

    results = asyncio.run(burst())
    errors = [r for r in results if isinstance(r, BaseException)]
    assert not errors, errors[:3]  # no reset, no connection closed without an answer
    recipe = [resp for i, resp in results if i % 2]
    model = [resp for i, resp in results if not i % 2]
    assert all(r.status == 200 and r.json()["choices"][0]["message"]["content"] == "recipe says hi" for r in recipe)
    ok = [r for r in model if r.status == 200]
    refused = [r for r in model if r.status != 200]
    assert ok and all(r.json()["system_fingerprint"] == "kolm-model" for r in ok)
    assert refused, "100 model requests against 1 context and a queue of 1: some must be refused"
    assert all("--max-queue 1" in assert_refusal(r) for r in refused)
    # bounded worker threads: 4 front threads and parallel + max_queue = 2 model threads at most
    assert served.threads() <= threads_before + 6
    assert httpx.get(served.url + "/health", timeout=10).status_code == 200


def test_a_request_past_the_connection_limit_gets_503_and_the_connection_closes(served: ServeProc) -> None:
    socks = [socket.create_connection(("127.0.0.1", served.port), timeout=10) for _ in range(MAX_CONNECTIONS + 5)]
    try:
        last = socks[-1]
        last.sendall(b"GET /health HTTP/1.1\r\nHost: x\r\n\r\n")
        data = b""
        while chunk := last.recv(65536):  # the server closes it after the answer
            data += chunk
        head, body = data.split(b"\r\n\r\n", 1)
        assert head.startswith(b"HTTP/1.1 503") and b"retry-after: 1" in head.lower()
        assert b"--max-connections 220" in body
    finally:
        for s in socks:
            s.close()
    deadline = time.monotonic() + 30  # the server has seen every hang-up before the next test counts connections
    while metrics(served.url)[("kolm_http_connections", ())] > 2:
        assert time.monotonic() < deadline
        time.sleep(0.05)
    assert httpx.get(served.url + "/health", timeout=10).status_code == 200


# -- slow clients ----------------------------------------------------------------------------------------
def test_slow_clients_are_closed_at_the_header_timeout_while_health_answers(served: ServeProc) -> None:
    threads_before = served.threads()
    head = b"GET /health HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Slow: " + b"a" * 60  # 6 s at one byte per 0.1 s

    async def slow(i: int) -> tuple[float, bytes]:
        t0 = time.monotonic()  # before connecting: the server's clock for this connection starts later
        reader, writer = await asyncio.open_connection("127.0.0.1", served.port)
        got = b""
        try:
            for byte in head:
                writer.write(bytes([byte]))
                try:
                    got += await asyncio.wait_for(reader.read(4096), 0.1)
                except TimeoutError:
                    continue
                if not got or reader.at_eof():
                    break
            got += await asyncio.wait_for(reader.read(), 5)  # until the server closes
            return time.monotonic() - t0, got
        finally:
            writer.close()

    async def probe(stop: asyncio.Event, latencies: list[float], samples: dict[str, list[float]]) -> None:
        async with httpx.AsyncClient(base_url=served.url, timeout=5) as client:
            while not stop.is_set():
                t0 = time.perf_counter()
                r = await client.get("/health")
                latencies.append(time.perf_counter() - t0)
                assert r.status_code == 200
                samples["threads"].append(served.threads())
                await asyncio.sleep(0.05)

    async def scenario() -> tuple[list[Any], list[float], dict[str, list[float]], float, float]:
        stop = asyncio.Event()
        latencies: list[float] = []
        samples: dict[str, list[float]] = {"threads": []}
        prober = asyncio.create_task(probe(stop, latencies, samples))
        clients = [asyncio.create_task(slow(i)) for i in range(50)]
        await asyncio.sleep(HEADER_TIMEOUT / 2)
        during = await asyncio.to_thread(metrics, served.url)
        results = await asyncio.gather(*clients, return_exceptions=True)
        stop.set()
        await prober
        after = await asyncio.to_thread(metrics, served.url)
        open_during = during[("kolm_http_connections", ())]
        open_after = after[("kolm_http_connections", ())]
        return results, latencies, samples, open_during, open_after

    results, latencies, samples, open_during, open_after = asyncio.run(scenario())
    errors = [r for r in results if isinstance(r, BaseException)]
    assert not errors, errors[:3]
    for took, got in results:  # type: ignore[misc]
        assert got.startswith(b"HTTP/1.1 408") and b"did not arrive within 2 s" in got
        assert HEADER_TIMEOUT * 0.95 <= took < HEADER_TIMEOUT + 3.0, took
    assert open_during >= 50 and open_after <= 2
    assert len(latencies) >= 10
    # /health answered all along; the median is what the slow clients could have stalled (a shared CI
    # machine can pause any single request, so the maximum is only bounded loosely)
    assert statistics.median(latencies) < 0.1 and max(latencies) < 1.0, sorted(latencies)[-5:]
    assert max(samples["threads"]) <= threads_before  # 50 slow connections cost no thread


def test_a_body_shorter_than_its_content_length_gets_408(served: ServeProc) -> None:
    with socket.create_connection(("127.0.0.1", served.port), timeout=10) as s:
        t0 = time.monotonic()
        s.sendall(b"POST /v1/completions HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
                  b"Content-Length: 100\r\n\r\n" + b'{"prompt": "')
        data = b""
        while chunk := s.recv(65536):
            data += chunk
        took = time.monotonic() - t0
    head, body = data.split(b"\r\n\r\n", 1)
    assert head.startswith(b"HTTP/1.1 408") and b"connection: close" in head.lower()
    assert b"the body did not arrive within 1 s (12 of 100 bytes)" in body
    assert BODY_TIMEOUT * 0.9 <= took < BODY_TIMEOUT + 3.0


# -- the model queue -------------------------------------------------------------------------------------
class Stream:
    """A streamed chat request read on a thread: when its first token came, whether it finished."""

    def __init__(self, url: str, text: str, max_tokens: int) -> None:
        self.first = threading.Event()
        self.done = threading.Event()
        self.events: list[str] = []
        self.status = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, args=(url, text, max_tokens), daemon=True)
        self._thread.start()

    def _run(self, url: str, text: str, max_tokens: int) -> None:
        try:
            with httpx.stream("POST", url + "/v1/chat/completions", json=chat(text, max_tokens=max_tokens, stream=True),
                              timeout=120) as r:
                self.status = r.status_code
                for line in r.iter_lines():
                    if line.startswith("data: "):
                        self.events.append(line[6:])
                        if '"content": "' in line and '"content": ""' not in line:
                            self.first.set()
                    if self._stop.is_set():
                        return  # hang up
        except httpx.HTTPError:
            pass
        finally:
            self.done.set()

    def hang_up(self) -> None:
        self._stop.set()
        self._thread.join(60)


def test_recipes_never_wait_behind_a_generation_and_the_queue_is_bounded(served: ServeProc) -> None:
    running = Stream(served.url, LONG, max_tokens=400)
    assert running.first.wait(60)
    queued = Stream(served.url, LONG, max_tokens=400)
    try:
        deadline = time.monotonic() + 30
        while metrics(served.url)[("kolm_queue_depth", ())] < 1:
            assert time.monotonic() < deadline and not queued.done.is_set()
            time.sleep(0.05)
        state = metrics(served.url)
        assert state[("kolm_generations_running", ())] == 1 and state[("kolm_queue_depth", ())] == 1
        # a recipe answer while the generation streams and another waits
        r = httpx.post(served.url + "/v1/chat/completions", json=chat("hello recipe"), timeout=30)
        assert r.status_code == 200 and r.json()["choices"][0]["message"]["content"] == "recipe says hi"
        assert not running.done.is_set()
        # a third model request: past --max-queue 1, refused at once, in each API's shape
        refused = httpx.post(served.url + "/v1/chat/completions", json=chat("Say hi.", max_tokens=2), timeout=30)
        assert "--max-queue 1" in assert_refusal(refused)
        lorax_refused = httpx.post(served.url + "/generate", json={"inputs": "Say hi."}, timeout=30)
        assert "--max-queue 1" in assert_refusal(lorax_refused, shape="lorax")
        with pytest.raises(OverloadedError):
            LoraxClient(served.url, timeout=30).generate("Say hi.", max_new_tokens=2)
        assert not running.done.is_set()
        assert metrics(served.url)[("kolm_rejected_requests_total", (("reason", "queue_full"),))] >= 3
    finally:
        running.hang_up()
        queued.hang_up()
    # both clients hung up: their contexts and places are free again
    deadline = time.monotonic() + 60
    while True:
        state = metrics(served.url)
        if state[("kolm_generations_running", ())] == 0 and state[("kolm_queue_depth", ())] == 0:
            break
        assert time.monotonic() < deadline, state
        time.sleep(0.1)
    r = httpx.post(served.url + "/v1/chat/completions", json=chat("Say hi.", max_tokens=2), timeout=60)
    assert r.status_code == 200


def test_metrics_count_requests_routes_tokens_and_latency(served: ServeProc) -> None:
    before = metrics(served.url)
    httpx.post(served.url + "/v1/chat/completions", json=chat("hello recipe"), timeout=30)
    r = httpx.post(served.url + "/v1/chat/completions", json=chat("Name a fruit.", max_tokens=3), timeout=60)
    usage = r.json()["usage"]
    httpx.get(served.url + "/nope", timeout=10)
    after = metrics(served.url)

    def grew(name: str, labels: tuple[tuple[str, str], ...] = ()) -> float:
        return after[(name, labels)] - before.get((name, labels), 0.0)

    chat_ok = (("method", "POST"), ("path", "/v1/chat/completions"), ("status", "200"))
    assert grew("kolm_http_requests_total", chat_ok) == 2
    assert grew("kolm_http_requests_total", (("method", "GET"), ("path", "other"), ("status", "404"))) == 1
    assert grew("kolm_answers_total", (("route", "recipe"),)) == 1
    assert grew("kolm_answers_total", (("route", "model"),)) == 1
    assert grew("kolm_generated_tokens_total") == usage["completion_tokens"]
    assert grew("kolm_prompt_tokens_total") == usage["prompt_tokens"]
    assert grew("kolm_http_request_duration_seconds_count", (("path", "/v1/chat/completions"),)) == 2
    assert grew("kolm_http_request_duration_seconds_bucket", (("le", "+Inf"), ("path", "/v1/chat/completions"))) == 2
    assert grew("kolm_generation_duration_seconds_count") == 1
    assert after[("kolm_queue_depth", ())] == 0 and ("process_resident_memory_bytes", ()) in after


# -- signals ---------------------------------------------------------------------------------------------
@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGHUP, signal.SIGINT], ids=lambda s: s.name)
def test_a_signal_mid_stream_exits_0_and_removes_the_temp_folder(artifact: Path, env: dict[str, str],
                                                                 tmp_path: Path, sig: signal.Signals) -> None:
    sp = start_serve(artifact, tmp_path, "--parallel", "2", "--max-queue", "0", "--shutdown-timeout", "1", env=env)
    try:
        assert len(sp.run_folders()) == 1  # the extracted artifact, while serving
        streams = [Stream(sp.url, LONG, max_tokens=500) for _ in range(2)]
        assert all(s.first.wait(60) for s in streams)  # two contexts decode at once
        third = httpx.post(sp.url + "/v1/chat/completions", json=chat("Say hi.", max_tokens=2), timeout=30)
        assert "--max-queue 0" in assert_refusal(third)
        sp.signal(sig)
        rc, took = wait_exit(sp.proc, 30)
        print(f"exit {rc} after {took:.2f} s")
        assert rc == 0 and took < 15, (rc, took, "".join(sp.stderr))
        for s in streams:
            assert s.done.wait(10) and s.status == 200
            last = s.events[-1]  # finished within the grace period, or ended in-band
            assert last == "[DONE]" or "shutting down" in last, last
        assert sp.run_folders() == []
        assert "Traceback" not in "".join(sp.stderr)
    finally:
        sp.stop()


def test_a_port_in_use_is_exit_2(tmp_path: Path) -> None:
    art = tmp_path / "recipes.kolm"
    write_artifact(art, target="helper", version="1", task={"name": "helper", "shape": {"input": "text", "output": "text"}},
                   components={"recipes": json.dumps(RECIPES).encode()}, toolchain_info={})
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen(1)
        port = taken.getsockname()[1]
        proc = subprocess.run([sys.executable, "-m", "kolmbuild", "serve", str(art), "--port", str(port)],
                              capture_output=True, text=True, timeout=120, env={**os.environ, "TMPDIR": str(tmp_path)})
    assert proc.returncode == 2 and f"--port {port}: cannot listen" in proc.stderr and "Traceback" not in proc.stderr
    assert list(tmp_path.glob("kolm-run-*")) == []
