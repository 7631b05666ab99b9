"""recipes.generalize: the broad library shape is kept unless it errs where a narrower shape does
not, measured on variant sentences (examples/phi-redactor/variants.py): per entity, the share left
in clear (leak) and the share of sentences where the placeholder replaced other text (over)."""

from __future__ import annotations

import json
import random
import re
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from recipes_helpers import Phi, as_examples, load_example

from kolmbuild.config.models import RecipesSpec, ShapeSpec, VerifierSpec
from kolmbuild.recipes import RecipePack, SpanRecipe, learn
from kolmbuild.recipes.library import BROAD, trie
from kolmbuild.recipes.shape import FLAGS
from kolmbuild.verifier import synthesize

# the PHI redactor on its own variants: what must hold (measured: docs/bench/variants.json)
LEAK_MAX = 0.01  # per entity: sentences with that entity (partly) left in clear
OVER_MAX = 0.01  # per entity: sentences where its placeholder replaced other text
VARIANT_SEED, VARIANT_ROWS = 20260611, 1500


@pytest.fixture(scope="module")
def variants() -> ModuleType:
    return load_example("variants")


@pytest.fixture(scope="module")
def variant_rows(variants: ModuleType) -> list[dict[str, Any]]:
    return variants.generate(VARIANT_SEED, VARIANT_ROWS)


def _pack(phi: Phi, generalize: str) -> RecipePack:
    spec = RecipesSpec(kinds=["span", "lookup"], generalize=generalize)  # type: ignore[arg-type]
    return learn(phi.train, phi.heldout, phi.verifier, spec, phi.shape)


def test_phi_redactor_variants_pass_the_threshold(phi: Phi, variants: ModuleType, variant_rows: list[dict[str, Any]]) -> None:
    assert RecipesSpec().generalize == "broad"  # the default: phi.pack is learned with it
    pack = RecipePack.from_json(json.loads(json.dumps(phi.pack.to_json())))  # as shipped
    result = variants.score(variant_rows, pack.answer_batch([r["input"] for r in variant_rows]))
    for kind, e in result["entities"].items():
        assert e["sentences"] >= 200, kind
        assert e["leak_rate"] <= LEAK_MAX, (kind, e["leak_examples"])
        assert e["over_rate"] <= OVER_MAX, kind
    assert result["negatives"] >= 200 and result["negatives_changed"] == 0
    placeholders = phi.pack.report["recipes"][1]["notes"]["placeholders"]
    assert {t: p["pattern"] for t, p in placeholders.items()} == {
        "[EMAIL]": "broad:email/word", "[PHONE]": "broad:phone/word", "[DATE]": "broad:date/word",
        "[SSN]": "broad:ssn/word"}


def test_exact_keeps_the_formats_the_examples_show_and_leaks(phi: Phi, variants: ModuleType,
                                                             variant_rows: list[dict[str, Any]]) -> None:
    pack = _pack(phi, "exact")
    notes = pack.report["recipes"][1]["notes"]
    assert notes["generalize"] == {"policy": "exact"}
    assert all(p["pattern"].startswith("library:") for p in notes["placeholders"].values())
    result = variants.score(variant_rows, pack.answer_batch([r["input"] for r in variant_rows]))
    leaks = {k: e["leak_rate"] for k, e in result["entities"].items()}
    assert leaks["ssn"] > 0.9 and leaks["phone"] > 0.5 and leaks["date"] > 0.5, leaks
    # both policies reproduce the examples and the held-out rows
    assert pack.report["accuracy"] == phi.pack.report["accuracy"] == 1.0


def test_scoring_counts_leaks_and_over_redaction(variants: ModuleType) -> None:
    rows = [
        {"input": "SSN 123 45 6789 on 3 March 2027.", "output": "SSN [SSN] on [DATE].",
         "entities": [["ssn", "123 45 6789"], ["date", "3 March 2027"]]},
        {"input": "Order 4821-37 costs $12.", "output": "Order 4821-37 costs $12.", "entities": []},
    ]
    result = variants.score(rows, ["SSN [SSN] on [DATE], 2027.", "Order [PHONE] costs $12."])
    assert result["entities"]["date"]["leaked"] == 1 and result["entities"]["ssn"]["leaked"] == 0
    assert result["entities"]["phone"]["over_redacted"] == 1 and result["negatives_changed"] == 1
    assert variants.score(rows, [None, rows[1]["input"]])["entities"]["ssn"]["leaked"] == 1  # no answer: in clear


def _ssn_rows(seed: int, n: int, decoys: bool) -> list[dict[str, str]]:
    """SSNs written 123-45-6789; with ``decoys``, part numbers written 123 45 6789 that stay."""
    rng = random.Random(seed)
    rows = []
    for i in range(n):
        a, b, c = rng.randint(100, 899), rng.randint(10, 99), rng.randint(1000, 9999)
        if decoys and i % 3 == 0:
            text = f"Part {a} {b} {c} is back in stock."
            rows.append({"input": text, "output": text})
        else:
            rows.append({"input": f"Her SSN is {a}-{b}-{c}, note {i}.", "output": f"Her SSN is [SSN], note {i}."})
    return rows


def _learn(train_rows: list[dict[str, str]], held_rows: list[dict[str, str]], generalize: str = "broad") -> RecipePack:
    train, held = as_examples(train_rows), as_examples(held_rows, 10_000)
    verifier = synthesize(train, ShapeSpec(), VerifierSpec(), Path("."))
    spec = RecipesSpec(kinds=["span"], generalize=generalize)  # type: ignore[arg-type]
    return learn(train, held, verifier, spec, ShapeSpec())


def test_a_broad_shape_with_a_false_positive_on_the_negatives_is_rejected() -> None:
    pack = _learn(_ssn_rows(1, 60, decoys=True), _ssn_rows(2, 30, decoys=True))
    note = pack.report["recipes"][0]["notes"]["placeholders"]["[SSN]"]
    assert note["pattern"] == "library:ssn/word"
    rejected = note["broad_rejected"]
    assert rejected["candidate"] == "broad:ssn/word" and rejected["rows_lost"] == 20
    assert rejected["row_ids"] == [0, 3, 6, 9, 12]  # the part-number rows the broad shape would redact
    assert pack.answer("Part 123 45 6789 and SSN 987-65-4321.") == "Part 123 45 6789 and SSN [SSN]."


def test_without_negatives_the_broad_shape_is_kept() -> None:
    pack = _learn(_ssn_rows(1, 60, decoys=False), _ssn_rows(2, 30, decoys=False))
    note = pack.report["recipes"][0]["notes"]["placeholders"]["[SSN]"]
    assert note["pattern"] == "broad:ssn/word" and "broad_rejected" not in note
    assert pack.answer("SSN 987 65 4321 or 987.65.4321 or 987654321") == "SSN [SSN] or [SSN] or [SSN]"
    exact = _learn(_ssn_rows(1, 60, decoys=False), _ssn_rows(2, 30, decoys=False), "exact")
    assert exact.answer("SSN 987 65 4321") == "SSN 987 65 4321"


def test_held_out_false_positives_fall_back_to_exact_shapes() -> None:
    """The examples show no part numbers, the held-out rows do: the broad recipe answers them wrong,
    so the exact one is kept (the held-out rows choose between the two)."""
    pack = _learn(_ssn_rows(1, 60, decoys=False), _ssn_rows(2, 30, decoys=True))
    entry = pack.report["recipes"][0]
    assert entry["kept"] is True and entry["accuracy"] == 1.0
    assert entry["notes"]["generalize"] == {"policy": "broad", "kept": "exact", "differs": True,
                                            "heldout_correct": 30, "broad_heldout_correct": 20}
    assert entry["notes"]["placeholders"]["[SSN]"]["pattern"] == "library:ssn/word"


def test_lower_case_month_first_dates_take_the_rare_pass(phi: Phi) -> None:
    span = phi.pack.recipes[0]
    assert isinstance(span, SpanRecipe) and any(r.shape.rare for r in span.rules)
    texts = [
        "seen on march 3, 2027 and on sept. 14th 2026.",
        "MARCH 3 2027, Mar  4,  2027, mar 5,2027",
        "room 3, 2027 beds and 12, 1999",  # a trigger with no month before it: nothing changes
        "call 212 555 0147 on dec 1, 2030",
        "no digits here at all",
    ]
    want = [
        "seen on [DATE] and on [DATE].",
        "[DATE], [DATE], [DATE]",
        "room 3, 2027 beds and 12, 1999",
        "call [PHONE] on [DATE]",
        "no digits here at all",
    ]
    assert [span.answer(t) for t in texts] == want
    assert span.answer_batch(texts) == want
    shipped = RecipePack.from_json(json.loads(json.dumps(phi.pack.to_json())))
    assert shipped.answer_batch(texts) == want


def test_the_fused_executor_equals_the_plain_regex_on_variants(phi: Phi, variant_rows: list[dict[str, Any]]) -> None:
    """Every rule applied as one ordinary regex (its rare part included) in rule order gives the
    same outputs as the fused fast pattern with its trigger and second pass."""
    span = phi.pack.recipes[0]
    assert isinstance(span, SpanRecipe)
    plain = [(re.compile(r.pattern, FLAGS), r.token) for r in span.rules]

    def naive(text: str) -> str:
        for rx, token in plain:
            text = rx.sub(token, text)
        return text

    inputs = [r["input"] for r in variant_rows]
    assert span.answer_batch(inputs) == [naive(x) for x in inputs]


def test_broad_shapes_keep_the_decoys_of_the_examples(phi: Phi) -> None:
    decoys = ["Order #48213 shipped with 12 items for $1,249.99.", "Ticket ORD-583921 reopened at 10:30 AM.",
              "Upgrade to version 2.14.3 before 09:45; room 4B has 6 chairs.", "Invoice INV-2024-00412 totals $310.",
              "Between 2019-2021 the ward had 1,204 beds; ZIP 94110-1234.", "BP 120/80, 2 x 500 mg, 5.6 mmol/L."]
    assert phi.pack.answer_batch(decoys) == decoys
    for name, shape in BROAD.items():
        assert not re.search(shape.regex(), "\n", FLAGS), name  # no shape crosses a newline (batches rely on it)


@settings(max_examples=200, deadline=None)
@given(st.lists(st.text(alphabet="abcAB\u00e4", min_size=1, max_size=5), min_size=1, max_size=8),
       st.text(alphabet="abcAB\u00e4", max_size=6), st.booleans())
def test_trie_matches_exactly_its_words(words: list[str], probe: str, fold: bool) -> None:
    rx = re.compile(trie(words, fold=fold), FLAGS)
    expected = probe.lower() in {w.lower() for w in words} if fold else probe in words
    assert bool(rx.fullmatch(probe)) == expected
    assert all(rx.fullmatch(w) for w in words)


def test_a_pack_with_a_rare_pass_is_format_2_and_plain_packs_stay_1(phi: Phi) -> None:
    from kolmbuild.errors import ArtifactError

    doc = phi.pack.to_json()
    assert doc["format"] == "kolm-recipes/2"  # an older runtime (kolm-recipes/1 only) refuses it
    assert _pack(phi, "exact").to_json()["format"] == "kolm-recipes/1"
    assert RecipePack.from_json(json.loads(json.dumps(doc))).answer("on march 3, 2027") == "on [DATE]"
    with pytest.raises(ArtifactError, match="kolm-recipes"):
        RecipePack.from_json({**doc, "format": "kolm-recipes/3"})


def _invoice_rows(seed: int, n: int) -> list[dict[str, Any]]:
    """JSON extraction: the due date (ISO in every example) and phone numbers (dashed)."""
    rng = random.Random(seed)
    rows = []
    for _ in range(n):
        due = f"{rng.randint(2024, 2030)}-{rng.randint(1, 12):02d}-{rng.randint(1, 28):02d}"
        phone = f"{rng.randint(201, 989)}-{rng.randint(200, 999)}-{rng.randint(0, 9999):04d}"
        text = f"Invoice #{rng.randint(100, 999)} is due {due}; questions to {phone}."
        rows.append({"input": text, "output": {"due": due, "phone": phone}})
    return rows


def test_extraction_generalizes_too() -> None:
    shape = ShapeSpec(output="json")
    train = as_examples(_invoice_rows(1, 60))  # type: ignore[arg-type]
    held = as_examples(_invoice_rows(2, 20), 1000)  # type: ignore[arg-type]
    verifier = synthesize(train, shape, VerifierSpec(), Path("."))
    text = "Invoice #412 is due March 3, 2027; questions to (415) 555-0199."
    broad = learn(train, held, verifier, RecipesSpec(kinds=["span"]), shape)
    assert [r.kind for r in broad.recipes] == ["extract"]
    assert broad.answer(text) == {"due": "March 3, 2027", "phone": "(415) 555-0199"}
    exact = learn(train, held, verifier, RecipesSpec(kinds=["span"], generalize="exact"), shape)
    assert exact.answer(text) == {"due": None, "phone": "(415) 555-0199"}  # ISO dates only: as the examples show
    assert broad.report["recipes"][0]["notes"]["generalize"]["kept"] == "broad"
