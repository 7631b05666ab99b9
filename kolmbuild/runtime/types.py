"""Small value types the runtime hands out."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Literal, NamedTuple

Route = Literal["recipe", "model", "none"]
FinishReason = Literal["stop", "stop_sequence", "length"]  # stop: end-of-generation token


class Prediction(NamedTuple):
    """One answer: ``output`` (None when route is ``none``), the route taken, and its latency.

    A NamedTuple (immutable, like a frozen dataclass) because recipe answers take about a
    microsecond and a frozen dataclass's ``__init__`` would double that."""

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
    finish_reason: FinishReason


@dataclass(frozen=True)
class Delta:
    """One generated token's released text (may be "" while a possible stop string is held back);
    ``finish_reason`` is set on the last one only, which may carry no token (``token_id`` -1)."""

    text: str
    finish_reason: FinishReason | None = None
    token_id: int = -1
    logprob: float | None = None
