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

import signal
from collections.abc import Callable, Sequence
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait
from dataclasses import dataclass
from typing import Protocol, TypeVar

from kolmbuild.compute import signals
from kolmbuild.compute.signals import Interrupted, Stop, stop_scope
from kolmbuild.sweep.points import SweepPoint

R = TypeVar("R")


class PointExecutor(Protocol):
    @property
    def kind(self) -> str:
        """``serial``, ``threads`` (later ``ray``): recorded in summary.json."""
        ...

    @property
    def workers(self) -> int:
        """How many points may build at once."""
        ...

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


def _scoped(stop: Stop, build: Callable[[SweepPoint], R], point: SweepPoint) -> R:
    with stop_scope(stop):
        return build(point)


@dataclass(frozen=True)
class ThreadExecutor:
    """Up to ``workers`` points at once. Signals reach the main thread only, so it traps SIGINT and
    SIGTERM while points run; on one (or on any error) no further point starts and the running ones
    are told to stop (a :class:`~kolmbuild.compute.signals.Stop` their rentals' watchers poll): each
    tears down and releases what it rented, and the sweep waits for that before it exits."""

    workers: int
    kind: str = "threads"

    def run(self, points: Sequence[SweepPoint], build: Callable[[SweepPoint], R],
            done: Callable[[R], None]) -> list[R]:
        results: dict[int, R] = {}
        stop = Stop(what="sweep")
        pool = ThreadPoolExecutor(max_workers=self.workers, thread_name_prefix="kolm-point")
        pending: dict[Future[R], SweepPoint] = {}
        try:
            with signals.trap():
                pending.update({pool.submit(_scoped, stop, build, p): p for p in points})
                while pending:
                    finished, _ = wait(pending, return_when=FIRST_COMPLETED)
                    for fut in finished:
                        point = pending.pop(fut)
                        results[point.index] = fut.result()  # build records its own failures; this re-raises bugs
                        done(results[point.index])
        except BaseException as exc:
            signum = exc.signum if isinstance(exc, Interrupted) else signal.SIGINT
            told = Interrupted(signum, f"interrupted by {signal.Signals(signum).name}: the sweep was stopped; "
                                       "the machines its points had rented were released")
            stop.set(told)
            running = [fut for fut in pending if not fut.cancel()]  # no further point starts
            for fut in running:  # the points already running stop, release, and are recorded as failed
                try:
                    done(fut.result())
                except Exception:  # noqa: BLE001  (the interrupt is what the caller must see)
                    pass
            if isinstance(exc, (Interrupted, KeyboardInterrupt)):
                raise told from None
            raise
        finally:
            pool.shutdown(wait=True, cancel_futures=True)
        return [results[p.index] for p in points]


def executor_for(jobs: int, points: int) -> PointExecutor:
    """``-j N`` in a sweep: N points at once (never more threads than points)."""
    workers = min(jobs, points)
    return ThreadExecutor(workers) if workers > 1 else SerialExecutor()
