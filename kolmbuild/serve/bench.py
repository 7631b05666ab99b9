"""``kolmbuild bench``: pattern mode (calls/s and latency percentiles of a .kolm file in process)
and generative mode (tokens/s and time to first token of a serve endpoint). Each prints one JSON
record; nothing here decides pass/fail (bench/*.py compare records side by side)."""

from __future__ import annotations

import http.client
import json
import statistics
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from kolmbuild.errors import UserInputError


def percentiles_us(samples_ns: Sequence[int]) -> dict[str, float]:
    """min/p50/p95/p99/max in microseconds (nearest-rank percentiles)."""
    if not samples_ns:
        raise ValueError("no samples")
    s = sorted(samples_ns)

    def rank(p: float) -> float:
        return s[min(len(s) - 1, max(0, int(round(p / 100.0 * len(s))) - 1))] / 1000.0

    return {"min_us": s[0] / 1000.0, "p50_us": rank(50), "p95_us": rank(95), "p99_us": rank(99), "max_us": s[-1] / 1000.0}


def pattern_bench(predict: Callable[[Any], Any], batch: Callable[[list[Any]], Any] | None, inputs: Sequence[Any],
                  *, n: int, warmup: int) -> dict[str, Any]:
    """Time ``n`` single calls (cycling through ``inputs``) after ``warmup`` untimed ones, then one
    batch pass over ``n`` inputs when ``batch`` is given."""
    if not inputs:
        raise UserInputError("bench: no inputs to time")
    routes: dict[str, int] = {}
    for i in range(warmup):
        predict(inputs[i % len(inputs)])
    samples: list[int] = []
    clock = time.perf_counter_ns
    for i in range(n):
        value = inputs[i % len(inputs)]
        t0 = clock()
        pred = predict(value)
        samples.append(clock() - t0)
        routes[pred.route] = routes.get(pred.route, 0) + 1
    total_s = sum(samples) / 1e9
    rec: dict[str, Any] = {"mode": "pattern", "n": n, "warmup": warmup, "distinct_inputs": len(inputs),
                           **percentiles_us(samples), "calls_per_s": n / total_s if total_s else float("inf"),
                           "routes": dict(sorted(routes.items()))}
    if batch is not None:
        values = [inputs[i % len(inputs)] for i in range(n)]
        t0 = clock()
        batch(values)
        dt = (clock() - t0) / 1e9
        rec["batch_calls_per_s"] = n / dt if dt else float("inf")
    return rec


@dataclass(frozen=True)
class StreamTiming:
    ttft_s: float
    total_s: float
    completion_tokens: int
    prompt_tokens: int
    text: str


def stream_chat(url: str, text: str, *, max_tokens: int, timeout: float = 600.0, extra: dict[str, Any] | None = None) -> StreamTiming:
    """One streamed /v1/chat/completions call timed from the request to the last byte (stdlib client)."""
    parts = urlsplit(url)
    if parts.scheme != "http" or not parts.hostname:
        raise UserInputError(f"--url {url!r}: expected http://HOST:PORT")
    body = {"model": "kolm", "messages": [{"role": "user", "content": text}], "max_tokens": max_tokens,
            "temperature": 0, "stream": True, "stream_options": {"include_usage": True}, **(extra or {})}
    conn = http.client.HTTPConnection(parts.hostname, parts.port or 80, timeout=timeout)
    try:
        t0 = time.perf_counter()
        conn.request("POST", (parts.path.rstrip("/") or "") + "/v1/chat/completions", json.dumps(body),
                     {"Content-Type": "application/json"})
        resp = conn.getresponse()
        if resp.status != 200:
            raise UserInputError(f"{url}: HTTP {resp.status}: {resp.read()[:300]!r}")
        ttft = None
        pieces: list[str] = []
        usage: dict[str, int] = {}
        while line := resp.readline():
            if not line.startswith(b"data: ") or line.strip() == b"data: [DONE]":
                continue
            event = json.loads(line[6:])
            for ch in event.get("choices", []):
                content = ch.get("delta", {}).get("content")
                if content:
                    if ttft is None:
                        ttft = time.perf_counter() - t0
                    pieces.append(content)
            usage = event.get("usage") or usage
        total = time.perf_counter() - t0
    except OSError as exc:
        raise UserInputError(f"{url}: cannot reach the server: {exc}") from exc
    finally:
        conn.close()
    return StreamTiming(ttft if ttft is not None else total, total, int(usage.get("completion_tokens", 0)),
                        int(usage.get("prompt_tokens", 0)), "".join(pieces))


def generative_bench(url: str, prompts: Sequence[str], *, n: int, warmup: int, max_tokens: int) -> dict[str, Any]:
    if not prompts:
        raise UserInputError("bench: no prompts")
    for i in range(warmup):
        stream_chat(url, prompts[i % len(prompts)], max_tokens=max_tokens)
    runs = [stream_chat(url, prompts[i % len(prompts)], max_tokens=max_tokens) for i in range(n)]
    tokens = sum(r.completion_tokens for r in runs)
    seconds = sum(r.total_s for r in runs)
    decode = [(r.completion_tokens - 1) / (r.total_s - r.ttft_s) for r in runs if r.completion_tokens > 1 and r.total_s > r.ttft_s]
    return {
        "mode": "generative", "url": url, "n": n, "warmup": warmup, "max_tokens": max_tokens,
        "tokens": tokens, "tokens_per_s": tokens / seconds if seconds else 0.0,
        "decode_tokens_per_s": statistics.median(decode) if decode else 0.0,
        "ttft_ms_p50": statistics.median(r.ttft_s for r in runs) * 1000.0,
        "ttft_ms_max": max(r.ttft_s for r in runs) * 1000.0,
    }


def bench_endpoint(url: str, texts: Sequence[str], in_file: Path | None, *, n: int, warmup: int,
                   max_tokens: int) -> dict[str, Any]:
    """Generative mode: :func:`generative_bench` on ``texts`` and the inputs of ``in_file``."""
    prompts = list(texts)
    if in_file is not None:
        from kolmbuild.config.models import ShapeSpec
        from kolmbuild.runtime.inputs import iter_inputs

        prompts += [str(row) for row in iter_inputs(in_file, ShapeSpec())]
    if not prompts:
        raise UserInputError("bench --url: give --input TEXT or --file in.jsonl")
    return generative_bench(url, prompts, n=n, warmup=warmup, max_tokens=max_tokens)


def bench_artifact(artifact: Path, texts: Sequence[str], in_file: Path | None, *, n: int, warmup: int,
                   options: Any = None) -> dict[str, Any]:
    """Pattern mode: :func:`pattern_bench` of ``artifact`` (verified first) on ``texts``, else the
    inputs of ``in_file``, else the held-out inputs it ships."""
    from kolmbuild.runtime import Predictor

    with Predictor.open(artifact, options=options, drift=False) as predictor:
        inputs = _bench_inputs(predictor, artifact, in_file, texts)
        record = pattern_bench(predictor.predict, predictor.predict_batch, inputs, n=n, warmup=warmup)
    record["artifact"] = artifact.name
    return record


def _bench_inputs(predictor: Any, artifact: Path, in_file: Path | None, texts: Sequence[str]) -> list[Any]:
    from kolmbuild.runtime.inputs import iter_inputs
    from kolmbuild.runtime.shape import parse_input

    shape = predictor.task.shape
    if texts:
        return [parse_input(t, shape, where="--input") for t in texts]
    if in_file is not None:
        return list(iter_inputs(in_file, shape))
    from kolmbuild.artifact import open_artifact
    from kolmbuild.runtime.inputs import parse_line

    with open_artifact(artifact, verify=False) as art:  # Predictor.open has verified it
        if art.has("heldout"):
            lines = art.read("heldout").decode("utf-8").splitlines()
            return [parse_line(line, shape, f"{artifact}:heldout.jsonl:{i}") for i, line in enumerate(lines, 1) if line.strip()]
    raise UserInputError(f"bench {artifact}: it ships no held-out set; give --input TEXT or --file in.jsonl")
