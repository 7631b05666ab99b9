from __future__ import annotations

import json
import random
from pathlib import Path

from kolmbuild.config.models import RecipesSpec, ShapeSpec, VerifierSpec
from kolmbuild.data import Example
from kolmbuild.recipes import ExtractRecipe, RecipePack, learn
from kolmbuild.verifier import synthesize

NAMES = ["ann", "bo", "cyd", "dee", "eli", "fay", "gus", "hal"]
DOMAINS = ["example.com", "mail.example.org", "clinic.net", "uni.edu"]


def _email_rows(seed: int, n: int) -> list[Example]:
    rng = random.Random(seed)
    rows = []
    for i in range(n):
        who = f"{rng.choice(NAMES)}{rng.randint(1, 999)}@{rng.choice(DOMAINS)}"
        order = f"#{rng.randint(10000, 99999)}"
        if rng.random() < 0.25:
            rows.append(Example(seed * 1000 + i, f"Order {order} shipped, no contact given.", "none"))
        else:
            rows.append(Example(seed * 1000 + i, f"Order {order}: write to {who} about it.", who))
    return rows


def test_text_extraction_learns_the_span_and_the_none_answer() -> None:
    train, held = _email_rows(1, 80), _email_rows(2, 30)
    v = synthesize(train, ShapeSpec(), VerifierSpec(), Path("."))
    pack = learn(train, held, v, RecipesSpec(kinds=["span"]), ShapeSpec())
    assert [r.kind for r in pack.recipes] == ["extract"]
    fresh = _email_rows(3, 100)
    assert pack.answer_batch([e.input for e in fresh]) == [e.output for e in fresh]
    assert pack.answer("Order #12345: write to zed@new-domain.io about it.") == "zed@new-domain.io"


def _invoice_rows(seed: int, n: int) -> list[Example]:
    rng = random.Random(seed)
    rows = []
    for i in range(n):
        inv = f"INV-{rng.randint(2019, 2027)}-{rng.randint(1, 99999):05d}"
        due = f"{rng.randint(2024, 2030)}-{rng.randint(1, 12):02d}-{rng.randint(1, 28):02d}"
        phones = [f"{rng.randint(201, 989)}-{rng.randint(200, 999)}-{rng.randint(0, 9999):04d}"
                  for _ in range(rng.randint(0, 2))]
        amount = f"${rng.randint(1, 900)}.{rng.randint(0, 99):02d}"
        text = f"Invoice {inv} for {amount} is due {due}." + "".join(f" Call {p}." for p in phones)
        rows.append(Example(seed * 1000 + i, text, {"invoice": inv, "due": due, "phones": phones}))
    return rows


def test_json_field_extraction() -> None:
    train, held = _invoice_rows(1, 60), _invoice_rows(2, 20)
    shape = ShapeSpec(output="json")
    v = synthesize(train, shape, VerifierSpec(), Path("."))
    pack = learn(train, held, v, RecipesSpec(kinds=["span"]), shape)
    assert [r.kind for r in pack.recipes] == ["extract"]
    again = RecipePack.from_json(json.loads(json.dumps(pack.to_json())))
    recipe = again.recipes[0]
    assert isinstance(recipe, ExtractRecipe) and [f.name for f in recipe.fields] == ["due", "invoice", "phones"]
    fresh = _invoice_rows(3, 50)
    assert again.answer_batch([e.input for e in fresh]) == [e.output for e in fresh]


def test_outputs_that_are_not_spans_are_not_extraction() -> None:
    train = [Example(i, f"item {i} costs {i} dollars", f"cost: {i}") for i in range(20)]
    v = synthesize(train, ShapeSpec(), VerifierSpec(), Path("."))
    pack = learn(train[:15], train[15:], v, RecipesSpec(kinds=["span"]), ShapeSpec())
    assert all(r.kind != "extract" for r in pack.recipes)
