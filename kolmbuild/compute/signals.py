"""SIGINT and SIGTERM during a rental: unwind through ``finally`` (release), and don't interrupt release.

``trap()`` turns SIGTERM into :class:`Interrupted` (SIGINT already raises KeyboardInterrupt) so the
rent flow's ``finally`` runs on both. ``shield()`` wraps teardown: signals that arrive while an
instance is being released are remembered, not raised, so a second Ctrl+C cannot leak a machine.
Both only touch handlers in the main thread (Python delivers signals there).

A rental on another thread (a sweep's point under ``-j``) gets no signal and no SIGALRM. It runs in a
:class:`Stop` scope instead: the sweep sets its Stop when the main thread is interrupted, and
:func:`deadline` gives the run a Stop that also fires at the wall-clock limit. The adapter's watcher
(the thread that already polls the provider during a run) checks it and tears the run down, so the
release happens as for any other failure.
"""

from __future__ import annotations

import signal
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from types import FrameType
from typing import Any

from kolmbuild.errors import ComputeError, KolmError


class Interrupted(KolmError):  # noqa: N818 — named for what happened, like KeyboardInterrupt
    """A signal (SIGINT, SIGTERM) stopped a rental; ``finally`` blocks released what was provisioned.

    The one error for "interrupted": raised by :func:`trap`'s handler and re-raised by the rent flow
    with the rental named once it is released. Exit status 128 + the signal number."""

    def __init__(self, signum: int, message: str | None = None) -> None:
        super().__init__(message or f"interrupted by {signal.Signals(signum).name}")
        self.signum = signum
        self.exit_code = 128 + signum


class WallClockExceeded(ComputeError):
    """A paid run reached its wall-clock limit (what its budget buys) and was torn down (exit 1)."""


def _main_thread() -> bool:
    return threading.current_thread() is threading.main_thread()


class Stop:
    """A request to stop the rentals running in its scope on a worker thread: set by the caller
    (:meth:`set`, e.g. the sweep on Ctrl+C), by a parent Stop, or by a deadline. :meth:`error` is
    the error a run should stop with (None while it may go on)."""

    def __init__(self, parent: Stop | None = None, limit_s: float | None = None, what: str = "") -> None:
        self.parent, self.limit_s, self.what = parent, limit_s, what
        self.deadline_at = None if limit_s is None else time.monotonic() + limit_s
        self._error: KolmError | None = None
        self._lock = threading.Lock()

    def set(self, error: KolmError) -> None:
        with self._lock:
            self._error = self._error or error

    def error(self) -> KolmError | None:
        with self._lock:
            if self._error is not None:
                return self._error
        if self.parent is not None and (err := self.parent.error()) is not None:
            return err
        if self.deadline_at is not None and time.monotonic() >= self.deadline_at:
            return WallClockExceeded(
                f"{self.what}: stopped at its wall-clock limit of {self.limit_s:.0f} s (what the budget buys at "
                "the backend's rate); the machine was released", hint="raise the budget, or check why the job hung")
        return None


_STOP: ContextVar[Stop | None] = ContextVar("kolmbuild_stop", default=None)


def current_stop() -> Stop | None:
    """The Stop of the rental running in this context (None on the main thread outside a sweep)."""
    return _STOP.get()


@contextmanager
def stop_scope(stop: Stop) -> Iterator[Stop]:
    token = _STOP.set(stop)
    try:
        yield stop
    finally:
        _STOP.reset(token)


def check_stop(stop: Stop | None) -> None:
    """Raise the Stop's error, if it has one."""
    err = stop.error() if stop is not None else None
    if err is not None:
        raise err


@contextmanager
def trap() -> Iterator[None]:
    if not _main_thread():
        yield
        return

    def raise_interrupted(signum: int, frame: FrameType | None) -> None:
        raise Interrupted(signum)

    old = {s: signal.getsignal(s) for s in (signal.SIGINT, signal.SIGTERM)}
    signal.signal(signal.SIGTERM, raise_interrupted)
    signal.signal(signal.SIGINT, raise_interrupted)
    try:
        yield
    finally:
        for s, h in old.items():
            signal.signal(s, h)


@contextmanager
def shield(on_signal: Any = None) -> Iterator[list[int]]:
    """Defer SIGINT/SIGTERM for the block; yields the list of signals that arrived meanwhile.

    When the block ends normally and a signal arrived, it is raised then (as :class:`Interrupted`):
    the user's Ctrl+C still stops the run, only after the release finished.
    """
    received: list[int] = []
    if not _main_thread():
        yield received
        return

    def remember(signum: int, frame: FrameType | None) -> None:
        received.append(signum)
        if on_signal is not None:
            on_signal(signum)

    old = {s: signal.getsignal(s) for s in (signal.SIGINT, signal.SIGTERM, signal.SIGALRM)}
    for s in old:
        signal.signal(s, remember)
    try:
        yield received
    finally:
        for s, h in old.items():
            signal.signal(s, h)
    if signal.SIGALRM in received:
        raise WallClockExceeded("the run reached its wall-clock limit during release; released")
    if received:
        raise Interrupted(received[0])


@contextmanager
def deadline(seconds: float | None, what: str) -> Iterator[None]:
    """Raise :class:`WallClockExceeded` in the main thread after ``seconds`` (SIGALRM), so the run
    unwinds through its ``finally`` (release) like any other failure. None: no limit. On another
    thread the run gets a :class:`Stop` that fires then (its watcher tears it down)."""
    if seconds is None:
        yield
        return
    if not _main_thread():
        with stop_scope(Stop(current_stop(), seconds, what)):
            yield
        return

    def fire(signum: int, frame: FrameType | None) -> None:
        raise WallClockExceeded(f"{what}: stopped at its wall-clock limit of {seconds:.0f} s "
                                "(what the budget buys at the backend's rate); the machine was released",
                                hint="raise the budget, or check why the job hung")

    old = signal.signal(signal.SIGALRM, fire)
    signal.setitimer(signal.ITIMER_REAL, max(seconds, 0.001))
    try:
        yield
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, old)
