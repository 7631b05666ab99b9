"""A/B comparison of two eval records: rates, latency, and which cases changed verdict.

Cases are matched by their input (canonical JSON, so key order does not matter); an input that
appears several times is matched occurrence by occurrence.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass, field
from typing import Any

from kolmbuild.compare.records import EvalCase, EvalRecord
from kolmbuild.hashing import canonical_json


def _key(value: Any) -> bytes:
    try:
        return canonical_json(value)
    except (TypeError, ValueError):
        return repr(value).encode()


@dataclass(frozen=True)
class Change:
    input: Any
    expected: Any
    a_id: int
    b_id: int
    a_output: Any
    b_output: Any
    direction: str  # "fixed" (A failed, B passed) or "regressed"


@dataclass
class Comparison:
    a: EvalRecord
    b: EvalRecord
    matched: int = 0
    both_passed: int = 0
    both_failed: int = 0
    fixed: list[Change] = field(default_factory=list)
    regressed: list[Change] = field(default_factory=list)
    only_a: list[EvalCase] = field(default_factory=list)
    only_b: list[EvalCase] = field(default_factory=list)

    def metrics(self) -> list[tuple[str, float, float, float]]:
        """(metric, A, B, B - A) rows of the table."""
        sa, sb = self.a.summary, self.b.summary
        rows = [
            ("cases", sa.n, sb.n),
            ("passed", sa.passed, sb.passed),
            ("pass_rate", sa.pass_rate, sb.pass_rate),
            ("p50_ms", sa.p50_ms, sb.p50_ms),
            ("p95_ms", sa.p95_ms, sb.p95_ms),
        ]
        return [(m, a, b, b - a) for m, a, b in rows]

    def to_json(self) -> dict[str, Any]:
        def change(c: Change) -> dict[str, Any]:
            return {
                "input": c.input,
                "expected": c.expected,
                "a_id": c.a_id,
                "b_id": c.b_id,
                "a_output": c.a_output,
                "b_output": c.b_output,
            }

        return {
            "kind": "kolm-compare",
            "version": 1,
            "a": {"subject": self.a.subject, "examples": self.a.examples, **self.a.summary.model_dump()},
            "b": {"subject": self.b.subject, "examples": self.b.examples, **self.b.summary.model_dump()},
            "delta": {m: round(d, 6) for m, _, _, d in self.metrics()},
            "matched": self.matched,
            "both_passed": self.both_passed,
            "both_failed": self.both_failed,
            "fixed": [change(c) for c in self.fixed],
            "regressed": [change(c) for c in self.regressed],
            "only_a": [c.id for c in self.only_a],
            "only_b": [c.id for c in self.only_b],
        }


def compare_records(a: EvalRecord, b: EvalRecord) -> Comparison:
    out = Comparison(a, b)
    pending: dict[bytes, list[EvalCase]] = defaultdict(list)
    for case in b.cases:
        pending[_key(case.input)].append(case)
    for ca in a.cases:
        queue = pending.get(_key(ca.input))
        if not queue:
            out.only_a.append(ca)
            continue
        cb = queue.pop(0)
        out.matched += 1
        if ca.passed and cb.passed:
            out.both_passed += 1
        elif not ca.passed and not cb.passed:
            out.both_failed += 1
        else:
            ch = Change(
                ca.input,
                ca.expected,
                ca.id,
                cb.id,
                ca.output,
                cb.output,
                "fixed" if cb.passed else "regressed",
            )
            (out.fixed if cb.passed else out.regressed).append(ch)
    out.only_b = [c for queue in pending.values() for c in queue]
    out.only_b.sort(key=lambda c: c.id)
    return out
