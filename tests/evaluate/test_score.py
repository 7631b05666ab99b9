"""Judging cases and scoring them: K, the gate, and which term fell short."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import pytest

from kolmbuild.config.models import GatesSpec
from kolmbuild.errors import GateFailed
from kolmbuild.evaluate import (
    Case,
    ModelProfile,
    SizeInfo,
    cases_from_rows,
    gate_error,
    run_cases,
    score,
    teacher_price,
)
from kolmbuild.evaluate.estimate import RECIPE_MS


@dataclass(frozen=True)
class Pred:
    output: Any
    route: str
    latency_ms: float = 0.5


def redact(text: str) -> str:
    return text.replace("555-1234", "[PHONE]")


ROWS = [{"id": i, "input": f"call {i} at 555-1234", "output": f"call {i} at [PHONE]"} for i in range(10)]


def exact(inp: Any, out: Any, ref: Any) -> bool:
    return out == ref


class Recorder:
    def __init__(self) -> None:
        self.events: list[tuple[str, Any]] = []

    def start(self, description: str, total: float | None = None) -> None:
        self.events.append(("start", total))

    def advance(self, amount: float = 1.0, **fields: Any) -> None:
        self.events.append(("advance", fields.get("passed")))

    def log(self, message: str) -> None:
        self.events.append(("log", message))


def test_recipe_only_artifact_scores_full_marks_on_S_L_C() -> None:
    prog = Recorder()
    results = run_cases(lambda x: Pred(redact(x), "recipe"), exact, cases_from_rows(ROWS), prog)
    assert [r.passed for r in results] == [True] * 10
    assert prog.events[0] == ("start", 10) and prog.events[-1] == ("advance", 10)
    ks = score(results, size=SizeInfo({"recipes": 4000, "verifier": 900}), model=ModelProfile(),
               teacher=teacher_price(None, None), gates=GatesSpec())  # fmt: skip
    assert ks.terms.as_dict() == {"A": 1.0, "S": 1.0, "L": 1.0, "C": 1.0, "V": 1.0}
    assert ks.K == 1.0 and ks.ok and ks.shortfalls == ()
    assert ks.p50_ms == RECIPE_MS
    doc = ks.to_json()
    assert doc["passed"] is True and doc["cases"]["by_route"] == {"recipe": {"n": 10, "passed": 10}}
    assert doc["size"]["shipped_bytes"] == 4900 and doc["latency"]["budget_from"] == "default"
    assert ks.metrics()["K"] == 1.0 and "measured" not in str(ks.metrics())


def test_wrong_and_unanswered_cases_lower_A_and_V() -> None:
    def predict(x: str) -> Pred:
        i = int(x.split()[1])
        if i < 2:
            return Pred(None, "none")  # no recipe covers it
        if i < 4:
            return Pred("wrong", "recipe")
        return Pred(redact(x), "recipe")

    results = run_cases(predict, exact, cases_from_rows(ROWS))
    ks = score(results, size=SizeInfo({"recipes": 100}), model=ModelProfile(), teacher=teacher_price(None, None),
               gates=GatesSpec())  # fmt: skip
    assert ks.passed == 6 and ks.terms.A == 0.6 and ks.terms.V == 0.8
    assert ks.K == pytest.approx(0.4 * 0.6 + 0.15 * 3 + 0.15 * 0.8)
    assert ks.ok  # 0.81 >= 0.70
    assert ks.to_json()["cases"]["failures"] == [
        {"id": 0, "route": "none"}, {"id": 1, "route": "none"}, {"id": 2, "route": "recipe"}, {"id": 3, "route": "recipe"}
    ]  # fmt: skip
    strict = score(results, size=SizeInfo({"recipes": 100}), model=ModelProfile(), teacher=teacher_price(None, None),
                   gates=GatesSpec(K_min=0.9))  # fmt: skip
    assert not strict.ok
    assert [s.key for s in strict.shortfalls] == ["K_min", "A", "V"]  # A costs 0.24 of K, V 0.03


def test_errors_fail_their_case_and_say_why() -> None:
    def predict(x: str) -> Pred:
        if x.startswith("call 3 "):
            raise RuntimeError("llama exploded")
        return Pred(redact(x), "recipe")

    def check(inp: Any, out: Any, ref: Any) -> bool:
        if inp.startswith("call 5 "):
            raise ValueError("bad verifier")
        return out == ref

    results = run_cases(predict, check, cases_from_rows(ROWS))
    bad = {r.id: r for r in results if not r.passed}
    assert set(bad) == {3, 5}
    assert bad[3].route == "error" and "llama exploded" in (bad[3].error or "")
    assert bad[5].route == "recipe" and "ValueError: bad verifier" in (bad[5].error or "")
    assert not bad[3].answered and bad[5].answered
    ks = score(results, size=SizeInfo(), model=ModelProfile(), teacher=teacher_price(None, None), gates=GatesSpec())
    assert ks.to_json()["cases"]["failures"] == [
        {"id": 3, "route": "error", "error": "RuntimeError"},
        {"id": 5, "route": "recipe", "error": "verifier raised ValueError"},
    ]


def test_model_route_latency_size_and_cost() -> None:
    model = ModelProfile(weight_bytes=98_000_000)
    results = run_cases(lambda x: Pred(redact(x), "model"), exact, cases_from_rows(ROWS))
    ks = score(results, size=SizeInfo({"recipes": 1000, "adapter_gguf": 2_000_000}, external_bytes=98_000_000),
               model=model, teacher=teacher_price(None, None), gates=GatesSpec())  # fmt: skip
    assert 0.4 < ks.terms.S < 0.5  # ~101 MB of a 4000 MB cap, on a log scale
    assert 0 < ks.p50_ms < 1000 and ks.terms.L == pytest.approx(1 - ks.p50_ms / 1000, abs=1e-4)
    assert 0.9 < ks.terms.C < 1.0  # local inference costs energy only
    assert ks.terms.V == 1.0 and ks.terms.A == 1.0 and ks.ok
    # the same artifact under a 50 ms p50 budget and a 100 MB size cap fails both limits
    strict = score(results, size=SizeInfo({"adapter_gguf": 3_000_000}, external_bytes=98_000_000), model=model,
                   teacher=teacher_price(None, None), gates=GatesSpec(K_min=0.5, p50_ms_max=50, size_mb_max=100))  # fmt: skip
    keys = [s.key for s in strict.shortfalls]
    assert "p50_ms_max" in keys and "size_mb_max" in keys
    assert strict.terms.L == 0.0 and strict.terms.V == 0.0  # nothing answered within 50 ms
    assert strict.terms.S == 0.0


def test_score_is_a_function_of_inputs_not_of_clocks() -> None:
    slow = run_cases(lambda x: Pred(redact(x), "recipe", latency_ms=900.0), exact, cases_from_rows(ROWS))
    fast = run_cases(lambda x: Pred(redact(x), "recipe", latency_ms=0.001), exact, cases_from_rows(ROWS))
    args = dict(size=SizeInfo({"recipes": 10}), model=ModelProfile(), teacher=teacher_price(1.0, 2.0), gates=GatesSpec())
    assert score(slow, **args).to_json() == score(fast, **args).to_json()  # type: ignore[arg-type]


def test_gate_error_names_the_short_terms() -> None:
    results = run_cases(lambda x: Pred("nope", "recipe"), exact, [Case(i, f"x{i}", "y") for i in range(4)])
    ks = score(results, size=SizeInfo({"recipes": 10}), model=ModelProfile(), teacher=teacher_price(None, None),
               gates=GatesSpec())  # fmt: skip
    assert not ks.ok and ks.terms.A == 0.0 and ks.K == 0.6
    err = gate_error("phi", ks.K, ks.shortfalls)
    assert isinstance(err, GateFailed) and err.exit_code == 1
    text = str(err)
    assert "short: A" in text and "A (accuracy) 0.0000 < 0.70" in text and "K 0.6000 < K_min 0.70" in text
    assert "no artifact was written" in text
