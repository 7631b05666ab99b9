"""The K-score's normalizations: each term on [0, 1], the worked examples of docs/k-score.md."""

from __future__ import annotations

import math

import pytest

from kolmbuild.evaluate.terms import (
    WEIGHTS,
    Terms,
    accuracy,
    cost_score,
    coverage,
    latency_score,
    size_score,
)


def test_weights_sum_to_one() -> None:
    assert math.isclose(sum(WEIGHTS.values()), 1.0)
    assert WEIGHTS == {"A": 0.40, "S": 0.15, "L": 0.15, "C": 0.15, "V": 0.15}


def test_K_is_the_weighted_sum() -> None:
    t = Terms.rounded(A=0.5, S=1.0, L=0.0, C=1.0, V=0.5)
    assert t.K == pytest.approx(0.40 * 0.5 + 0.15 + 0.0 + 0.15 + 0.15 * 0.5)
    assert Terms.rounded(A=1, S=1, L=1, C=1, V=1).K == 1.0
    assert Terms.rounded(A=0, S=0, L=0, C=0, V=0).K == 0.0


def test_terms_are_clamped_and_rounded() -> None:
    t = Terms.rounded(A=1.2, S=-0.1, L=0.123456, C=0.99999, V=0.5)
    assert (t.A, t.S, t.L, t.C, t.V) == (1.0, 0.0, 0.1235, 1.0, 0.5)
    assert t.lost() == {"A": 0.0, "S": 0.15, "L": round(0.15 * (1 - 0.1235), 4), "C": 0.0, "V": 0.075}


def test_accuracy_and_coverage_are_shares() -> None:
    assert accuracy(38, 40) == 0.95
    assert accuracy(0, 0) == 0.0
    assert coverage(30, 40) == 0.75
    assert coverage(0, 0) == 0.0


@pytest.mark.parametrize(
    ("mb", "cap", "expected"),
    [
        (0.03, 4000, 1.0),  # a recipe pack
        (1.0, 4000, 1.0),
        (98.0, 4000, 1 - math.log(98) / math.log(4000)),  # the bundled SmolLM2 Q4_1: 0.4472
        (4000.0, 4000, 0.0),
        (9000.0, 4000, 0.0),
        (98.0, 200, 1 - math.log(98) / math.log(200)),
        (0.5, 0.2, 1.0),  # within the free MB even with a tiny cap
    ],
)
def test_size_score(mb: float, cap: float, expected: float) -> None:
    assert size_score(mb, cap) == pytest.approx(expected)


def test_size_score_falls_with_size() -> None:
    sizes = [0.5, 2, 10, 100, 1000, 3999]
    scores = [size_score(s, 4000) for s in sizes]
    assert scores == sorted(scores, reverse=True)
    assert scores[0] == 1.0 and 0 < scores[-1] < 0.01


def test_latency_score() -> None:
    assert latency_score(0.01, 1000) == pytest.approx(0.99999)
    assert latency_score(500, 1000) == 0.5
    assert latency_score(1000, 1000) == 0.0
    assert latency_score(5000, 1000) == 0.0
    assert latency_score(25, 50) == 0.5


def test_cost_score() -> None:
    assert cost_score(0.0, 1e-5) == 1.0  # free: saves all of the teacher's cost
    assert cost_score(0.0, 0.0) == 1.0
    assert cost_score(2.5e-6, 1e-5) == pytest.approx(0.75)
    assert cost_score(1e-5, 1e-5) == 0.0
    assert cost_score(3e-5, 1e-5) == 0.0
    assert cost_score(1e-6, 0.0) == 0.0
