"""How long work reports its progress: the :class:`Progress` protocol every library takes.

A neutral module at the bottom of the package graph: the engine passes a rich-backed one
(``kolmbuild.engine.ui.StageProgress``), the CLI passes the same for verbs outside a build, tests
and library callers pass :class:`NullProgress`. Recall, training, the teacher and evaluation take a
``Progress`` without depending on the engine.
"""

from __future__ import annotations

from typing import Any, Protocol


class Progress(Protocol):
    """Reports long work. The engine passes a rich-backed one; tests pass :class:`NullProgress`."""

    def start(self, description: str, total: float | None = None) -> None: ...

    def advance(self, amount: float = 1.0, **fields: Any) -> None: ...

    def log(self, message: str) -> None: ...


class NullProgress:
    """A :class:`Progress` that shows nothing."""

    def start(self, description: str, total: float | None = None) -> None:
        pass

    def advance(self, amount: float = 1.0, **fields: Any) -> None:
        pass

    def log(self, message: str) -> None:
        pass
