"""Combine judged cases, sizes and the reference-machine model into a K-score and a gate verdict.

:func:`score` is a pure function of its inputs (no clocks): the evaluate stage writes its
:meth:`KScore.to_json` as eval.json and its :meth:`KScore.metrics` into the receipt.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from kolmbuild.compare.records import percentile
from kolmbuild.config.models import GatesSpec
from kolmbuild.evaluate.cases import CaseResult
from kolmbuild.evaluate.estimate import MODEL_ID, ModelProfile, TeacherPrice, call_ms, local_call_usd
from kolmbuild.evaluate.gate import Shortfall, check_gate
from kolmbuild.evaluate.terms import (
    DEFAULT_LATENCY_BUDGET_MS,
    DEFAULT_SIZE_CAP_MB,
    WEIGHTS,
    Terms,
    accuracy,
    cost_score,
    coverage,
    latency_score,
    size_score,
)

KIND = "kolm-kscore"
VERSION = 1
MAX_LISTED_FAILURES = 50
MB = 1_000_000


@dataclass(frozen=True)
class SizeInfo:
    """Bytes of each component that will ship, plus a base model the artifact needs but does not
    carry (``external_bytes``): the footprint a user must deploy."""

    components: Mapping[str, int] = field(default_factory=dict)
    external_bytes: int = 0

    @property
    def shipped_bytes(self) -> int:
        return sum(self.components.values())

    @property
    def footprint_mb(self) -> float:
        return (self.shipped_bytes + self.external_bytes) / MB


@dataclass(frozen=True)
class KScore:
    terms: Terms
    gates: GatesSpec
    shortfalls: tuple[Shortfall, ...]
    n: int
    passed: int
    answered_in_budget: int
    by_route: Mapping[str, Mapping[str, int]]
    failures: tuple[Mapping[str, Any], ...]
    p50_ms: float
    p95_ms: float
    budget_ms: float
    per_call_usd: float
    teacher: TeacherPrice
    teacher_per_call_usd: float
    size: SizeInfo
    cap_mb: float

    @property
    def K(self) -> float:
        return self.terms.K

    @property
    def ok(self) -> bool:
        return not self.shortfalls

    def line(self) -> str:
        t = self.terms
        return (
            f"K {self.K:.4f} (A {t.A:.3f} S {t.S:.3f} L {t.L:.3f} C {t.C:.3f} V {t.V:.3f}) "
            f"{self.passed}/{self.n} passed, {'gate passed' if self.ok else 'GATE FAILED'}"
        )

    def to_json(self) -> dict[str, Any]:
        """eval.json: deterministic (estimated latencies, no clocks, no paths)."""
        g = self.gates
        return {
            "kind": KIND,
            "version": VERSION,
            "K": self.K,
            "terms": self.terms.to_json(),
            "weights": dict(WEIGHTS),
            "gate": {"K_min": g.K_min, "p50_ms_max": g.p50_ms_max, "size_mb_max": g.size_mb_max},
            "passed": self.ok,
            "shortfalls": [s.to_json() for s in self.shortfalls],
            "cases": {
                "n": self.n,
                "passed": self.passed,
                "failed": self.n - self.passed,
                "pass_rate": round(self.passed / self.n, 6) if self.n else 0.0,
                "by_route": {k: dict(v) for k, v in sorted(self.by_route.items())},
                "failures": [dict(f) for f in self.failures],
            },
            "latency": {
                "model": MODEL_ID,
                "p50_ms": self.p50_ms,
                "p95_ms": self.p95_ms,
                "budget_ms": self.budget_ms,
                "budget_from": "gate" if g.p50_ms_max is not None else "default",
            },
            "coverage": {"answered_in_budget": self.answered_in_budget, "share": self.terms.V},
            "cost": {
                "per_call_usd": self.per_call_usd,
                "teacher_per_call_usd": self.teacher_per_call_usd,
                "teacher_price_from": self.teacher.source,
                "teacher_price_per_mtok": {"in": self.teacher.price_in, "out": self.teacher.price_out},
            },
            "size": {
                "components": dict(sorted(self.size.components.items())),
                "shipped_bytes": self.size.shipped_bytes,
                "external_bytes": self.size.external_bytes,
                "footprint_mb": round(self.size.footprint_mb, 6),
                "cap_mb": self.cap_mb,
                "cap_from": "gate" if g.size_mb_max is not None else "default",
            },
        }

    def metrics(self) -> dict[str, Any]:
        """The receipt's metrics (the manifest carries them): compact and deterministic."""
        return {
            "K": self.K,
            "terms": self.terms.to_json(),
            "passed": self.ok,
            "cases": self.n,
            "pass_rate": round(self.passed / self.n, 6) if self.n else 0.0,
            "p50_ms": self.p50_ms,
            "p95_ms": self.p95_ms,
            "latency_model": MODEL_ID,
            "coverage": self.terms.V,
            "size_bytes": self.size.shipped_bytes,
            "footprint_mb": round(self.size.footprint_mb, 6),
            "summary": self.line(),
        }


def _failure(r: CaseResult) -> dict[str, Any]:
    """A failing case as eval.json lists it. Only the error's kind: a message may carry addresses
    or timings, and eval.json must be a function of the inputs (the full text goes to the log)."""
    out: dict[str, Any] = {"id": r.id, "route": r.route}
    if r.error:
        out["error"] = r.error.split(":", 1)[0]
    return out


def _mean(xs: Sequence[float]) -> float:
    return sum(xs) / len(xs) if xs else 0.0


def score(
    results: Sequence[CaseResult],
    *,
    size: SizeInfo,
    model: ModelProfile,
    teacher: TeacherPrice,
    gates: GatesSpec,
) -> KScore:
    """The K-score of judged ``results``; latency and cost come from the reference-machine model."""
    n = len(results)
    budget = gates.p50_ms_max if gates.p50_ms_max is not None else DEFAULT_LATENCY_BUDGET_MS
    cap = gates.size_mb_max if gates.size_mb_max is not None else DEFAULT_SIZE_CAP_MB
    est = [call_ms(r.route, r.input, r.output, model) for r in results]
    p50, p95 = round(percentile(est, 50), 4), round(percentile(est, 95), 4)
    passed = sum(1 for r in results if r.passed)
    in_budget = sum(1 for r, ms in zip(results, est, strict=True) if r.answered and ms <= budget)
    per_call = _mean([local_call_usd(ms) for ms in est])
    teacher_call = _mean([teacher.call_usd(r.input, r.expected) for r in results])
    by_route: dict[str, dict[str, int]] = {}
    for r in results:
        slot = by_route.setdefault(r.route, {"n": 0, "passed": 0})
        slot["n"] += 1
        slot["passed"] += int(r.passed)
    terms = Terms.rounded(
        A=accuracy(passed, n),
        S=size_score(size.footprint_mb, cap),
        L=latency_score(p50, budget),
        C=cost_score(per_call, teacher_call),
        V=coverage(in_budget, n),
    )
    shortfalls = check_gate(terms, p50_ms=p50, footprint_mb=size.footprint_mb, gates=gates)
    failures = tuple(_failure(r) for r in results if not r.passed)[:MAX_LISTED_FAILURES]
    return KScore(
        terms=terms, gates=gates, shortfalls=shortfalls, n=n, passed=passed, answered_in_budget=in_budget,
        by_route=by_route, failures=failures, p50_ms=p50, p95_ms=p95, budget_ms=budget,
        per_call_usd=float(f"{per_call:.6g}"), teacher=teacher, teacher_per_call_usd=float(f"{teacher_call:.6g}"),
        size=size, cap_mb=cap,
    )  # fmt: skip
