"""Run a predictor over held-out cases and let the verifier judge each answer."""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, Protocol

from kolmbuild.progress import NullProgress, Progress


class PredictionLike(Protocol):
    @property
    def output(self) -> Any: ...

    @property
    def route(self) -> str: ...

    @property
    def latency_ms(self) -> float: ...


Predict = Callable[[Any], PredictionLike]
Check = Callable[[Any, Any, Any], bool]  # (input, output, reference) -> passed


@dataclass(frozen=True)
class Case:
    id: int
    input: Any
    expected: Any


@dataclass(frozen=True)
class CaseResult:
    id: int
    input: Any
    expected: Any
    output: Any
    route: str  # "recipe" | "model" | "none" | "error"
    passed: bool
    measured_ms: float  # wall clock: shown to people, never stored in an artifact
    error: str | None = None

    @property
    def answered(self) -> bool:
        return self.route in ("recipe", "model") and self.output is not None


def cases_from_rows(rows: Sequence[dict[str, Any]]) -> list[Case]:
    """Held-out rows ``{"id","input","output"}`` (ids default to the row's position)."""
    return [Case(int(r.get("id", i)), r["input"], r["output"]) for i, r in enumerate(rows)]


def _verdict(check: Check, case: Case, output: Any) -> tuple[bool, str | None]:
    try:
        return bool(check(case.input, output, case.expected)), None
    except Exception as exc:  # a user-supplied verifier may raise: that case fails, and says why
        return False, f"verifier raised {type(exc).__name__}: {exc}"


def run_case(predict: Predict, check: Check, case: Case) -> CaseResult:
    """One case: predict (timed), then verify against the reference. Errors fail the case."""
    t0 = time.perf_counter()
    try:
        pred = predict(case.input)
    except Exception as exc:  # the runtime failing on one input fails that case, not the stage
        ms = (time.perf_counter() - t0) * 1000.0
        return CaseResult(case.id, case.input, case.expected, None, "error", False, ms, f"{type(exc).__name__}: {exc}")
    wall = (time.perf_counter() - t0) * 1000.0
    measured = float(pred.latency_ms) if getattr(pred, "latency_ms", None) is not None else wall
    route = str(pred.route)
    if route not in ("recipe", "model") or pred.output is None:
        return CaseResult(case.id, case.input, case.expected, pred.output, route, False, measured)
    passed, error = _verdict(check, case, pred.output)
    return CaseResult(case.id, case.input, case.expected, pred.output, route, passed, measured, error)


def run_cases(
    predict: Predict, check: Check, cases: Sequence[Case], progress: Progress | None = None
) -> list[CaseResult]:
    progress = progress or NullProgress()
    progress.start(f"scoring {len(cases)} cases", total=len(cases))
    results: list[CaseResult] = []
    passed = 0
    for case in cases:
        r = run_case(predict, check, case)
        results.append(r)
        passed += r.passed
        progress.advance(1, passed=passed)
    return results
