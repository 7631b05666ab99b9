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


class Interrupted(BaseException):  # noqa: N818 — like KeyboardInterrupt, not an Exception
    """A signal asked the rental to stop; ``finally`` blocks release what was provisioned."""

    def __init__(self, signum: int) -> None:
        super().__init__(signal.Signals(signum).name)
        self.signum = signum

    @property
    def exit_code(self) -> int:
        return 128 + self.signum


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

    old = {s: signal.getsignal(s) for s in (signal.SIGINT, signal.SIGTERM)}
    for s in old:
        signal.signal(s, remember)
    try:
        yield received
    finally:
        for s, h in old.items():
            signal.signal(s, h)
    if received:
        raise Interrupted(received[0])
