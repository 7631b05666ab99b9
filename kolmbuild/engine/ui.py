"""What a build shows a person: one line per stage that ran, progress bars for long work."""

from __future__ import annotations

import threading
from typing import Any

from rich.console import Console
from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn, TimeRemainingColumn


class StageProgress:
    """The Progress a stage action receives: a rich bar for long work, plus log lines."""

    def __init__(self, ui: BuildUI, label: str) -> None:
        self.ui = ui
        self.label = label
        self._task: Any = None

    def start(self, description: str, total: float | None = None) -> None:
        self._task = self.ui.bar_start(f"{self.label}: {description}", total)

    def advance(self, amount: float = 1.0, **fields: Any) -> None:
        if self._task is not None:
            self.ui.bar_advance(self._task, amount, fields)

    def log(self, message: str) -> None:
        self.ui.note(f"{self.label}: {message}")

    def close(self) -> None:
        if self._task is not None:
            self.ui.bar_stop(self._task)
            self._task = None


class BuildUI:
    def __init__(self, console: Console | None = None, quiet: bool = False) -> None:
        self.console = console or Console(stderr=True, highlight=False)
        self.quiet = quiet
        self._lock = threading.Lock()
        self._progress: Progress | None = None
        self._active = 0

    def note(self, message: str) -> None:
        if not self.quiet:
            self.console.print(message, markup=False, soft_wrap=True)  # a log line is never re-wrapped

    def warn(self, message: str) -> None:
        """A warning: shown even when quiet (``--json`` keeps stdout for the record; this is stderr)."""
        self.console.print(f"kolmbuild: warning: {message}", markup=False, soft_wrap=True)

    def stage_done(self, target: str, stage: str, seconds: float, summary: str = "") -> None:
        extra = f"  {summary}" if summary else ""
        self.note(f"{target}: {stage:<10} ran in {seconds:.2f} s{extra}")

    def bar_start(self, description: str, total: float | None) -> Any:
        if self.quiet or not self.console.is_terminal:
            self.note(description)
            return None
        with self._lock:
            if self._progress is None:
                self._progress = Progress(
                    TextColumn("{task.description}"), BarColumn(), TextColumn("{task.completed:.0f}/{task.total}"),
                    TextColumn("{task.fields[info]}"), TimeElapsedColumn(), TimeRemainingColumn(),
                    console=self.console, transient=True,
                )
                self._progress.start()
            self._active += 1
            return self._progress.add_task(description, total=total, info="")

    def bar_advance(self, task: Any, amount: float, fields: dict[str, Any]) -> None:
        if task is None or self._progress is None:
            return
        info = " ".join(f"{k}={v:.4g}" if isinstance(v, float) else f"{k}={v}" for k, v in fields.items())
        self._progress.update(task, advance=amount, info=info)

    def bar_stop(self, task: Any) -> None:
        if task is None or self._progress is None:
            return
        with self._lock:
            self._progress.remove_task(task)
            self._active -= 1
            if self._active == 0:
                self._progress.stop()
                self._progress = None
