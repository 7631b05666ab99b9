"""SIGINT and SIGTERM during a rental: unwind through ``finally`` (release), and don't interrupt release.

``trap()`` turns SIGTERM into :class:`Interrupted` (SIGINT already raises KeyboardInterrupt) so the
rent flow's ``finally`` runs on both. ``shield()`` wraps teardown: signals that arrive while an
instance is being released are remembered, not raised, so a second Ctrl+C cannot leak a machine.
Both only touch handlers in the main thread (Python delivers signals there).
"""

from __future__ import annotations

import signal
import threading
from collections.abc import Iterator
from contextlib import contextmanager
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
    unwinds through its ``finally`` (release) like any other failure. None: no limit."""
    if seconds is None or not _main_thread():
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
