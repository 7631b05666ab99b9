"""Deciding an unlabelled input without a reference: shape checks, the user's verifier, a clear
majority of the k samples. And the verifier's synthesis does bounded work on huge examples."""

from __future__ import annotations

import difflib
from pathlib import Path

import pytest

from kolmbuild.config.models import ShapeSpec, VerifierSpec
from kolmbuild.data.examples import Example
from kolmbuild.teacher.labels import label_unlabeled
from kolmbuild.verifier import Verifier, consensus, synthesize
from kolmbuild.verifier import core as verifier_core

LABELS = Verifier("label", casefold=True, labels=("billing", "shipping", "technical"))


def test_a_clear_majority_is_kept_with_its_agreement() -> None:
    got = consensus([LABELS], "where is my parcel", ["shipping", "Shipping", "billing", "shipping", "technical"], 0.6)
    assert got.kept and got.output == "shipping" and got.votes == 3 and got.k == 5 and got.agreement == 0.6
    assert got.rejected == ("billing", "technical") and got.reason is None


def test_no_clear_majority_is_rejected_and_says_why() -> None:
    got = consensus([LABELS], "x", ["shipping", "billing", "shipping", "technical", "billing"], 0.6)
    assert not got.kept and got.votes == 2
    assert got.reason == "no clear majority: the top answer has 2 of 5 samples, next 2 (agreement 0.40 < 0.60)"


def test_samples_that_fail_the_shape_checks_count_against_the_majority() -> None:
    # three of five say "shipping" but one of them is not a label at all: 2/5 valid votes
    got = consensus([LABELS], "x", ["shipping", "shipping", "the shipping queue", "refunds", "billing"], 0.6)
    assert not got.kept and got.valid == 3 and got.votes == 2
    nothing = consensus([LABELS], "x", ["refunds", "sales", ""], 0.6)
    assert not nothing.kept and nothing.output is None and nothing.reason == "no sample passed the checks"
    assert nothing.rejected == ("refunds", "sales", "")


def test_json_answers_vote_by_normalized_value_and_must_fit_the_schema() -> None:
    schema = {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"], "additionalProperties": False}
    v = Verifier("json", schema=schema)
    samples = ['{"city": "Lyon"}', '{ "city":"Lyon" }', {"city": "Lyon"}, '{"town": "Lyon"}']
    got = consensus([v], "x", samples, 0.75)
    assert got.kept and got.output == {"city": "Lyon"} and got.votes == 3 and got.rejected == ({"town": "Lyon"},)


def test_the_users_python_verifier_decides_too_with_no_reference(tmp_path: Path) -> None:
    (tmp_path / "check.py").write_text(
        "def verify(input, output, reference):\n"
        "    if reference is not None:\n"
        "        return output == reference\n"
        "    return output.lower() in input.lower()  # an answer must quote the input\n"
    )
    examples = [Example(0, "my parcel is late", "parcel"), Example(1, "card declined", "card")]
    user = synthesize(examples, ShapeSpec(), VerifierSpec(kind="python", path="check.py"), tmp_path)
    shape = synthesize(examples, ShapeSpec(), VerifierSpec(), tmp_path)
    quoted = consensus([shape, user], "the invoice is wrong", ["invoice", "invoice", "refund"], 0.6)
    assert quoted.kept and quoted.output == "invoice"
    made_up = consensus([shape, user], "the invoice is wrong", ["refund", "refund", "refund"], 0.6)
    assert not made_up.kept and made_up.reason == "no sample passed the checks"


def test_min_agreement_must_be_a_majority() -> None:
    with pytest.raises(ValueError):
        consensus([LABELS], "x", ["billing"], 0.5)


def test_label_unlabeled_gives_a_teacher_row_preferences_and_a_report_line() -> None:
    kept = label_unlabeled([LABELS], 41, 7, "my card was declined", ["billing", "billing", "technical"], 0.6)
    assert kept.row == {"id": 41, "input": "my card was declined", "output": "billing", "source": "teacher", "verified": True}
    assert kept.preferences == ({"input": "my card was declined", "chosen": "billing", "rejected": "technical"},)
    assert kept.report == {"id": 41, "line": 7, "kept": True, "agreement": 0.666667, "votes": 2, "valid": 3, "k": 3}
    dropped = label_unlabeled([LABELS], 42, None, "hmm", ["billing", "technical", "shipping"], 0.6)
    assert dropped.row is None and dropped.preferences == ()
    assert dropped.report["kept"] is False and dropped.report["reason"].startswith("no clear majority")
    assert "line" not in dropped.report


def test_synthesis_compares_a_bounded_amount_of_text(monkeypatch: pytest.MonkeyPatch) -> None:
    """16 item 6: a 1 MB example must not make the verifier's edit check quadratic in its size."""
    compared: list[int] = []
    real = difflib.SequenceMatcher

    def spy(isjunk, a, b, autojunk=True):  # type: ignore[no-untyped-def]
        compared.append(len(a) + len(b))
        return real(isjunk, a, b, autojunk=autojunk)

    monkeypatch.setattr(verifier_core.difflib, "SequenceMatcher", spy)
    huge = "Call 555-010-1234 about the claim. " * 30_000  # ~1 MB
    examples = [Example(0, huge, huge.replace("555-010-1234", "[PHONE]"))]
    examples += [Example(i, f"note {i}: call 555-010-{i:04d} today", f"note {i}: call [PHONE] today") for i in range(1, 200)]
    v = synthesize(examples, ShapeSpec(), VerifierSpec(), Path("."))
    assert v.mode == "exact"  # still recognised as an edit task
    assert len(compared) <= verifier_core.EDIT_SAMPLE
    assert max(compared) <= 2 * verifier_core.EDIT_WINDOW
