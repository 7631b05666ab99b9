"""Point executors: how a sweep's points are run — one after another, up to N at once, or on a Ray cluster.

An executor opens a :meth:`~PointExecutor.session` for a sweep (:class:`SweepJob`: the engine and the
composed point targets) and its runner gets the points and ``build``, the call that builds one point
in this process, returning one result per point, in point order, calling ``done`` as each finishes.
``build(point, where)`` is told where the point was built (:class:`Where`): here, or on another
machine whose results this one takes from the remote cache.

:class:`SerialExecutor` builds in turn; :class:`ThreadExecutor` (``-j N``) builds up to N points at
once on threads of this process, so points that wait on remote machines (a rented GPU, an SSH host)
wait together. Threads, not processes: every point shares the one engine, its cache lock, its store
and run records (whose writes are already serialized for ``-j`` stages), and its UI; a stage two
running points both need is built once (the engine holds a per-key lock). The Ray executor
(:mod:`kolmbuild.sweep.ray_executor`, ``--executor ray``) builds each point as a Ray task on a
worker, which pushes it to the remote cache; ``build`` then takes it from there.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Mapping, Sequence
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait
from contextlib import AbstractContextManager, nullcontext
from dataclasses import dataclass
from typing import Any, TypeVar

from pydantic import ValidationError

from kolmbuild.compute import signals
from kolmbuild.compute.signals import Interrupted, Stop, stop_scope
from kolmbuild.config.models import ExecutorSpec
from kolmbuild.errors import ConfigError, UserInputError
from kolmbuild.sweep.base import PointExecutor, PointRunner, SweepJob, Where, interrupted
from kolmbuild.sweep.points import SweepPoint

R = TypeVar("R")
ENV_RAY_ADDRESS = "RAY_ADDRESS"  # Ray's own variable for the cluster to join


class _InProcess:
    """Executors that build every point in this process: nothing to open, nothing to check."""

    kind: str
    workers: int

    def session(self, job: SweepJob) -> AbstractContextManager[PointRunner]:
        return nullcontext(self)  # type: ignore[arg-type]  # the subclasses are the runners

    def describe(self) -> dict[str, Any]:
        return {"kind": self.kind, "workers": self.workers}


@dataclass(frozen=True)
class SerialExecutor(_InProcess):
    kind: str = "serial"
    workers: int = 1
    stage_jobs: int = 1

    def run(self, points: Sequence[SweepPoint], build: Callable[[SweepPoint, Where], R],
            done: Callable[[R], None]) -> list[R]:
        here = Where.here(self.kind)
        results = []
        for p in points:
            r = build(p, here)
            done(r)
            results.append(r)
        return results


def _scoped(stop: Stop, build: Callable[[SweepPoint, Where], R], point: SweepPoint, where: Where) -> R:
    with stop_scope(stop):
        return build(point, where)


@dataclass(frozen=True)
class ThreadExecutor(_InProcess):
    """Up to ``workers`` points at once. Signals reach the main thread only, so it traps SIGINT and
    SIGTERM while points run; on one (or on any error) no further point starts and the running ones
    are told to stop (a :class:`~kolmbuild.compute.signals.Stop` their rentals' watchers poll): each
    tears down and releases what it rented, and the sweep waits for that before it exits."""

    workers: int
    kind: str = "threads"
    stage_jobs: int = 1

    def run(self, points: Sequence[SweepPoint], build: Callable[[SweepPoint, Where], R],
            done: Callable[[R], None]) -> list[R]:
        here = Where.here(self.kind)
        results: dict[int, R] = {}
        stop = Stop(what="sweep")
        pool = ThreadPoolExecutor(max_workers=self.workers, thread_name_prefix="kolm-point")
        pending: dict[Future[R], SweepPoint] = {}
        try:
            with signals.trap():
                pending.update({pool.submit(_scoped, stop, build, p, here): p for p in points})
                while pending:
                    finished, _ = wait(pending, return_when=FIRST_COMPLETED)
                    for fut in finished:
                        point = pending.pop(fut)
                        results[point.index] = fut.result()  # build records its own failures; this re-raises bugs
                        done(results[point.index])
        except BaseException as exc:
            told = interrupted(exc)
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


def executor_spec(declared: ExecutorSpec, *, kind: str | None = None, address: str | None = None,
                  environ: Mapping[str, str] | None = None) -> ExecutorSpec:
    """Where a sweep's points are built: ``--executor`` and ``--ray-address`` over the kolmfile's
    ``executor:`` block; the Ray address from the flag, else the kolmfile, else ``$RAY_ADDRESS``.
    ``--ray-address`` alone means ``--executor ray``."""
    env = os.environ if environ is None else environ
    if address is not None and kind == "local":
        raise ConfigError("--ray-address names a Ray cluster: it goes with --executor ray, not --executor local")
    fields = declared.model_dump()
    if kind is not None:
        fields["kind"] = kind
    if address is not None:
        fields.update(kind="ray", address=address)
        source = "--ray-address"
    elif fields["kind"] == "ray" and fields["address"] is None and env.get(ENV_RAY_ADDRESS):
        fields["address"] = env[ENV_RAY_ADDRESS]
        source = ENV_RAY_ADDRESS
    else:
        return _checked(fields, "executor")
    return _checked(fields, source)


def _checked(fields: dict[str, Any], source: str) -> ExecutorSpec:
    try:
        spec = ExecutorSpec.model_validate(fields)
    except ValidationError as exc:
        first = exc.errors()[0]
        raise ConfigError(f"{source}: {first['msg'].removeprefix('Value error, ')} (got {first['input']!r})") from None
    if spec.kind == "ray" and spec.address is None:
        raise ConfigError("the ray executor needs the address of a running Ray cluster",
                          hint="pass --ray-address HOST:PORT (as `ray start --head` prints it), set "
                               f"executor.address in the kolmfile, or {ENV_RAY_ADDRESS}")
    return spec


def executor_for(jobs: int, points: int, spec: ExecutorSpec | None = None) -> PointExecutor:
    """The executor of a sweep of ``points`` points run with ``-j jobs``: on Ray when ``spec`` says so
    (``-j`` is then each point's stage parallelism and CPU request); else ``jobs`` points at once on
    threads (never more threads than points); else one after another, each point's stages ``-j``."""
    if spec is not None and spec.kind == "ray":
        assert spec.address is not None  # executor_spec refuses a Ray executor without one
        try:  # the optional `ray` extra: only a Ray sweep loads it
            from kolmbuild.sweep.ray_executor import RayExecutor
        except ImportError as exc:
            raise UserInputError(f"the ray executor needs the ray package ({exc.name} is not installed)",
                                 hint="pip install 'kolmbuild[ray]' (the same Ray version as the cluster's)") from None
        return RayExecutor(spec.address, tuple(spec.excludes), stage_jobs=jobs)
    workers = min(jobs, points)
    return ThreadExecutor(workers) if workers > 1 else SerialExecutor(stage_jobs=jobs)
