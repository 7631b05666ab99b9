"""The recipe pack: learned recipes that verified on held-out rows, in answer order, plus drafts.

``answer(input)`` asks each kept recipe in turn (lookup, span, extract, classifier) and returns the first
answer, or None when no recipe covers the input (the runtime then asks the model).
A recipe is kept only when it answers at least one held-out row and its answers there pass the
verifier at ``task.recipes.min_accuracy`` or better; coverage and accuracy go into the report.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

from kolmbuild.config.models import RecipesSpec, ShapeSpec
from kolmbuild.data.examples import Example
from kolmbuild.errors import ArtifactError
from kolmbuild.recipes.classifier import ClassifierRecipe, learn_classifier
from kolmbuild.recipes.drafts import DraftTable, learn_drafts
from kolmbuild.recipes.extract import ExtractRecipe, learn_json_extract, learn_text_extract
from kolmbuild.recipes.lookup import LookupRecipe, learn_lookup
from kolmbuild.recipes.span import Generalize, SpanRecipe, learn_span
from kolmbuild.verifier.core import Verifier

FORMAT = "kolm-recipes/1"
# a pack whose span shapes have rare parts (a second pass an older runtime would skip, leaving e.g.
# lower-case month names in clear) is written as version 2, so that such a runtime refuses it
FORMAT_RARE = "kolm-recipes/2"
READABLE = (FORMAT, FORMAT_RARE)
ORDER = ("lookup", "span", "extract", "classifier")


class Recipe(Protocol):
    kind: str

    def answer(self, value: Any) -> Any | None: ...

    def answer_batch(self, values: Sequence[Any]) -> list[Any | None]: ...

    def to_json(self) -> dict[str, Any]: ...


_LOADERS: dict[str, Any] = {
    "lookup": LookupRecipe, "span": SpanRecipe, "extract": ExtractRecipe, "classifier": ClassifierRecipe,
}


@dataclass(frozen=True)
class RecipePack:
    recipes: tuple[Recipe, ...] = ()
    drafts: DraftTable = DraftTable()
    report: Mapping[str, Any] = field(default_factory=dict, compare=False)

    def answer(self, value: Any) -> Any | None:
        for r in self.recipes:
            out = r.answer(value)
            if out is not None:
                return out
        return None

    def answer_batch(self, values: Sequence[Any]) -> list[Any | None]:
        if len(self.recipes) == 1:
            return self.recipes[0].answer_batch(values)
        results: list[Any | None] = [None] * len(values)
        pending = list(range(len(values)))
        for r in self.recipes:
            if not pending:
                break
            outs = r.answer_batch([values[i] for i in pending])
            for i, out in zip(pending, outs, strict=True):
                results[i] = out
            pending = [i for i in pending if results[i] is None]
        return results

    def to_json(self) -> dict[str, Any]:
        recipes = [r.to_json() for r in self.recipes]
        rare = any(rule.get("rare") for r in recipes if r.get("kind") in ("span", "extract")
                   for rule in r.get("rules", r.get("fields", [])))
        return {"format": FORMAT_RARE if rare else FORMAT, "recipes": recipes, "drafts": self.drafts.to_json()}

    @classmethod
    def from_json(cls, doc: Mapping[str, Any]) -> RecipePack:
        if not isinstance(doc, Mapping) or doc.get("format") not in READABLE:
            raise ArtifactError(f"recipes.json: not a {FORMAT} or {FORMAT_RARE} document")
        try:
            recipes = tuple(_LOADERS[r["kind"]].from_json(r) for r in doc.get("recipes", []))
            return cls(recipes, DraftTable.from_json(doc.get("drafts")))
        except (KeyError, TypeError, ValueError) as exc:
            raise ArtifactError(f"recipes.json: malformed recipe ({type(exc).__name__}: {exc})") from None


@dataclass(frozen=True)
class Score:
    answered: int
    correct: int
    total: int

    @property
    def coverage(self) -> float:
        return self.answered / self.total if self.total else 0.0

    @property
    def accuracy(self) -> float | None:
        return self.correct / self.answered if self.answered else None

    def to_json(self) -> dict[str, Any]:
        acc = self.accuracy
        return {
            "heldout": self.total,
            "answered": self.answered,
            "correct": self.correct,
            "coverage": round(self.coverage, 6),
            "accuracy": None if acc is None else round(acc, 6),
        }


def score(recipe: Recipe | RecipePack, rows: Sequence[Example], verifier: Verifier) -> Score:
    outs = recipe.answer_batch([e.input for e in rows])
    answered = [(e, o) for e, o in zip(rows, outs, strict=True) if o is not None]
    correct = sum(1 for e, o in answered if verifier.check(e.input, o, e.output))
    return Score(len(answered), correct, len(rows))


Learned = tuple[Recipe, dict[str, Any]]


def _span_kind(train: Sequence[Example], verifier: Verifier, shape: ShapeSpec, generalize: Generalize) -> Learned | None:
    if shape.output == "text":  # whichever reproduces more training rows (redaction on ties)
        options: list[Learned] = [x for x in (learn_span(train, verifier.check, generalize),
                                              learn_text_extract(train, verifier.check, generalize)) if x]
        return max(options, key=lambda rn: rn[1]["train_correct"], default=None)
    if shape.output == "json":
        return learn_json_extract(train, verifier.check, generalize)
    return None


def _span_generalized(train: Sequence[Example], heldout: Sequence[Example], verifier: Verifier, shape: ShapeSpec,
                      generalize: Generalize) -> Learned | None:
    """The span recipe under the task's policy. Under ``broad`` the recipe learned with the broad
    library is compared on the held-out rows with the one learned with ``exact`` shapes, and kept
    unless it answers fewer of them right (a false positive the examples did not reveal)."""
    learned = _span_kind(train, verifier, shape, generalize)
    if learned is None:
        return None
    if generalize != "broad":
        return learned[0], {**learned[1], "generalize": {"policy": generalize}}
    exact = _span_kind(train, verifier, shape, "exact")
    if exact is None or exact[0] == learned[0]:
        return learned[0], {**learned[1], "generalize": {"policy": "broad", "kept": "broad", "differs": False}}
    broad_ok, exact_ok = score(learned[0], heldout, verifier).correct, score(exact[0], heldout, verifier).correct
    if broad_ok >= exact_ok:
        return learned[0], {**learned[1], "generalize": {"policy": "broad", "kept": "broad", "differs": True,
                                                         "heldout_correct": broad_ok, "exact_heldout_correct": exact_ok}}
    return exact[0], {**exact[1], "generalize": {"policy": "broad", "kept": "exact", "differs": True,
                                                 "heldout_correct": exact_ok, "broad_heldout_correct": broad_ok}}


def _candidates(train: Sequence[Example], heldout: Sequence[Example], verifier: Verifier, spec: RecipesSpec,
                shape: ShapeSpec) -> list[Learned]:
    found: list[Learned] = []
    if "lookup" in spec.kinds:
        lk = learn_lookup(train)
        if lk is not None:
            found.append((lk, {"entries": len(lk.entries)}))
    if "span" in spec.kinds and shape.input == "text":  # span redaction, else span extraction
        learned = _span_generalized(train, heldout, verifier, shape, spec.generalize)
        if learned is not None:
            found.append(learned)
    if "classifier" in spec.kinds and shape.output in ("label", "text"):
        clf = learn_classifier(train, spec.min_accuracy)
        if clf is not None:
            found.append((clf, {"labels": len(clf.labels), "features": len(clf.vocab), "threshold": clf.threshold}))
    return found


def learn(
    train: Sequence[Example], heldout: Sequence[Example], verifier: Verifier, spec: RecipesSpec, shape: ShapeSpec
) -> RecipePack:
    """Learn every enabled recipe kind from ``train``; keep those that verify on ``heldout``."""
    entries: list[dict[str, Any]] = []
    kept: list[Recipe] = []
    if spec.enabled:
        for recipe, notes in _candidates(train, heldout, verifier, spec, shape):
            s = score(recipe, heldout, verifier)
            ok = s.answered > 0 and (s.accuracy or 0.0) >= spec.min_accuracy
            reason = "verified" if ok else ("no held-out row answered" if s.answered == 0 else "below min_accuracy")
            entries.append({"kind": recipe.kind, "kept": ok, "reason": reason, **s.to_json(), "notes": notes})
            if ok:
                kept.append(recipe)
    kept.sort(key=lambda r: ORDER.index(r.kind))
    pack = RecipePack(tuple(kept))
    total = score(pack, heldout, verifier)
    covered = total.coverage == 1.0 and (total.accuracy or 0.0) >= spec.min_accuracy
    drafts = DraftTable()
    if spec.drafts and not covered and shape.output in ("text", "json"):
        drafts = learn_drafts([e.output for e in train])
    report = {
        "coverage": round(total.coverage, 6),  # the pack's totals on held-out rows (train reads these)
        "accuracy": None if total.accuracy is None else round(total.accuracy, 6),
        "recipes": entries,
        "pack": total.to_json(),
        "min_accuracy": spec.min_accuracy,
        "recipe_only": covered,
        "drafts": len(drafts),
        "train_rows": len(train),
    }
    return RecipePack(pack.recipes, drafts, report)
