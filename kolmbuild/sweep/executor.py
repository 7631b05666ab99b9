"""Point executors: how a sweep's points are run — one after another, or up to N at once.

An executor gets the points and ``build``, the call that builds one point in this process, and
returns one result per point, in point order, calling ``done`` as each finishes. The sweep does not
care how: :class:`SerialExecutor` builds in turn; :class:`ThreadExecutor` (``-j N``) builds up to N
points at once on threads of this process, so points that wait on remote machines (a rented GPU, an
SSH host) wait together. Threads, not processes: every point shares the one engine, its cache lock,
its store and run records (whose writes are already serialized for ``-j`` stages), and its UI; a
stage two running points both need is built once (the engine holds a per-key lock). An executor that
runs points elsewhere (a Ray cluster) implements the same ``run``, building each point with a worker-
side call instead of ``build``, and returns the same results.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait
from dataclasses import dataclass
from typing import Protocol, TypeVar

from kolmbuild.sweep.points import SweepPoint

R = TypeVar("R")


class PointExecutor(Protocol):
    kind: str
    workers: int

    def run(self, points: Sequence[SweepPoint], build: Callable[[SweepPoint], R],
            done: Callable[[R], None]) -> list[R]:
        """Build every point; results in point order; ``done(result)`` as each one finishes."""
        ...


@dataclass(frozen=True)
class SerialExecutor:
    kind: str = "serial"
    workers: int = 1

    def run(self, points: Sequence[SweepPoint], build: Callable[[SweepPoint], R],
            done: Callable[[R], None]) -> list[R]:
        results = []
        for p in points:
            r = build(p)
            done(r)
            results.append(r)
        return results


@dataclass(frozen=True)
class ThreadExecutor:
    """Up to ``workers`` points at once. On an interrupt (Ctrl+C) no further point starts and the
    running ones are waited for: each releases what it rented in its own ``finally``."""

    workers: int
    kind: str = "threads"

    def run(self, points: Sequence[SweepPoint], build: Callable[[SweepPoint], R],
            done: Callable[[R], None]) -> list[R]:
        results: dict[int, R] = {}
        pool = ThreadPoolExecutor(max_workers=self.workers, thread_name_prefix="kolm-point")
        try:
            pending: dict[Future[R], SweepPoint] = {pool.submit(build, p): p for p in points}
            while pending:
                finished, _ = wait(pending, return_when=FIRST_COMPLETED)
                for fut in finished:
                    point = pending.pop(fut)
                    results[point.index] = fut.result()  # build records its own failures; this re-raises bugs
                    done(results[point.index])
        finally:
            pool.shutdown(wait=True, cancel_futures=True)
        return [results[p.index] for p in points]


def executor_for(jobs: int, points: int) -> PointExecutor:
    """``-j N`` in a sweep: N points at once (never more threads than points)."""
    workers = min(jobs, points)
    return ThreadExecutor(workers) if workers > 1 else SerialExecutor()
