"""Span recipes: replace every match of a learned pattern with its placeholder.

One compiled alternation covers all placeholders (``(p₁)|(p₂)|…``, leftmost match wins, ties
go to the earlier alternative); a match's group number picks its placeholder. A batch runs as
one pass over the newline-joined inputs when no input holds a newline and no pattern can match
one. Learning: the placeholder vocabulary and spans come from :mod:`kolmbuild.recipes.align`,
candidate patterns per placeholder from the library and from induction, and a coordinate search
over (candidate per placeholder, placeholder order) keeps what reproduces the most examples.
"""

from __future__ import annotations

import itertools
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

from kolmbuild.data.examples import Example
from kolmbuild.recipes.align import placeholder_vocabulary, spans_for
from kolmbuild.recipes.induce import Level, induce, library_cover
from kolmbuild.recipes.library import LIBRARY

BOUNDARIES = {"word": (r"(?<!\w)", r"(?!\w)"), "strict": (r"(?<![\w-])", r"(?![\w-])")}
_NEWLINE_RISK = re.compile(r"\\s|\\S|\\n|\\W|\\D|\[\^|(?<!\\)\.")


@dataclass(frozen=True)
class SpanRule:
    token: str
    pattern: str  # non-capturing body; boundaries included


@dataclass(frozen=True)
class SpanRecipe:
    rules: tuple[SpanRule, ...]
    _rx: re.Pattern[str] = field(init=False, repr=False, compare=False)
    _repl: Callable[[re.Match[str]], str] = field(init=False, repr=False, compare=False)
    _batchable: bool = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        rx = re.compile("|".join(f"({r.pattern})" for r in self.rules))
        tokens = ("", *(r.token for r in self.rules))

        def repl(m: re.Match[str], _t: tuple[str, ...] = tokens) -> str:
            return _t[m.lastindex]  # type: ignore[index]

        object.__setattr__(self, "_rx", rx)
        object.__setattr__(self, "_repl", repl)
        object.__setattr__(self, "_batchable", not any(_NEWLINE_RISK.search(r.pattern) for r in self.rules))

    kind = "span"

    def answer(self, text: Any) -> str | None:
        if not isinstance(text, str):
            return None
        return self._rx.sub(self._repl, text)

    def answer_batch(self, texts: Sequence[Any]) -> list[str | None]:
        if self._batchable and texts and all(type(t) is str for t in texts):
            joined = "\n".join(texts)
            if joined.count("\n") == len(texts) - 1:
                return self._rx.sub(self._repl, joined).split("\n")  # type: ignore[return-value]
        return [self.answer(t) for t in texts]

    def to_json(self) -> dict[str, Any]:
        return {"kind": "span", "rules": [{"token": r.token, "pattern": r.pattern} for r in self.rules]}

    @classmethod
    def from_json(cls, doc: dict[str, Any]) -> SpanRecipe:
        return cls(tuple(SpanRule(str(r["token"]), str(r["pattern"])) for r in doc["rules"]))


# ---------------------------------------------------------------------- learning


@dataclass(frozen=True)
class Candidate:
    label: str  # how it was made, for the decompose report
    body: str


def candidates_for(spans: Sequence[str]) -> list[Candidate]:
    """Hypotheses for one placeholder's pattern, most general first."""
    bodies: list[tuple[str, str]] = []
    cover = library_cover(spans)
    if cover is not None:
        names, left = cover
        lib = "|".join(LIBRARY[n] for n in names)
        if not left:
            bodies.append(("library:" + "+".join(names), f"(?:{lib})"))
        else:
            extra = induce(left, "strict")
            if extra is not None:
                bodies.append(("library:" + "+".join(names) + "+strict", f"(?:{lib}|{extra})"))
    levels: tuple[Level, ...] = ("loose", "strict", "literal")
    for level in levels:
        body = induce(spans, level)
        if body is not None and body not in {b for _, b in bodies}:
            bodies.append((level, body))
    out = []
    for label, body in bodies:
        for bname, (pre, post) in BOUNDARIES.items():
            out.append(Candidate(f"{label}/{bname}", pre + body + post))
    return out


Scorer = Callable[[SpanRecipe], int]


def _search(tokens: list[str], cands: dict[str, list[Candidate]], score: Scorer, target: int) -> tuple[SpanRecipe, dict[str, str], int]:
    choice = {t: 0 for t in tokens}
    order = list(tokens)

    def build(ch: dict[str, int], od: list[str]) -> SpanRecipe:
        return SpanRecipe(tuple(SpanRule(t, cands[t][ch[t]].body) for t in od))

    best = score(build(choice, order))
    for _sweep in range(2):
        if best == target:
            break
        for t in tokens:
            for i in range(len(cands[t])):
                trial = {**choice, t: i}
                s = score(build(trial, order))
                if s > best:
                    best, choice = s, trial
        if best < target and len(tokens) <= 5:
            for perm in itertools.permutations(tokens):
                s = score(build(choice, list(perm)))
                if s > best:
                    best, order = s, list(perm)
    labels = {t: cands[t][choice[t]].label for t in tokens}
    return build(choice, order), labels, best


def learn_span(train: Sequence[Example], check: Callable[[Any, Any, Any], bool]) -> tuple[SpanRecipe, dict[str, Any]] | None:
    """The span recipe reproducing the most training examples (checked by ``check``), with notes
    on how each placeholder's pattern was chosen; None when outputs are not span edits."""
    pairs = [(e.input, e.output) for e in train if isinstance(e.input, str) and isinstance(e.output, str)]
    if len(pairs) < 2:
        return None
    vocab = placeholder_vocabulary(pairs)
    if not vocab:
        return None
    spans: dict[str, list[str]] = {t: [] for t in vocab}
    aligned = 0
    for source, target in pairs:
        found = spans_for(source, target, vocab)
        if found is None:
            continue
        aligned += 1
        for token, text in found:
            spans[token].append(text)
    tokens = [t for t in vocab if spans[t]]
    cands = {t: candidates_for(spans[t]) for t in tokens}
    tokens = [t for t in tokens if cands[t]]
    if not tokens:
        return None
    tokens.sort(key=lambda t: -sum(map(len, spans[t])) / len(spans[t]))

    def score(recipe: SpanRecipe) -> int:
        outs = recipe.answer_batch([s for s, _ in pairs])
        return sum(1 for (s, t), o in zip(pairs, outs, strict=True) if check(s, o, t))

    recipe, labels, correct = _search(tokens, cands, score, len(pairs))
    notes = {
        "placeholders": {t: {"spans": len(spans[t]), "pattern": labels[t]} for t in tokens},
        "aligned": aligned,
        "train_correct": correct,
        "train_rows": len(pairs),
    }
    return recipe, notes
