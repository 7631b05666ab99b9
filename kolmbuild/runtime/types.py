"""Small value types the runtime hands out."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Literal

Route = Literal["recipe", "model", "none"]


@dataclass(frozen=True)
class Prediction:
    """One answer: ``output`` (None when route is ``none``), the route taken, and its latency."""

    output: Any
    route: Route
    latency_ms: float

    def to_json(self) -> dict[str, Any]:
        return {"output": self.output, "route": self.route, "latency_ms": round(self.latency_ms, 3)}


@dataclass(frozen=True)
class Completion:
    """A finished model generation (raw text, before decoding to the task's output shape)."""

    text: str
    prompt_tokens: int
    completion_tokens: int
    finish_reason: Literal["stop", "length"]


@dataclass(frozen=True)
class Delta:
    """One streamed piece of a generation; ``finish_reason`` is set on the last one only."""

    text: str
    finish_reason: Literal["stop", "length"] | None = None
