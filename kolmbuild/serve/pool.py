"""The model lanes: ``parallel`` llama.cpp contexts and a bounded queue of requests waiting for one.

A llama.cpp context decodes one sequence at a time, so requests that need the model take a runner
from here and give it back when their generation ends. Admission is separate from waiting: the
server :meth:`~ModelPool.reserve` s a place before it hands a request to a worker thread, and
refuses with :class:`~kolmbuild.serve.protocol.Unavailable` (503 + Retry-After) once ``parallel``
are running and ``max_queue`` are waiting, so a burst never turns into an unbounded backlog or a
dropped connection. :meth:`~ModelPool.stop` (shutdown) wakes the waiters with a 503 and makes
running generations end at their next token.

Extra contexts come from :meth:`Predictor.new_runner`: the GGUF weights are memory-mapped, so
the contexts share one copy of them in the page cache; each has its own KV cache.
"""

from __future__ import annotations

import math
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass

from kolmbuild.runtime import Predictor
from kolmbuild.runtime.llm import LlamaRunner
from kolmbuild.serve.protocol import Unavailable

MAX_RETRY_AFTER = 30  # seconds; OpenAI's SDK stops retrying when told to wait more than 60


@dataclass(frozen=True)
class PoolStats:
    parallel: int
    max_queue: int
    running: int
    waiting: int


class ModelPool:
    def __init__(self, predictor: Predictor, *, parallel: int = 1, max_queue: int = 64) -> None:
        if parallel < 1 or max_queue < 0:
            raise ValueError("parallel must be at least 1 and max_queue at least 0")
        self.predictor = predictor
        self.parallel = parallel
        self.max_queue = max_queue
        self._cond = threading.Condition()
        self._load_lock = threading.Lock()
        self._free: list[LlamaRunner] | None = None  # None: not loaded yet
        self._extra: list[LlamaRunner] = []  # the ones this pool made (the predictor closes its own)
        self._reserved = 0
        self._running = 0
        self._stopping = False
        self._seconds = 0.0  # moving average of how long a generation holds a runner

    # lifecycle ------------------------------------------------------------------------------------
    def load(self) -> None:
        """Create the contexts now (the server does this before it listens)."""
        with self._load_lock:
            if self._free is not None:
                return
            runners = [self.predictor.runner()]
            try:
                for _ in range(self.parallel - 1):
                    runners.append(self.predictor.new_runner())
            except BaseException:
                for r in runners[1:]:
                    r.close()
                raise
            self._extra = runners[1:]
            with self._cond:
                self._free = runners

    def stop(self) -> None:
        """Refuse new work; waiters get a 503 now, running generations stop at their next token."""
        with self._cond:
            self._stopping = True
            self._cond.notify_all()

    @property
    def stopping(self) -> bool:
        return self._stopping

    def close(self) -> None:
        """Free the extra contexts. Call after every worker thread has returned."""
        self.stop()
        extra, self._extra = self._extra, []
        for r in extra:
            r.close()

    # admission ------------------------------------------------------------------------------------
    def reserve(self) -> None:
        """Take a place (running or queued) for one request, or raise :class:`Unavailable`."""
        with self._cond:
            if self._stopping:
                raise Unavailable("the server is shutting down", retry_after=1)
            if self._reserved >= self.parallel + self.max_queue:
                raise Unavailable(
                    f"the model is busy: {self._running} generation(s) running and {self._reserved - self._running} "
                    f"waiting (--max-queue {self.max_queue}); retry later",
                    retry_after=self._retry_after(),
                )
            self._reserved += 1

    def unreserve(self) -> None:
        with self._cond:
            self._reserved -= 1

    def _retry_after(self) -> int:
        """Seconds until a queued place is likely free: the queue ahead, at the average generation time."""
        ahead = (self._reserved - self.parallel + 1) / self.parallel
        return min(MAX_RETRY_AFTER, max(1, math.ceil(ahead * self._seconds)))

    @contextmanager
    def runner(self) -> Iterator[LlamaRunner]:
        """A free runner for the duration of the block (waits for one; 503 when the server stops)."""
        if self._free is None:
            self.load()
        with self._cond:
            while not self._stopping and not self._free:
                self._cond.wait()
            if self._stopping:
                raise Unavailable("the server is shutting down", retry_after=1)
            assert self._free is not None
            runner = self._free.pop()
            self._running += 1
        t0 = time.monotonic()
        try:
            yield runner
        finally:
            took = time.monotonic() - t0
            with self._cond:
                assert self._free is not None
                self._free.append(runner)
                self._running -= 1
                self._seconds = took if not self._seconds else 0.8 * self._seconds + 0.2 * took
                self._cond.notify()

    def stats(self) -> PoolStats:
        with self._cond:
            return PoolStats(self.parallel, self.max_queue, self._running, max(0, self._reserved - self._running))
