"""Prompts, answer parsing, and the verifier's choice among k samples."""

from __future__ import annotations

from pathlib import Path

from kolmbuild.config.models import ShapeSpec, TeacherSpec, VerifierSpec
from kolmbuild.data import Example
from kolmbuild.recall import Hit
from kolmbuild.teacher.labels import label_example
from kolmbuild.teacher.prompt import build_requests, parse_answer, pick_shots, system_prompt
from kolmbuild.verifier import synthesize

CAPITALS = [Example(1, "France", "Paris"), Example(2, "Japan", "Tokyo"), Example(3, "Italy", "Rome"), Example(4, "Peru", "Lima")]


def verifier_for(examples: list[Example], shape: ShapeSpec | None = None):
    return synthesize(examples, shape or ShapeSpec(), VerifierSpec(), Path("."))


def test_verifier_chooses_the_correct_sample_among_k() -> None:
    v = verifier_for(CAPITALS)
    samples = ["Lyon", "Marseille", "paris", "Nice", "Lyon"]
    got = label_example(v, CAPITALS[0], samples)
    assert got.passed
    assert got.row == {"id": 1, "input": "France", "output": "paris", "source": "teacher", "verified": True}
    # the wrong answers become preference pairs (distinct, at most two), the winner is chosen
    assert [p["rejected"] for p in got.preferences] == ["Lyon", "Marseille"]
    assert all(p["chosen"] == "paris" and p["input"] == "France" for p in got.preferences)


def test_json_samples_agreeing_in_another_key_order_vote_together() -> None:
    shape = ShapeSpec(output="json")
    ex = [Example(i, f"q{i}", {"answer": i, "unit": "kg"}) for i in range(1, 5)]
    v = verifier_for(ex, shape)
    samples = [{"answer": 9, "unit": "kg"}, {"answer": 2, "unit": "kg"}, {"unit": "kg", "answer": 2}, "not json"]
    got = label_example(v, ex[1], samples)
    assert got.passed and got.votes == 2 and got.row["output"] == {"answer": 2, "unit": "kg"}


def test_no_passing_sample_keeps_gold_and_reports_it() -> None:
    v = verifier_for(CAPITALS)
    got = label_example(v, CAPITALS[1], ["Kyoto", "Osaka", "Kyoto"])
    assert not got.passed and got.votes == 0
    assert got.row["source"] == "gold" and got.row["output"] == "Tokyo"
    assert [p["rejected"] for p in got.preferences] == ["Kyoto", "Osaka"]
    assert all(p["chosen"] == "Tokyo" for p in got.preferences)


def test_parse_answer_by_shape() -> None:
    assert parse_answer("  Paris\n", ShapeSpec()) == "Paris"
    assert parse_answer('```json\n{"a": 1}\n```', ShapeSpec(output="json")) == {"a": 1}
    assert parse_answer("{broken", ShapeSpec(output="json")) == "{broken"
    # NaN has no canonical JSON form: writing labels.jsonl would crash, so it stays a string to reject
    assert parse_answer('{"a": NaN}', ShapeSpec(output="json")) == '{"a": NaN}'
    assert parse_answer("Positive.", ShapeSpec(output="label", labels=["positive", "negative"])) == "positive"
    assert parse_answer("maybe", ShapeSpec(output="label", labels=["positive", "negative"])) == "maybe"


def test_requests_carry_shots_passages_and_k_samples() -> None:
    spec = TeacherSpec(model="m", k=3, max_tokens=20, temperature=0.4)
    system = system_prompt("Name the capital.", ShapeSpec(output="label", labels=["Paris", "Rome"]))
    assert "Task: Name the capital." in system and "exactly one of these labels: Paris, Rome" in system
    hits = [Hit("Paris is the capital of France.", "geo.md", 0.9)]
    shots = pick_shots(CAPITALS, CAPITALS[0], 2)
    assert [s.id for s in shots] == [2, 3]
    reqs = build_requests(spec, system, CAPITALS[0], hits, shots)
    assert [r.sample for r in reqs] == [0, 1, 2]
    assert len({r.cid() for r in reqs}) == 3  # each sample is its own cache entry
    turns = reqs[0].messages
    assert [m.role for m in turns] == ["user", "assistant", "user", "assistant", "user"]
    assert turns[1].content == "Tokyo"
    assert "[1] (geo.md) Paris is the capital of France." in turns[-1].content
    assert turns[-1].content.endswith("Input:\nFrance")
    # same inputs, same request: the cache key is stable
    assert build_requests(spec, system, CAPITALS[0], hits, shots)[0].cid() == reqs[0].cid()
