"""The build UI while points run at once: each line says which point it belongs to.

Several points build on threads of one process and share one console; a line such as
``redact: train ran in 3.2 s`` would not say which point's train it was. While a point builds, its
thread's lines (and progress bar titles) start with ``[NN]``, the point's number in the sweep.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from kolmbuild.engine.ui import BuildUI


class PointLabels(BuildUI):
    """A BuildUI on ``inner``'s console that prefixes each line with the current thread's point label;
    progress bars stay ``inner``'s (one live display per console)."""

    def __init__(self, inner: BuildUI) -> None:
        super().__init__(inner.console, inner.quiet)
        self.inner = inner
        self._local = threading.local()

    @contextmanager
    def labelled(self, label: str) -> Iterator[None]:
        self._local.label = label
        try:
            yield
        finally:
            self._local.label = None

    def _prefixed(self, text: str) -> str:
        label = getattr(self._local, "label", None)
        return f"[{label}] {text}" if label else text

    def note(self, message: str) -> None:
        super().note(self._prefixed(message))

    def bar_start(self, description: str, total: float | None) -> Any:
        return self.inner.bar_start(self._prefixed(description), total)

    def bar_advance(self, task: Any, amount: float, fields: dict[str, Any]) -> None:
        self.inner.bar_advance(task, amount, fields)

    def bar_stop(self, task: Any) -> None:
        self.inner.bar_stop(task)
