"""Whether the train stage trains: ``task.train.enabled`` and, for ``auto``, the recipes' coverage."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

# "auto" skips training when recipes answer at least this share of held-out inputs.
AUTO_COVERAGE = 0.95


@dataclass(frozen=True)
class TrainDecision:
    train: bool
    reason: str


def _fraction(doc: Mapping[str, Any], key: str) -> float | None:
    value = doc.get(key)
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    return float(value)


def decide(enabled: str, decompose: Mapping[str, Any] | None, min_accuracy: float) -> TrainDecision:
    """``never`` skips, ``always`` trains; ``auto`` skips only when ``decompose.json`` reports the
    recipes covering >= 95% of held-out inputs (``coverage``) with ``accuracy`` (on the covered
    inputs) at or above the recipes' ``min_accuracy``; anything less, or no report, trains."""
    if enabled == "never":
        return TrainDecision(False, "task.train.enabled is never")
    if enabled == "always":
        return TrainDecision(True, "task.train.enabled is always")
    if decompose is None:
        return TrainDecision(True, "auto: no recipe report from decompose, so a model is needed")
    coverage, accuracy = _fraction(decompose, "coverage"), _fraction(decompose, "accuracy")
    if coverage is None:
        return TrainDecision(True, "auto: decompose.json reports no coverage, so a model is needed")
    shown = "-" if accuracy is None else f"{accuracy:.1%}"  # accuracy is null when no input was covered
    if coverage >= AUTO_COVERAGE and accuracy is not None and accuracy >= min_accuracy:
        return TrainDecision(
            False, f"auto: recipes cover {coverage:.1%} of held-out inputs at {shown} accuracy "
                   f"(>= {AUTO_COVERAGE:.0%} at >= {min_accuracy:.0%}): no model needed",
        )
    return TrainDecision(
        True, f"auto: recipes cover {coverage:.1%} of held-out inputs at {shown} accuracy "
              f"(need >= {AUTO_COVERAGE:.0%} at >= {min_accuracy:.0%}): training a model for the rest",
    )
