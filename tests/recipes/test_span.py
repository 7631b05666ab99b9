from __future__ import annotations

import json
import random
import re
from types import ModuleType

from recipes_helpers import Phi, as_examples

from kolmbuild.config.models import RecipesSpec, ShapeSpec, VerifierSpec
from kolmbuild.data import Example
from kolmbuild.recipes import RecipePack, SpanRecipe, learn
from kolmbuild.recipes.align import placeholder_vocabulary, rough_edits, spans_for
from kolmbuild.verifier import synthesize


def test_phi_pack_is_one_span_recipe_that_verifies(phi: Phi) -> None:
    assert [r.kind for r in phi.pack.recipes] == ["span"]
    report = phi.pack.report
    assert report["recipe_only"] is True and report["coverage"] == 1.0 and report["accuracy"] == 1.0
    lookup = next(r for r in report["recipes"] if r["kind"] == "lookup")
    assert lookup["kept"] is False and lookup["reason"] == "no held-out row answered"
    placeholders = report["recipes"][1]["notes"]["placeholders"]
    assert sorted(placeholders) == ["[DATE]", "[EMAIL]", "[PHONE]", "[SSN]"]
    assert len(phi.pack.drafts) == 0  # recipe-only: no model, no drafts
    assert len(json.dumps(phi.pack.to_json())) < 16000  # broad shapes: every format, month names of 7 languages


def test_phi_recipes_generalize_to_fresh_sentences(phi: Phi, generator: ModuleType) -> None:
    """Sentences from another seed: other names, numbers, emails, dates, decoys."""
    seen = {e.input for e in phi.train}
    fresh = [r for r in generator.generate(seed=424242, n=600) if r["input"] not in seen]
    assert len(fresh) > 550
    pack = RecipePack.from_json(json.loads(json.dumps(phi.pack.to_json())))
    outs = pack.answer_batch([r["input"] for r in fresh])
    wrong = [(r["input"], o) for r, o in zip(fresh, outs, strict=True) if o != r["output"]]
    assert wrong == []
    assert [pack.answer(r["input"]) for r in fresh[:50]] == [r["output"] for r in fresh[:50]]


def test_decoys_survive(phi: Phi) -> None:
    decoys = [
        "Order #48213 shipped with 12 items for $1,249.99.",
        "Invoice INV-2024-00412 totals $310, a 15% discount included.",
        "Ticket ORD-583921 reopened at 10:30 AM; see A17-4410 and 4821-37.",
        "Upgrade to version 2.14.3 before 09:45; room 4B has 6 chairs.",
    ]
    assert phi.pack.answer_batch(decoys) == decoys
    assert phi.pack.answer("Call (212) 555-0147 or mail j.doe+rx@mail.example.org on Sept 3, 2031.") == (
        "Call [PHONE] or mail [EMAIL] on [DATE]."
    )


def test_batch_equals_single_calls_and_handles_newlines(phi: Phi) -> None:
    span = phi.pack.recipes[0]
    assert isinstance(span, SpanRecipe)
    inputs = ["SSN 123-45-6789\nDOB 1/2/1990", "nothing here", "", "a@b.co"]
    assert span.answer_batch(inputs) == [span.answer(x) for x in inputs] == [
        "SSN [SSN]\nDOB [DATE]", "nothing here", "", "[EMAIL]"]
    assert span.answer_batch([]) == [] and span.answer(5) is None
    assert span.answer_batch(["x", 5]) == ["x", None]


def test_alignment_finds_placeholders_and_spans() -> None:
    pairs = [("call 555-1234 now", "call [PHONE] now"), ("Dec 5, 2024 at 555-9876", "[DATE] at [PHONE]"),
             ("on Dec 7, 2023", "on [DATE]")]
    assert placeholder_vocabulary(pairs) == ["[PHONE]", "[DATE]"]
    assert spans_for(pairs[1][0], pairs[1][1], ["[PHONE]", "[DATE]"]) == [("[DATE]", "Dec 5, 2024"), ("[PHONE]", "555-9876")]
    assert spans_for("a, b, c", "[X], [X]", ["[X]"]) is None  # ambiguous reading: no spans
    assert spans_for("same", "same", ["[X]"]) == []
    assert [e.replacement for e in rough_edits("Dec 5 x", "[DATE] x")] == ["[DATE]"]


def _mrn_rows(seed: int, n: int) -> list[dict[str, str]]:
    rng = random.Random(seed)
    words = ["chart", "record", "file", "note", "visit", "scan"]
    rows = []
    for _ in range(n):
        mrn = f"MRN{rng.randint(100000, 999999)}"
        decoy = f"LOT{rng.randint(100000, 999999)}"
        w = rng.choice(words)
        kind = rng.randrange(3)
        if kind == 0:
            rows.append({"input": f"Open {w} {mrn} today", "output": f"Open {w} [MRN] today"})
        elif kind == 1:
            rows.append({"input": f"The {w} for {mrn} uses batch {decoy}.", "output": f"The {w} for [MRN] uses batch {decoy}."})
        else:
            rows.append({"input": f"Batch {decoy} is ready for {w} review.", "output": f"Batch {decoy} is ready for {w} review."})
    return rows


def test_custom_placeholder_is_induced_without_the_library() -> None:
    train, held = as_examples(_mrn_rows(1, 80)), as_examples(_mrn_rows(2, 40), 1000)
    shape = ShapeSpec()
    v = synthesize(train, shape, VerifierSpec(), __import__("pathlib").Path("."))
    pack = learn(train, held, v, RecipesSpec(kinds=["span"]), shape)
    assert [r.kind for r in pack.recipes] == ["span"]
    notes = pack.report["recipes"][0]["notes"]["placeholders"]["[MRN]"]
    assert not notes["pattern"].startswith("library")
    fresh = _mrn_rows(99, 200)
    assert pack.answer_batch([r["input"] for r in fresh]) == [r["output"] for r in fresh]
    rule = pack.recipes[0].rules[0]  # type: ignore[attr-defined]
    assert re.search(rule.pattern, "MRN555555") and not re.search(rule.pattern, "LOT555555")


def test_span_recipe_that_fails_held_out_is_dropped() -> None:
    # outputs redact only *some* numbers: no pattern separates them, so held-out accuracy is poor
    rng = random.Random(5)
    rows = []
    for i in range(120):
        a, b = rng.randint(1000, 9999), rng.randint(1000, 9999)
        secret = rng.random() < 0.5
        rows.append({"input": f"row {i}: code {a} and {b}", "output": f"row {i}: code {'[X]' if secret else a} and {b}"})
    train, held = as_examples(rows[:90]), as_examples(rows[90:], 90)
    shape = ShapeSpec()
    v = synthesize(train, shape, VerifierSpec(), __import__("pathlib").Path("."))
    pack = learn(train, held, v, RecipesSpec(kinds=["span", "lookup"]), shape)
    assert pack.recipes == ()
    span = next(r for r in pack.report["recipes"] if r["kind"] == "span")
    assert span["kept"] is False and span["reason"] == "below min_accuracy" and span["accuracy"] < 0.95
    assert pack.report["recipe_only"] is False
    assert pack.answer("row 1: code 1234 and 5678") is None


def test_examples_that_are_not_span_edits_learn_no_span_recipe() -> None:
    train = [Example(i, f"word{i} here", f"WORD{i} HERE") for i in range(30)]
    held = [Example(100 + i, f"word{i} there", f"WORD{i} THERE") for i in range(10)]
    v = synthesize(train, ShapeSpec(), VerifierSpec(), __import__("pathlib").Path("."))
    pack = learn(train, held, v, RecipesSpec(kinds=["span"]), ShapeSpec())
    assert pack.recipes == ()
