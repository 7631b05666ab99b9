"""``kolmbuild serve`` under load vs the standard-library server it replaced, in the same run.

Usage: python bench/serve_load.py [--clients 64] [--seconds 5] [--rounds 3] [--threads 1]
                                  [--out docs/bench/serve_load.json]

Both servers run as child processes on 127.0.0.1 and serve the same Router/Service; only the HTTP
layer differs. The baseline is the ``ThreadingHTTPServer`` handler ``kolmbuild serve`` used before
(reconstructed below, run with ``--stdlib-server``: backlog 5, a thread per connection, SSE over
chunked encoding, TCP_NODELAY).

1. **recipe**: a PHI redactor artifact (its recipe pack learned from examples/phi-redactor as the
   build does; recipe-only). ``--clients`` asyncio clients on keep-alive connections post fresh
   PHI sentences to ``/v1/chat/completions`` for ``--seconds``; rounds alternate which server goes
   first. Reported: requests/s, p50/p99 latency, errors, and the server's CPU milliseconds per
   request (from /proc: insensitive to other load on the machine). Then the same with a new
   connection per request, where the listen backlog shows.
2. **health**: a text artifact naming the bundled SmolLM2-135M as its base. While one streamed
   generation runs (``max_tokens`` 256), ``GET /health`` every 20 ms on a keep-alive connection:
   p50/p99/max latency, for each server.
3. **parallel**: ``serve --parallel 1`` vs ``--parallel 2`` (``--threads`` each), two concurrent
   streamed generations: aggregate tokens/s, and the server's memory (PSS, anonymous vs file:
   the weights are memory-mapped, so a second context should add anonymous memory, its KV cache
   and buffers, and no file pages).

Each server runs in its own session, so in its own scheduler autogroup: under other load, a server
gets the same CPU share whether it runs one thread or 65. Prints one JSON record and writes it to
--out. The machine's load average is recorded at the start and end: other processes on a shared machine change absolute numbers, less so ratios of
rounds that alternate, and least the CPU time per request.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import platform
import re
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from _record import emit  # noqa: E402  (bench/ is sys.path[0])
from recipe import PHI, fresh_inputs  # noqa: E402

from kolmbuild.errors import KolmError  # noqa: E402
from kolmbuild.serve.protocol import BadRequest, load_json  # noqa: E402
from kolmbuild.serve.router import Reply, Router, openai_error, server_error  # noqa: E402

STORY = "Write a short story about a lighthouse keeper who finds a message in a bottle."
PHI_TASK = {"name": "phi-redactor", "description": "Replace SSNs, phone numbers, emails and dates.",
            "shape": {"input": "text", "output": "text"}}
CLIENT_TIMEOUT_S = 10.0  # a request unanswered this long counts as an error (TimeoutError)
TEXT_TASK = {"name": "writer", "description": "You are a helpful writer.",
             "shape": {"input": "text", "output": "text", "max_output_tokens": 512}}


# -- the baseline: the stdlib handler `kolmbuild serve` used before, over today's Router -------------------
class _StdlibHandler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server: _StdlibServer
    max_body = 8 * 1024**2

    def setup(self) -> None:
        super().setup()
        self.connection.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)

    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002
        pass

    def _read_body(self) -> Any:
        length = self.headers.get("Content-Length")
        if length is None:
            if self.headers.get("Transfer-Encoding"):
                self.close_connection = True
                raise BadRequest("send the body with a Content-Length", status=411)
            return None
        n = int(length)
        if n < 0 or n > self.max_body:
            self.close_connection = True
            raise BadRequest(f"the body must be at most {self.max_body} bytes", status=413)
        raw = self.rfile.read(n)
        return load_json(raw) if raw else None

    def do_GET(self) -> None:  # noqa: N802
        self._dispatch("GET")

    def do_POST(self) -> None:  # noqa: N802
        self._dispatch("POST")

    def _dispatch(self, method: str) -> None:
        try:
            body = self._read_body() if method == "POST" else None
            reply = self.server.router.handle(method, self.path, body)
            if reply.compute is not None:  # the model's work, in this connection's thread as before
                reply = reply.compute()
        except BadRequest as exc:
            reply = openai_error(exc)
        except KolmError as exc:
            reply = server_error(exc.message)
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
            first = next(events, None)
        except (BadRequest, KolmError) as exc:
            r = openai_error(exc) if isinstance(exc, BadRequest) else server_error(exc.message)
            self._send_json(r.status, r.body)
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
            self.close_connection = True
        finally:
            close = getattr(events, "close", None)
            if close is not None:
                close()


class _StdlibServer(ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True

    def __init__(self, router: Router) -> None:
        self.router = router
        super().__init__(("127.0.0.1", 0), _StdlibHandler)


def stdlib_server_main(art: Path, threads: int) -> int:
    """Child process: the baseline server until SIGTERM (which cleans up, for the bench's sake)."""
    from kolmbuild.runtime import Predictor, RuntimeOptions
    from kolmbuild.serve import Service

    def interrupt(signum: int, frame: Any) -> None:
        raise KeyboardInterrupt

    signal.signal(signal.SIGTERM, interrupt)
    with Predictor.open(art, options=RuntimeOptions(n_threads=threads), drift=False) as predictor:
        if predictor.has_model:
            predictor.runner()
        server = _StdlibServer(Router(Service(predictor), lorax_compat=False))
        host, port = server.server_address[:2]
        print(f"serving {predictor.target} (stdlib) on http://{host}:{port}", file=sys.stderr, flush=True)
        try:
            server.serve_forever()
        except KeyboardInterrupt:
            pass
        finally:
            server.server_close()
    return 0


# -- child processes -------------------------------------------------------------------------------------
class Child:
    def __init__(self, cmd: list[str]) -> None:
        # its own session, so its own scheduler autogroup (kernel.sched_autogroup_enabled): with other
        # work on the machine, each server then gets the same CPU share whether it runs 1 thread or 65
        self.proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True,
                                     start_new_session=True)
        assert self.proc.stderr is not None
        line = self.proc.stderr.readline()
        m = re.search(r" on http://127\.0\.0\.1:(\d+)", line)
        if not m:
            self.proc.kill()
            raise SystemExit(f"server did not start: {line}{self.proc.stderr.read()}")
        self.port = int(m.group(1))
        threading.Thread(target=self.proc.stderr.read, daemon=True).start()  # drain

    def cpu_s(self) -> float:
        fields = Path(f"/proc/{self.proc.pid}/stat").read_text().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")

    def run_delay_s(self) -> float:
        """Seconds its threads spent runnable but waiting for a CPU (/proc/PID/task/*/schedstat)."""
        total = 0
        for stat in Path(f"/proc/{self.proc.pid}/task").glob("*/schedstat"):
            try:
                total += int(stat.read_text().split()[1])
            except (OSError, IndexError, ValueError):  # a thread that just ended
                continue
        return total / 1e9

    def memory_mb(self) -> dict[str, float]:
        """Proportional set size (a page mapped twice, as the GGUF is by two contexts, counts once),
        split into anonymous memory (KV caches, buffers) and file pages (the memory-mapped weights)."""
        text = Path(f"/proc/{self.proc.pid}/smaps_rollup").read_text()

        def kb(name: str) -> float:
            m = re.search(rf"^{name}:\s+(\d+) kB", text, re.M)
            return round(int(m.group(1)) / 1024, 1) if m else 0.0

        return {"pss_mb": kb("Pss"), "pss_anon_mb": kb("Pss_Anon"), "pss_file_mb": kb("Pss_File"), "rss_mb": kb("Rss")}

    def stop(self) -> None:
        self.proc.terminate()
        try:
            self.proc.wait(30)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()


def new_server(art: Path, threads: int, *extra: str) -> Child:
    return Child([sys.executable, "-m", "kolmbuild", "serve", str(art), "--port", "0", "--threads", str(threads),
                  "--no-drift", *extra])


def old_server(art: Path, threads: int) -> Child:
    return Child([sys.executable, __file__, "--stdlib-server", str(art), "--threads", str(threads)])


# -- clients ---------------------------------------------------------------------------------------------
def _request(text: str) -> bytes:
    body = json.dumps({"model": "phi", "messages": [{"role": "user", "content": text}]}).encode()
    return (b"POST /v1/chat/completions HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n"
            b"Content-Length: %d\r\n\r\n" % len(body)) + body


async def _response(reader: asyncio.StreamReader) -> int:
    head = await reader.readuntil(b"\r\n\r\n")
    m = re.search(rb"(?i)\r\ncontent-length:\s*(\d+)", head)
    await reader.readexactly(int(m.group(1)) if m else 0)
    return int(head[9:12])


async def _load(port: int, requests: list[bytes], clients: int, seconds: float, keep_alive: bool) -> dict[str, Any]:
    latencies: list[float] = []
    errors: dict[str, int] = {}
    start = time.perf_counter()
    stop_at = start + seconds

    async def client(k: int) -> None:
        i = k
        conn: tuple[asyncio.StreamReader, asyncio.StreamWriter] | None = None
        while time.perf_counter() < stop_at:
            t0 = time.perf_counter()
            try:
                if conn is None:
                    conn = await asyncio.open_connection("127.0.0.1", port)
                reader, writer = conn
                writer.write(requests[i % len(requests)])
                status = await asyncio.wait_for(_response(reader), CLIENT_TIMEOUT_S)
                if status != 200:
                    errors[f"http_{status}"] = errors.get(f"http_{status}", 0) + 1
                elif time.perf_counter() <= stop_at:
                    latencies.append(time.perf_counter() - t0)
            except (OSError, asyncio.IncompleteReadError, TimeoutError) as exc:
                errors[type(exc).__name__] = errors.get(type(exc).__name__, 0) + 1
                if conn is not None:
                    conn[1].close()
                conn = None
                continue
            if not keep_alive:
                conn[1].close()
                conn = None
            i += clients
        if conn is not None:
            conn[1].close()

    await asyncio.gather(*[client(k) for k in range(clients)])
    lat = sorted(latencies)  # answers completed within the window (a stuck client does not stretch it)
    return {"requests": len(lat), "requests_per_s": len(lat) / seconds, "errors": errors,
            "p50_ms": lat[len(lat) // 2] * 1000 if lat else None,
            "p99_ms": lat[min(len(lat) - 1, int(len(lat) * 0.99))] * 1000 if lat else None}


def recipe_round(child: Child, requests: list[bytes], clients: int, seconds: float, keep_alive: bool) -> dict[str, Any]:
    asyncio.run(_load(child.port, requests[:clients * 4], clients, 0.5, keep_alive))  # warm-up
    c0, w0 = child.cpu_s(), child.run_delay_s()
    rec = asyncio.run(_load(child.port, requests, clients, seconds, keep_alive))
    rec["server_cpu_ms_per_request"] = (child.cpu_s() - c0) * 1000 / max(1, rec["requests"])
    # time the server was ready to run but other processes held the CPUs (a shared machine's tax)
    rec["server_cpu_wait_s_per_s"] = (child.run_delay_s() - w0) / seconds
    return rec


def _median_of(rounds: list[dict[str, Any]], key: str) -> float | None:
    vals = [r[key] for r in rounds if r.get(key) is not None]
    return round(statistics.median(vals), 3) if vals else None


def summarize(rounds: list[dict[str, Any]]) -> dict[str, Any]:
    errors: dict[str, int] = {}
    for r in rounds:
        for k, v in r["errors"].items():
            errors[k] = errors.get(k, 0) + v
    keys = ("requests_per_s", "p50_ms", "p99_ms", "server_cpu_ms_per_request", "server_cpu_wait_s_per_s")
    return {key: _median_of(rounds, key) for key in keys} | {
        "requests": sum(r["requests"] for r in rounds), "errors": errors,
        "rounds_requests_per_s": [round(r["requests_per_s"], 1) for r in rounds]}


def recipe_part(art: Path, args: argparse.Namespace) -> dict[str, Any]:
    texts = fresh_inputs(5000, seed=11)
    requests = [_request(t) for t in texts]
    servers = {"serve": new_server(art, args.threads), "stdlib": old_server(art, args.threads)}
    out: dict[str, Any] = {"clients": args.clients, "seconds_per_round": args.seconds, "rounds": args.rounds}
    try:
        for mode, keep_alive in (("keep_alive", True), ("new_connection_per_request", False)):
            rounds: dict[str, list[dict[str, Any]]] = {"serve": [], "stdlib": []}
            for i in range(args.rounds):
                order = ["serve", "stdlib"] if i % 2 == 0 else ["stdlib", "serve"]
                for name in order:
                    rounds[name].append(recipe_round(servers[name], requests, args.clients, args.seconds, keep_alive))
            s, b = summarize(rounds["serve"]), summarize(rounds["stdlib"])
            out[mode] = {"serve": s, "stdlib": b,
                         "ratio_requests_per_s": round(s["requests_per_s"] / b["requests_per_s"], 3)
                         if s["requests_per_s"] and b["requests_per_s"] else None,
                         "ratio_cpu_per_request_stdlib_vs_serve": round(
                             b["server_cpu_ms_per_request"] / s["server_cpu_ms_per_request"], 3)
                         if s["server_cpu_ms_per_request"] and b["server_cpu_ms_per_request"] else None}
    finally:
        for child in servers.values():
            child.stop()
    return out


# -- /health while a generation streams ------------------------------------------------------------------
def _stream(port: int, max_tokens: int, text: str = STORY) -> tuple[int, float]:
    """One streamed chat completion: (completion tokens, seconds)."""
    from kolmbuild.serve.bench import stream_chat

    r = stream_chat(f"http://127.0.0.1:{port}", text, max_tokens=max_tokens)
    return r.completion_tokens, r.total_s


def health_during_stream(child: Child, max_tokens: int) -> dict[str, Any]:
    _stream(child.port, 8)  # warm-up
    done = threading.Event()
    result: dict[str, Any] = {}

    def gen() -> None:
        result["tokens"], result["seconds"] = _stream(child.port, max_tokens)
        done.set()

    t = threading.Thread(target=gen)
    t.start()
    time.sleep(0.3)  # the prompt is in, tokens are flowing
    latencies = []
    with socket.create_connection(("127.0.0.1", child.port), timeout=30) as s:
        s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        f = s.makefile("rb")
        while not done.is_set():
            t0 = time.perf_counter()
            s.sendall(b"GET /health HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n")
            length = 0
            while (line := f.readline()) not in (b"\r\n", b""):
                if line.lower().startswith(b"content-length:"):
                    length = int(line.split(b":")[1])
            f.read(length)
            latencies.append(time.perf_counter() - t0)
            time.sleep(0.02)
    t.join()
    lat = sorted(latencies)
    return {"probes": len(lat), "p50_ms": round(lat[len(lat) // 2] * 1000, 3),
            "p99_ms": round(lat[min(len(lat) - 1, int(len(lat) * 0.99))] * 1000, 3),
            "max_ms": round(lat[-1] * 1000, 3), "stream_tokens_per_s": round(result["tokens"] / result["seconds"], 2)}


def health_part(art: Path, args: argparse.Namespace) -> dict[str, Any]:
    out: dict[str, Any] = {"max_tokens": args.max_tokens}
    for name, start in (("serve", lambda: new_server(art, args.threads)), ("stdlib", lambda: old_server(art, args.threads))):
        child = start()
        try:
            out[name] = health_during_stream(child, args.max_tokens)
        finally:
            child.stop()
    return out


# -- --parallel ------------------------------------------------------------------------------------------
def parallel_part(art: Path, args: argparse.Namespace) -> dict[str, Any]:
    out: dict[str, Any] = {"streams": 2, "max_tokens": args.max_tokens // 2, "threads_per_context": args.threads}
    for n in (1, 2):
        child = new_server(art, args.threads, "--parallel", str(n))
        port = child.port
        try:
            _stream(port, 8)  # warm-up
            runs = []
            for _ in range(max(1, args.rounds // 2 + 1)):
                t0 = time.perf_counter()
                with ThreadPoolExecutor(2) as pool:
                    results = list(pool.map(_stream, [port, port], [args.max_tokens // 2] * 2))
                runs.append(sum(tok for tok, _ in results) / (time.perf_counter() - t0))
            out[f"parallel_{n}"] = {"aggregate_tokens_per_s": round(statistics.median(runs), 2),
                                    "rounds_tokens_per_s": [round(r, 2) for r in runs],
                                    "server_memory": child.memory_mb()}
        finally:
            child.stop()
    p1, p2 = out["parallel_1"], out["parallel_2"]
    out["ratio_tokens_per_s"] = round(p2["aggregate_tokens_per_s"] / p1["aggregate_tokens_per_s"], 3)
    m1, m2 = p1["server_memory"], p2["server_memory"]
    out["second_context_mb"] = {k: round(m2[k] - m1[k], 1) for k in ("pss_mb", "pss_anon_mb", "pss_file_mb")}
    return out


# -- artifacts -------------------------------------------------------------------------------------------
def phi_artifact(tmp: Path) -> Path:
    from kolmbuild.artifact import write_artifact
    from kolmbuild.config.models import RecipesSpec, ShapeSpec, VerifierSpec
    from kolmbuild.data import load_examples
    from kolmbuild.recipes import learn
    from kolmbuild.verifier import synthesize

    shape = ShapeSpec()
    train = load_examples(PHI / "train.jsonl", shape)
    verifier = synthesize(train, shape, VerifierSpec(), PHI)
    pack = learn(train, load_examples(PHI / "eval.jsonl", shape), verifier, RecipesSpec(kinds=["span", "lookup"]), shape)
    art = tmp / "phi.kolm"
    write_artifact(art, target="phi-redactor", version="0", task=PHI_TASK,
                   components={"recipes": json.dumps(pack.to_json()).encode()})
    return art


def writer_artifact(tmp: Path) -> Path:
    from kolmbuild.artifact import write_artifact
    from kolmbuild.models.resolve import bundled_smollm2, file_sha256

    art = tmp / "writer.kolm"
    write_artifact(art, target="writer", version="0", task=TEXT_TASK, components={},
                   base={"name": "smollm2", "sha256": file_sha256(bundled_smollm2())})
    return art


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--clients", type=int, default=64)
    parser.add_argument("--seconds", type=float, default=5.0)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--max-tokens", type=int, default=256)
    # one thread per context: on a shared machine, llama.cpp's spinning thread barriers collapse when cores are busy
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--only", choices=["recipe", "health", "parallel"], default=None)
    parser.add_argument("--note", default="", help="What else ran on the machine (goes into the record).")
    parser.add_argument("--nice", type=int, default=0,
                        help="Run the bench and both servers at this niceness (negative: ahead of other work; root).")
    parser.add_argument("--out", type=Path, default=None)
    parser.add_argument("--stdlib-server", type=Path, default=None, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.stdlib_server is not None:
        return stdlib_server_main(args.stdlib_server, args.threads)
    if args.nice:
        os.nice(args.nice)  # the servers inherit it
    record: dict[str, Any] = {
        "bench": "serve_load",
        "machine": platform.machine(),
        "cpus": os.cpu_count(),
        "python": platform.python_version(),
        "uvicorn": __import__("importlib.metadata").metadata.version("uvicorn"),
        "threads": args.threads,
        "note": args.note,
        "nice": args.nice,
        "loadavg_start": [round(x, 2) for x in os.getloadavg()],
    }
    with tempfile.TemporaryDirectory() as tmp_name:
        tmp = Path(tmp_name)
        os.environ["KOLM_CONFIG_DIR"] = str(tmp / "config")  # a throwaway signing key, shared with the children
        os.environ["KOLM_STATE_DIR"] = str(tmp / "state")
        parts: dict[str, Callable[[], dict[str, Any]]] = {
            "recipe": lambda: recipe_part(phi_artifact(tmp), args),
            "health": lambda: health_part(writer_artifact(tmp), args),
            "parallel": lambda: parallel_part(writer_artifact(tmp), args),
        }
        for name, run in parts.items():
            if args.only in (None, name):
                record[name] = run()
                print(f"{name}: done", file=sys.stderr, flush=True)
    record["loadavg_end"] = [round(x, 2) for x in os.getloadavg()]
    emit(record, args.out)
    return 0


if __name__ == "__main__":
    sys.exit(main())
