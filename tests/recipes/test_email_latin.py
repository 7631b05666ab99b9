"""Emails with Latin letters beyond ASCII are redacted whole (no name left in clear before [EMAIL])."""

from __future__ import annotations

from pathlib import Path

from kolmbuild.config.models import RecipesSpec, ShapeSpec, VerifierSpec
from kolmbuild.data import load_examples
from kolmbuild.recipes import learn
from kolmbuild.verifier import synthesize
from tests.conftest import REPO


def test_accented_addresses_are_one_email() -> None:
    phi = REPO / "examples" / "phi-redactor"
    train = load_examples(phi / "train.jsonl", ShapeSpec())
    heldout = load_examples(phi / "eval.jsonl", ShapeSpec())
    verifier = synthesize(train, ShapeSpec(), VerifierSpec(), Path("."))
    pack = learn(train, heldout, verifier, RecipesSpec(kinds=["span", "lookup"]), ShapeSpec())
    assert pack.answer("Write to josé.garcía@correo.es today.") == "Write to [EMAIL] today."
    assert pack.answer("Mail ZOË@müller.de or bob@x.io.") == "Mail [EMAIL] or [EMAIL]."
    assert pack.answer_batch(["a josé@x.es", "b ñ@ü.de"]) == ["a [EMAIL]", "b [EMAIL]"]
    assert pack.answer("Price 3×4 = 12, ok") == "Price 3×4 = 12, ok"  # × is no letter
