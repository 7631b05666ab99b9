"""Extraction recipes: the output is made of spans of the input.

* text outputs: the spans of the input that match a learned shape, in input order, joined by a
  learned separator; a learned constant (``none``, ``N/A``…) when nothing matches;
* JSON object outputs: per field, the first matching span (a string field), every matching span
  (a list field), or ``null`` / the field left out when nothing matches, as the examples do.

Candidate shapes per output (or per field) come from the same library and induction as span
redaction (:func:`kolmbuild.recipes.span.candidates_for`); the one reproducing the most training
rows is kept.
"""

from __future__ import annotations

import json
import re
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

from kolmbuild.data.examples import Example
from kolmbuild.recipes.align import alignable
from kolmbuild.recipes.shape import BOUNDARY_CLASS, FLAGS, Shape, plain_regex
from kolmbuild.recipes.span import Generalize, candidates_for

SEPARATORS = ("; ", ", ", "\n", " | ", " ")
MAX_CANDIDATES = 12


@dataclass(frozen=True)
class FieldRule:
    name: str  # "" for a text output
    shape: Shape
    boundary: str
    many: bool = False  # a list of every match, else the first match
    missing: str = "null"  # no match: "null", "omit" (JSON) or the constant text
    _rx: re.Pattern[str] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "_rx", re.compile(plain_regex(self.shape, self.boundary), FLAGS))

    def spans(self, text: str) -> list[str]:
        return [m.group() for m in self._rx.finditer(text)]

    def to_json(self) -> dict[str, Any]:
        return {"name": self.name, "boundary": self.boundary, "many": self.many, "missing": self.missing,
                **self.shape.to_json()}

    @classmethod
    def from_json(cls, doc: dict[str, Any]) -> FieldRule:
        boundary = str(doc.get("boundary", "word"))
        if boundary not in BOUNDARY_CLASS:
            raise ValueError(f"unknown boundary {boundary!r}")
        return cls(str(doc["name"]), Shape.from_json(doc), boundary, bool(doc.get("many", False)),
                   str(doc.get("missing", "null")))


@dataclass(frozen=True)
class ExtractRecipe:
    output: str  # "text" or "json"
    fields: tuple[FieldRule, ...]
    separator: str = ", "

    kind = "extract"

    def answer(self, value: Any) -> Any | None:
        if type(value) is not str:
            return None
        if self.output == "text":
            rule = self.fields[0]
            found = rule.spans(value)
            return self.separator.join(found) if found else rule.missing
        out: dict[str, Any] = {}
        for rule in self.fields:
            found = rule.spans(value)
            if rule.many:
                out[rule.name] = found
            elif found:
                out[rule.name] = found[0]
            elif rule.missing == "null":
                out[rule.name] = None
        return out

    def answer_batch(self, values: Sequence[Any]) -> list[Any | None]:
        return [self.answer(v) for v in values]

    def to_json(self) -> dict[str, Any]:
        return {"kind": "extract", "output": self.output, "separator": self.separator,
                "fields": [f.to_json() for f in self.fields]}

    @classmethod
    def from_json(cls, doc: dict[str, Any]) -> ExtractRecipe:
        if doc.get("output") not in ("text", "json"):
            raise ValueError(f"unknown extract output {doc.get('output')!r}")
        try:
            fields = tuple(FieldRule.from_json(f) for f in doc["fields"])
        except re.error as exc:
            raise ValueError(f"bad extract pattern: {exc}") from None
        return cls(str(doc["output"]), fields, str(doc.get("separator", ", ")))


# ---------------------------------------------------------------------- learning

Check = Callable[[Any, Any, Any], bool]


def _best(make: Callable[[Any], ExtractRecipe], options: Sequence[Any], rows: Sequence[Example], check: Check) -> tuple[ExtractRecipe, int] | None:
    best: tuple[ExtractRecipe, int] | None = None
    for opt in options[:MAX_CANDIDATES]:
        recipe = make(opt)
        score = sum(1 for e in rows if check(e.input, recipe.answer(e.input), e.output))
        if best is None or score > best[1]:
            best = (recipe, score)
    return best


def _text_parts(example: Example) -> tuple[str, list[str]] | None:
    """(separator, spans) when the output is spans of the input joined by a separator."""
    out, src = example.output, example.input
    if out in src:
        return "", [out]
    for sep in SEPARATORS:
        parts = out.split(sep)
        if len(parts) > 1 and all(p and p in src for p in parts):
            return sep, parts
    return None


def learn_text_extract(train: Sequence[Example], check: Check, generalize: Generalize = "exact"
                       ) -> tuple[ExtractRecipe, dict[str, Any]] | None:
    rows = [e for e in train if isinstance(e.input, str) and isinstance(e.output, str) and alignable(e.input, e.output)]
    if len(rows) < 3:
        return None
    spans: list[str] = []
    seps: Counter[str] = Counter()
    misses: Counter[str] = Counter()
    extracted = 0
    for e in rows:
        parts = _text_parts(e)
        if parts is None:
            misses[e.output] += 1
            continue
        extracted += 1
        if parts[0]:
            seps[parts[0]] += 1
        spans.extend(parts[1])
    # mostly extraction, and what is not extracted is one constant ("none")
    if extracted < 0.6 * len(rows) or len(misses) > 1 or not spans:
        return None
    if all(e.output == e.input for e in rows):
        return None
    missing = next(iter(misses)) if misses else ""
    sep = seps.most_common(1)[0][0] if seps else ", "
    cands = candidates_for(spans, generalize)
    found = _best(lambda c: ExtractRecipe("text", (FieldRule("", c.shape, c.boundary, False, missing),), sep),
                  cands, rows, check)
    if found is None:
        return None
    recipe, score = found
    return recipe, {"spans": len(spans), "separator": sep, "missing": missing, "train_correct": score,
                    "train_rows": len(rows)}


def learn_json_extract(train: Sequence[Example], check: Check, generalize: Generalize = "exact"
                       ) -> tuple[ExtractRecipe, dict[str, Any]] | None:
    rows = [e for e in train if isinstance(e.input, str) and isinstance(e.output, dict)]
    if len(rows) < 3 or len(rows) < len(train):
        return None
    rows = [e for e in rows if alignable(e.input, json.dumps(e.output, ensure_ascii=False))]  # bounded work
    if len(rows) < 3:
        return None
    names = sorted({k for e in rows for k in e.output})
    rules: list[FieldRule] = []
    notes: dict[str, Any] = {}
    for name in names:
        values = [e.output.get(name) for e in rows]
        many = any(isinstance(v, list) for v in values)
        spans: list[str] = []
        for e, v in zip(rows, values, strict=True):
            items = v if isinstance(v, list) else [] if v is None else [v]
            if not all(isinstance(i, str) and i in e.input for i in items):
                return None  # a field that is not spans of the input: not an extraction task
            spans.extend(items)
        missing = "omit" if any(name not in e.output for e in rows) else "null"
        if not spans:
            return None
        cands = candidates_for(spans, generalize)

        best: tuple[FieldRule, int] | None = None
        for c in cands[:MAX_CANDIDATES]:
            rule = FieldRule(name, c.shape, c.boundary, many, missing)
            single = ExtractRecipe("json", (rule,))
            score = 0
            for e in rows:
                got = single.answer(e.input)
                score += isinstance(got, dict) and got.get(name) == e.output.get(name)
            if best is None or score > best[1]:
                best = (rule, score)
        if best is None:
            return None
        rules.append(best[0])
        notes[name] = {"spans": len(spans), "train_correct": best[1]}
    recipe = ExtractRecipe("json", tuple(rules))
    correct = sum(1 for e in rows if check(e.input, recipe.answer(e.input), e.output))
    return recipe, {"fields": notes, "train_correct": correct, "train_rows": len(rows)}
