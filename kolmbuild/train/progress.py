"""Training progress: steps and loss on the stage's bar, and lines when no terminal shows one.

The engine's bar (rich) shows steps done of the total, the loss passed with each advance, the
elapsed time and an estimate of the time left. When stderr is not a terminal (CI logs, a pipe,
a remote machine) the bar is not drawn, so every ``every`` steps (and at the last) a line says
the same: ``step 40/200 loss 1.2345 elapsed 0:01:12 eta 0:04:48``.
"""

from __future__ import annotations

import math
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field

from kolmbuild.engine.stage import Progress

LINES_PER_RUN = 20  # at most this many lines (plus the last step's) in a run


def wants_lines() -> bool:
    """Whether to write step lines: stderr is not a terminal (so no bar is drawn there)."""
    return not sys.stderr.isatty()


def _clock(seconds: float) -> str:
    s = max(0, int(round(seconds)))
    return f"{s // 3600}:{s % 3600 // 60:02d}:{s % 60:02d}"


@dataclass
class StepProgress:
    """Reports a run of ``total`` steps through ``progress``; ``lines`` adds a line per ``every`` steps."""

    progress: Progress
    total: int
    lines: bool = False
    clock: Callable[[], float] = time.monotonic
    every: int = field(init=False)
    _t0: float = field(init=False, default=0.0)
    _first: int = field(init=False, default=0)

    def __post_init__(self) -> None:
        self.every = max(1, math.ceil(self.total / LINES_PER_RUN))

    def start(self, description: str, done: int = 0, loss: float | None = None) -> None:
        """Begin (``done`` steps already made by an interrupted run that resumes)."""
        self.progress.start(description, total=self.total)
        self._t0, self._first = self.clock(), done
        if done:
            self.progress.log(f"resuming from the checkpoint at step {done}")
            self.progress.advance(done, loss=loss)

    def step(self, done: int, loss: float) -> None:
        self.progress.advance(1, loss=loss)
        if self.lines and (done % self.every == 0 or done == self.total):
            elapsed = self.clock() - self._t0
            made = done - self._first
            eta = elapsed / made * (self.total - done) if made else 0.0
            self.progress.log(f"step {done}/{self.total} loss {loss:.4f} elapsed {_clock(elapsed)} eta {_clock(eta)}")
