from __future__ import annotations

import json
import random
from pathlib import Path

import pytest

from kolmbuild.config.models import RecipesSpec, ShapeSpec, VerifierSpec
from kolmbuild.data import Example
from kolmbuild.errors import ArtifactError
from kolmbuild.recipes import ClassifierRecipe, DraftTable, RecipePack, learn, learn_drafts
from kolmbuild.verifier import synthesize

TOPICS = {
    "billing": ["invoice", "charge", "refund", "payment", "card", "bill", "price", "overcharged"],
    "shipping": ["package", "delivery", "tracking", "courier", "shipped", "arrive", "parcel", "address"],
    "medical": ["doctor", "prescription", "symptoms", "appointment", "dose", "nurse", "pain", "clinic"],
}
FILLER = ["please", "help", "my", "the", "about", "with", "today", "again", "question", "i", "have", "a"]


def _label_rows(seed: int, n: int) -> list[Example]:
    rng = random.Random(seed)
    rows = []
    for i in range(n):
        label = rng.choice(sorted(TOPICS))
        words = rng.sample(TOPICS[label], 2) + rng.sample(FILLER, 4)
        rng.shuffle(words)
        rows.append(Example(seed * 10_000 + i, " ".join(words), label))
    return rows


def test_classifier_head_learns_labels_and_roundtrips() -> None:
    train, held = _label_rows(1, 150), _label_rows(2, 60)
    shape = ShapeSpec(output="label", labels=sorted(TOPICS))
    v = synthesize(train, shape, VerifierSpec(), Path("."))
    pack = learn(train, held, v, RecipesSpec(), shape)
    assert [r.kind for r in pack.recipes] == ["classifier"]
    entry = next(r for r in pack.report["recipes"] if r["kind"] == "classifier")
    assert entry["kept"] and entry["accuracy"] >= 0.95 and entry["coverage"] >= 0.8
    clf = pack.recipes[0]
    assert isinstance(clf, ClassifierRecipe)
    again = RecipePack.from_json(json.loads(json.dumps(pack.to_json())))
    fresh = _label_rows(3, 40)
    assert again.answer_batch([e.input for e in fresh]) == pack.answer_batch([e.input for e in fresh])
    answered = [(e, o) for e, o in zip(fresh, pack.answer_batch([e.input for e in fresh]), strict=True) if o]
    assert sum(o == e.output for e, o in answered) >= 0.95 * len(answered) and len(answered) >= 30
    assert pack.answer("refund for the invoice charge on my card") == "billing"


def test_classifier_abstains_when_unsure() -> None:
    train, held = _label_rows(1, 150), _label_rows(2, 60)
    shape = ShapeSpec(output="label", labels=sorted(TOPICS))
    v = synthesize(train, shape, VerifierSpec(), Path("."))
    clf = learn(train, held, v, RecipesSpec(kinds=["classifier"]), shape).recipes[0]
    assert isinstance(clf, ClassifierRecipe) and clf.threshold > 1 / 3
    assert clf.answer("zebra quantum violin") is None  # no known feature: uniform, below threshold


def test_lookup_is_kept_when_held_out_inputs_recur() -> None:
    canned = {"reset password": "Use the reset link.", "opening hours": "9 to 5, Monday to Friday.",
              "talk to a human": "Transferring you now."}
    train = [Example(i, q, a) for i, (q, a) in enumerate(canned.items())]
    held = [Example(10, "opening hours", "9 to 5, Monday to Friday."), Example(11, "refund?", "Ask billing.")]
    v = synthesize(train, ShapeSpec(), VerifierSpec(), Path("."))
    pack = learn(train, held, v, RecipesSpec(kinds=["lookup"]), ShapeSpec())
    assert [r.kind for r in pack.recipes] == ["lookup"]
    assert pack.report["coverage"] == 0.5 and pack.report["accuracy"] == 1.0
    assert pack.answer("reset password") == "Use the reset link." and pack.answer("refund?") is None
    assert pack.report["recipe_only"] is False and len(pack.drafts) == 0  # too few outputs for drafts


def test_draft_table_proposes_shared_structure() -> None:
    rng = random.Random(0)
    outs = [{"name": rng.choice(["Ann", "Bo", "Cyd", "Dee"]) + str(i), "age": rng.randint(1, 99),
             "status": rng.choice(["active", "inactive"])} for i in range(40)]
    table = learn_drafts(outs)
    # keys in sorted order: the order training renders answers in and a trained adapter writes them
    assert table.propose("") == '{"age": '
    assert table.propose('{"age": 42, "na') == 'me": "'
    assert table.propose('{"age": 42').startswith(', "name": "')
    assert table.propose('{"age": 42, "name": "Zed7"').startswith(', "status": "')
    assert table.propose("completely unrelated ~~~") == ""
    again = DraftTable.from_json(json.loads(json.dumps(table.to_json())))
    assert again.propose('{"age": 42') == table.propose('{"age": 42')
    assert DraftTable().propose("anything") == "" and len(DraftTable.from_json(None)) == 0


def test_generative_task_gets_drafts_but_no_recipes() -> None:
    rows = [Example(i, f"describe item {i}", f"Item {i} is in stock. Shipping takes {i % 5 + 2} days.") for i in range(60)]
    v = synthesize(rows[:45], ShapeSpec(), VerifierSpec(), Path("."))
    pack = learn(rows[:45], rows[45:], v, RecipesSpec(kinds=["span", "lookup"]), ShapeSpec())
    assert pack.recipes == ()
    assert pack.drafts.propose("") == "Item "
    assert pack.drafts.propose("Item 77 is").startswith(" in stock. Shipping takes ")
    off = learn(rows[:45], rows[45:], v, RecipesSpec(kinds=["span"], drafts=False), ShapeSpec())
    assert len(off.drafts) == 0
    disabled = learn(rows[:45], rows[45:], v, RecipesSpec(enabled=False), ShapeSpec())
    assert disabled.recipes == () and disabled.report["recipes"] == []


@pytest.mark.parametrize("doc", [{}, {"format": "nope"}, {"format": "kolm-recipes/1", "recipes": [{"kind": "alien"}]},
                                 {"format": "kolm-recipes/1", "recipes": [{"kind": "span"}]}])
def test_malformed_recipes_json_is_an_artifact_error(doc: dict) -> None:
    with pytest.raises(ArtifactError, match="recipes.json"):
        RecipePack.from_json(doc)
