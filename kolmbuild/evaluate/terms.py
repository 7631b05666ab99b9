"""The K-score: K = 0.40·A + 0.15·S + 0.15·L + 0.15·C + 0.15·V, each term on [0, 1].

Each normalization is a small pure function, written down with worked examples in docs/k-score.md.
Terms are rounded to 4 decimals before they are combined, so K is reproducible to the digit.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

WEIGHTS: dict[str, float] = {"A": 0.40, "S": 0.15, "L": 0.15, "C": 0.15, "V": 0.15}
TERM_NAMES: dict[str, str] = {"A": "accuracy", "S": "size", "L": "latency", "C": "cost", "V": "coverage"}

SIZE_FREE_MB = 1.0  # an artifact up to 1 MB scores S = 1 (recipe packs, verifiers, small indexes)
DEFAULT_SIZE_CAP_MB = 4000.0  # S reaches 0 here unless the gate sets size_mb_max (a 7B model at 4 bits)
DEFAULT_LATENCY_BUDGET_MS = 1000.0  # the latency budget unless the gate sets p50_ms_max
DIGITS = 4


def _clamp(x: float) -> float:
    return min(1.0, max(0.0, x))


def accuracy(passed: int, n: int) -> float:
    """A: the verifier's pass rate on the held-out cases (an unanswered case fails)."""
    return passed / n if n else 0.0


def size_score(footprint_mb: float, cap_mb: float) -> float:
    """S: 1 up to ``SIZE_FREE_MB``, 0 at ``cap_mb`` and beyond, log-linear in between.

    Sizes span five orders of magnitude (a 20 KB recipe pack, a 100 MB small model, a 4 GB 7B
    model), so S falls with the logarithm of the size, not the size itself.
    """
    if footprint_mb <= SIZE_FREE_MB:
        return 1.0
    if cap_mb <= SIZE_FREE_MB or footprint_mb >= cap_mb:
        return 0.0
    return _clamp(1.0 - math.log(footprint_mb / SIZE_FREE_MB) / math.log(cap_mb / SIZE_FREE_MB))


def latency_score(p50_ms: float, budget_ms: float) -> float:
    """L: 1 - p50 / budget, clamped: instant scores 1, half the budget 0.5, the budget or more 0."""
    return _clamp(1.0 - p50_ms / budget_ms)


def cost_score(per_call_usd: float, teacher_per_call_usd: float) -> float:
    """C: the share of the teacher's per-call cost saved: 1 - ours / teacher's, clamped."""
    if per_call_usd <= 0:
        return 1.0
    if teacher_per_call_usd <= 0:
        return 0.0
    return _clamp(1.0 - per_call_usd / teacher_per_call_usd)


def coverage(answered_in_budget: int, n: int) -> float:
    """V: share of cases answered (by a recipe or the model) within the latency budget."""
    return answered_in_budget / n if n else 0.0


@dataclass(frozen=True)
class Terms:
    A: float
    S: float
    L: float
    C: float
    V: float

    @classmethod
    def rounded(cls, *, A: float, S: float, L: float, C: float, V: float) -> Terms:
        return cls(*(round(_clamp(x), DIGITS) for x in (A, S, L, C, V)))

    def as_dict(self) -> dict[str, float]:
        return {"A": self.A, "S": self.S, "L": self.L, "C": self.C, "V": self.V}

    @property
    def K(self) -> float:
        return round(sum(WEIGHTS[k] * v for k, v in self.as_dict().items()), DIGITS)

    def lost(self) -> dict[str, float]:
        """Points of K each term gives away (weight × (1 - term))."""
        return {k: round(WEIGHTS[k] * (1.0 - v), DIGITS) for k, v in self.as_dict().items()}

    def to_json(self) -> dict[str, Any]:
        return self.as_dict()
