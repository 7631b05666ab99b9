"""What every point executor shares: where a point was built (:class:`Where`), what a sweep hands its
executor (:class:`SweepJob`), and the protocols (:class:`PointExecutor`, :class:`PointRunner`).
See :mod:`kolmbuild.sweep.executor` for the executors themselves."""

from __future__ import annotations

import signal
import socket
from collections.abc import Callable, Mapping, Sequence
from contextlib import AbstractContextManager
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Protocol, TypeVar

from kolmbuild.compute.signals import Interrupted
from kolmbuild.config.compose import ComposedTarget
from kolmbuild.errors import KolmError
from kolmbuild.sweep.points import SweepPoint

if TYPE_CHECKING:
    from kolmbuild.engine.build import Engine

R = TypeVar("R")


@dataclass(frozen=True)
class Where:
    """Where a point was built, as its summary row says (``executor``, ``worker``)."""

    executor: str
    host: str
    node_id: str | None = None
    elsewhere: bool = False  # built on another machine: this one only takes it from the remote cache
    ran: tuple[str, ...] = ()  # the stages that ran there
    duration_s: float = 0.0  # the build's wall time there
    error: KolmError | None = None  # the point could not be built there (refused, failed, lost)

    @classmethod
    def here(cls, executor: str) -> Where:
        return cls(executor, socket.gethostname())

    def worker(self) -> dict[str, Any]:
        return {"host": self.host, "node_id": self.node_id}


@dataclass(frozen=True)
class SweepJob:
    """What an executor may look at when a sweep starts: the engine (its project, remote cache,
    rules), each point's composed target (or why it could not be composed), and the options each
    point is built with."""

    engine: Engine
    points: Sequence[SweepPoint]
    targets: Mapping[int, ComposedTarget | KolmError]
    stage_jobs: int
    quiet: bool


class PointRunner(Protocol):
    def describe(self) -> dict[str, Any]:
        """The summary's ``executor`` block."""
        ...

    def run(self, points: Sequence[SweepPoint], build: Callable[[SweepPoint, Where], R],
            done: Callable[[R], None]) -> list[R]:
        """Build every point; results in point order; ``done(result)`` as each one finishes."""
        ...


class PointExecutor(Protocol):
    @property
    def kind(self) -> str:
        """``serial``, ``threads``, ``ray``: recorded in summary.json."""
        ...

    @property
    def workers(self) -> int:
        """How many points build at once in this process (on threads)."""
        ...

    @property
    def stage_jobs(self) -> int:
        """How many stages of one point run at once (``-j`` of each point's build)."""
        ...

    def session(self, job: SweepJob) -> AbstractContextManager[PointRunner]:
        """Ready to run the sweep's points (the Ray executor connects and checks its workers here,
        before the sweep writes anything); the runner is valid inside the ``with``."""
        ...


def interrupted(exc: BaseException) -> Interrupted:
    """The error a sweep stopped by ``exc`` (a signal, or anything else) exits with."""
    signum = exc.signum if isinstance(exc, Interrupted) else signal.SIGINT
    return Interrupted(signum, f"interrupted by {signal.Signals(signum).name}: the sweep was stopped; "
                               "the machines its points had rented were released")
