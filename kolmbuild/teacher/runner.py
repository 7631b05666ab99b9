"""Answer a batch of teacher requests: cache first, then bounded concurrent calls with retries,
each one paid for out of the budget.

:meth:`Teacher.run` returns the replies in request order, or raises. When the budget stops it,
calls already in flight finish (their replies are cached, since they were paid for) and no new
call starts; the caller writes nothing, and a later build with a bigger budget resumes from the
cache.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Sequence
from concurrent.futures import FIRST_EXCEPTION, Future, ThreadPoolExecutor, wait
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from kolmbuild.config.models import TeacherSpec
from kolmbuild.progress import NullProgress, Progress
from kolmbuild.sharing import SharedEntries
from kolmbuild.teacher.budget import Budget, Prices
from kolmbuild.teacher.cache import RequestCache
from kolmbuild.teacher.clients import ChatClient, make_client
from kolmbuild.teacher.errors import Transient
from kolmbuild.teacher.request import ChatRequest, Reply
from kolmbuild.teacher.retry import RetryPolicy, with_retries


@dataclass(frozen=True)
class TeacherStats:
    requests: int  # requests answered (cached or called)
    calls: int  # paid calls that got a reply
    cached: int  # requests answered from the cache
    attempts: int  # HTTP attempts, retries included
    retries: int
    input_tokens: int  # reported by the paid calls of this run
    output_tokens: int
    spent_usd: float  # what this run paid
    labels_cost_usd: float  # what all the replies used cost when they were bought (cached ones too)

    def to_json(self) -> dict[str, Any]:
        return {
            "requests": self.requests,
            "calls": self.calls,
            "cached": self.cached,
            "attempts": self.attempts,
            "retries": self.retries,
            "input_tokens": self.input_tokens,
            "output_tokens": self.output_tokens,
            "spent_usd": round(self.spent_usd, 8),
            "labels_cost_usd": round(self.labels_cost_usd, 8),
        }


class _Counters:
    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.calls = self.cached = self.attempts = self.retries = 0
        self.input_tokens = self.output_tokens = 0


def cache_root(cache_dir: Path) -> Path:
    return cache_dir / "teacher" / "requests"


class Teacher:
    def __init__(
        self,
        spec: TeacherSpec,
        cache_dir: Path,
        *,
        client_factory: Callable[[TeacherSpec], ChatClient] = make_client,
        backoff_s: float = 1.0,
        sleep: Callable[[float], None] = time.sleep,
        progress: Progress | None = None,
        shared: SharedEntries | None = None,
    ) -> None:
        self.spec = spec
        self.cache = RequestCache(cache_root(cache_dir), shared)  # shared: the remote cache's teacher/
        self.prices = Prices(spec.price_in_per_mtok, spec.price_out_per_mtok)
        self.budget = Budget(spec.budget_usd)
        self.policy = RetryPolicy(spec.max_retries, base_s=backoff_s)
        self._client_factory = client_factory
        self._client: ChatClient | None = None
        self._client_lock = threading.Lock()
        self._sleep = sleep
        self._progress = progress or NullProgress()

    def _get_client(self) -> ChatClient:
        """Made on the first cache miss: a fully cached build needs no key and no endpoint."""
        with self._client_lock:
            if self._client is None:
                self._client = self._client_factory(self.spec)
            return self._client

    def _call(self, request: ChatRequest, counters: _Counters, stop: threading.Event) -> Reply | None:
        cached = self.cache.get(request)
        if cached is not None:
            with counters.lock:
                counters.cached += 1
            return cached
        if stop.is_set():
            return None
        client = self._get_client()
        held = self.budget.reserve(self.prices.worst_case(request))

        def attempt() -> Reply:
            with counters.lock:
                counters.attempts += 1
            return client.complete(request)

        def note_retry(exc: Transient) -> None:
            with counters.lock:
                counters.retries += 1
            self._progress.log(f"retrying: {exc.reason}")

        try:
            reply = with_retries(attempt, self.policy, sleep=self._sleep, on_retry=note_retry, what=f"teacher request {request.cid()[-12:]}")
        except BaseException:
            self.budget.release(held)
            raise
        self.budget.settle(held, self.prices.cost(reply.input_tokens, reply.output_tokens))
        self.cache.put(request, reply)
        with counters.lock:
            counters.calls += 1
            counters.input_tokens += reply.input_tokens
            counters.output_tokens += reply.output_tokens
        return reply

    def run(self, requests: Sequence[ChatRequest], description: str = "teacher requests") -> tuple[list[Reply], TeacherStats]:
        counters = _Counters()
        stop = threading.Event()
        replies: list[Reply | None] = [None] * len(requests)
        self._progress.start(description, total=len(requests))
        with ThreadPoolExecutor(max_workers=self.spec.concurrency, thread_name_prefix="teacher") as pool:
            futures: dict[Future[Reply | None], int] = {
                pool.submit(self._call, req, counters, stop): i for i, req in enumerate(requests)
            }
            pending = set(futures)
            error: BaseException | None = None
            while pending:
                done, pending = wait(pending, return_when=FIRST_EXCEPTION)
                for fut in done:
                    exc = fut.exception()
                    if exc is not None:
                        if error is None:
                            error = exc
                            stop.set()  # queued requests still answer from the cache, none calls
                            for other in pending:
                                other.cancel()
                        continue
                    if not fut.cancelled():
                        replies[futures[fut]] = fut.result()
                        self._progress.advance(1, spent=f"${self.budget.spent:.4f}")
                pending = {f for f in pending if not f.cancelled()}
        if error is not None:
            raise error
        final = [r for r in replies if r is not None]
        assert len(final) == len(requests)
        labels_cost = sum(self.prices.cost(r.input_tokens, r.output_tokens) for r in final)
        stats = TeacherStats(
            requests=len(final),
            calls=counters.calls,
            cached=counters.cached,
            attempts=counters.attempts,
            retries=counters.retries,
            input_tokens=counters.input_tokens,
            output_tokens=counters.output_tokens,
            spent_usd=self.budget.spent,
            labels_cost_usd=labels_cost,
        )
        return final, stats
