"""Span recipes: replace every match of a learned pattern with its placeholder.

Anchored shapes (emails) run first, then one fused pattern covers every other alternative of
every placeholder (leftmost match wins, ties go to the earlier rule); see
:mod:`kolmbuild.recipes.shape` for why it is built that way. A batch runs as one pass over the
newline-joined inputs when no input holds a newline (no shape matches one). Learning: the placeholder vocabulary and spans come from :mod:`kolmbuild.recipes.align`,
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
from kolmbuild.recipes.shape import BOUNDARY_CLASS, FLAGS, Shape, plain_regex

BOUNDARIES = ("word", "strict")
BATCH_CHUNK = 256


@dataclass(frozen=True)
class SpanRule:
    token: str
    shape: Shape
    boundary: str = "word"  # the characters a match may not touch: word, or strict (word or "-")

    @property
    def pattern(self) -> str:
        """The rule as one ordinary regex (what the fused executor is equivalent to)."""
        return plain_regex(self.shape, self.boundary)


class _AnchoredRule:
    """An anchored shape as a split on its anchor plus a strip of its left characters."""

    def __init__(self, rule: SpanRule) -> None:
        assert rule.shape.anchored is not None
        a = rule.shape.anchored
        self.anchor = a.anchor
        self.token = rule.token
        left = re.compile(a.left, FLAGS)
        # ASCII and the Latin letters the library's shapes admit (U+0000..U+024F)
        self.left_chars = "".join(c for c in map(chr, range(0x250)) if left.fullmatch(c))
        b = BOUNDARY_CLASS[rule.boundary]
        self.right = re.compile(f"(?:{a.right})(?!{b})", FLAGS)
        self.blocked = re.compile(b, FLAGS)

    def apply(self, text: str) -> str:
        pieces = text.split(self.anchor)
        done: list[str] = []
        cur = pieces[0]
        for nxt in pieces[1:]:
            stripped = cur.rstrip(self.left_chars)
            m = self.right.match(nxt) if len(stripped) < len(cur) else None
            if m is not None and not (stripped and self.blocked.match(stripped[-1])):
                done.append(stripped + self.token)
                cur = nxt[m.end() :]
            else:
                done.append(cur + self.anchor)
                cur = nxt
        done.append(cur)
        return "".join(done)


def _members(cls: str) -> frozenset[str]:
    """The characters a bracketed class matches (Latin-1 range, plus a lone escaped literal)."""
    rx = re.compile(cls, FLAGS)
    found = {c for c in map(chr, range(256)) if rx.fullmatch(c)}
    inner = cls[1:-1].removeprefix("\\")
    if len(inner) == 1:
        found.add(inner)
    return frozenset(found)


@dataclass
class _Run:
    first: str  # the class every alternative here starts with
    boundary: str
    items: list[tuple[str, str, str]]  # (inner guard, rest, token)


def _runs(rules: Sequence[SpanRule]) -> tuple[list[_Run], dict[str, frozenset[str]]]:
    """Alternatives grouped by (first class, boundary), keeping their priority order for every
    character: an alternative joins an earlier group of its class, or a later-checked group of a
    wider class (with an inner one-character guard), only when no group in between could claim
    one of its characters. Then groups whose classes are disjoint trade places, digits first."""
    runs: list[_Run] = []
    chars: dict[str, frozenset[str]] = {}
    for r in rules:
        for alt in r.shape.alts:
            mine = chars.setdefault(alt.first, _members(alt.first))
            target = None
            for i in range(len(runs) - 1, -1, -1):
                if runs[i].first == alt.first and runs[i].boundary == r.boundary:
                    target = i
                    break
                if chars[runs[i].first] & mine:
                    break
            if target is None:
                runs.append(_Run(alt.first, r.boundary, [("", alt.rest, r.token)]))
            else:
                runs[target].items.append(("", alt.rest, r.token))
    merged: list[_Run] = []
    for i, run in enumerate(runs):  # fold a narrow group into the next wider one it may precede
        mine = chars[run.first]
        for later in runs[i + 1 :]:
            if chars[later.first] > mine and later.boundary == run.boundary:
                guard = f"(?<={run.first})"
                later.items[:0] = [(guard + g, rest, tok) for g, rest, tok in run.items]
                break
            if chars[later.first] & mine:
                merged.append(run)
                break
        else:
            merged.append(run)
    for _ in range(len(merged)):
        for i in range(len(merged) - 1):
            a, b = merged[i], merged[i + 1]
            if not (chars[a.first] & chars[b.first]) and _rank(chars[b.first]) < _rank(chars[a.first]):
                merged[i], merged[i + 1] = b, a
    return merged, chars


def _rank(members: frozenset[str]) -> int:
    return 0 if members & set("0123456789") else 1


def _dispatch(runs: list[_Run], chars: dict[str, frozenset[str]], hoist: str | None, tokens: list[str]) -> str:
    """``(?<=f₁)A₁|(?<!f₁)(?:…)``: once a character's own group failed, groups that cannot hold
    it are skipped with one negative check instead of one guard each."""
    first, rest = runs[0], runs[1:]
    b = BOUNDARY_CLASS[first.boundary]
    inner = []
    for guard, body, token in first.items:
        inner.append(f"{guard}(?:{body})(?!{b})()")
        tokens.append(token)
    alts = "(?:" + "|".join(inner) + ")"
    own = "" if hoist else f"(?<!{b}.)"
    if not rest:
        return f"(?<={first.first}){own}{alts}"
    tail = _dispatch(rest, chars, hoist, tokens)
    disjoint = all(not (chars[first.first] & chars[r.first]) for r in rest)
    skip = f"(?<!{first.first})" if disjoint else ""
    return f"(?<={first.first}){own}{alts}|{skip}(?:{tail})"


def _fused(rules: Sequence[SpanRule]) -> tuple[re.Pattern[str] | None, tuple[str, ...]]:
    """Every alternative of every rule in one pattern that ``re`` scans quickly (see shape.py):
    ``[F](?<!B.)(?:(?<=f₁)(?:rest()|…)|(?<!f₁)(?:(?<=f₂)…))``."""
    runs, chars = _runs(rules)
    if not runs:
        return None, ()
    shared = {r.boundary for r in runs}
    hoist = BOUNDARY_CLASS[next(iter(shared))] if len(shared) == 1 else None
    tokens: list[str] = [""]
    if len(runs) == 1 and hoist:  # the union is this one class: nothing to dispatch
        b = BOUNDARY_CLASS[runs[0].boundary]
        body = []
        for guard, rest, token in runs[0].items:
            body.append(f"{guard}(?:{rest})(?!{b})()")
            tokens.append(token)
        dispatch = "|".join(body)
    else:
        dispatch = _dispatch(runs, chars, hoist, tokens)
    union = "[" + "".join(sorted({re.escape(c) for r in runs for c in chars[r.first]})) + "]"
    head = union + (f"(?<!{hoist}.)" if hoist else "")
    return re.compile(head + "(?:" + dispatch + ")", FLAGS), tuple(tokens)


@dataclass(frozen=True)
class SpanRecipe:
    rules: tuple[SpanRule, ...]
    _rx: re.Pattern[str] | None = field(init=False, repr=False, compare=False)
    _repl: Callable[[re.Match[str]], str] = field(init=False, repr=False, compare=False)
    _anchored: tuple[_AnchoredRule, ...] = field(init=False, repr=False, compare=False)

    kind = "span"

    def __post_init__(self) -> None:
        rx, tokens = _fused(self.rules)

        def repl(m: re.Match[str], _t: tuple[str, ...] = tokens) -> str:
            return _t[m.lastindex]  # type: ignore[index]

        object.__setattr__(self, "_rx", rx)
        object.__setattr__(self, "_repl", repl)
        object.__setattr__(self, "_anchored", tuple(_AnchoredRule(r) for r in self.rules if r.shape.anchored))

    def answer(self, text: Any) -> str | None:
        if type(text) is not str:
            return None
        for a in self._anchored:
            if a.anchor in text:
                text = a.apply(text)
        return text if self._rx is None else self._rx.sub(self._repl, text)

    def answer_batch(self, texts: Sequence[Any]) -> list[str | None]:
        """Chunks of newline-joined inputs, one pass each (no shape matches a newline); chunks
        keep the joined text small enough to stay in cache."""
        if not all(type(t) is str for t in texts):
            return [self.answer(t) for t in texts]
        out: list[str | None] = []
        answer = self.answer
        for i in range(0, len(texts), BATCH_CHUNK):
            chunk = texts[i : i + BATCH_CHUNK]
            joined = "\n".join(chunk)
            if joined.count("\n") == len(chunk) - 1:
                out.extend(answer(joined).split("\n"))  # type: ignore[union-attr]
            else:
                out.extend(answer(t) for t in chunk)
        return out

    def to_json(self) -> dict[str, Any]:
        return {"kind": "span", "rules": [{"token": r.token, "boundary": r.boundary, **r.shape.to_json()}
                                          for r in self.rules]}

    @classmethod
    def from_json(cls, doc: dict[str, Any]) -> SpanRecipe:
        rules = []
        for r in doc["rules"]:
            boundary = str(r.get("boundary", "word"))
            if boundary not in BOUNDARY_CLASS:
                raise ValueError(f"unknown boundary {boundary!r}")
            rules.append(SpanRule(str(r["token"]), Shape.from_json(r), boundary))
        try:
            return cls(tuple(rules))
        except re.error as exc:
            raise ValueError(f"bad span pattern: {exc}") from None


# ---------------------------------------------------------------------- learning


@dataclass(frozen=True)
class Candidate:
    label: str  # how it was made, for the decompose report
    shape: Shape
    boundary: str


def candidates_for(spans: Sequence[str]) -> list[Candidate]:
    """Hypotheses for one placeholder's pattern, most general first."""
    shapes: list[tuple[str, Shape]] = []
    cover = library_cover(spans)
    if cover is not None:
        names, left = cover
        lib: Shape | None = Shape()
        for n in names:
            lib = lib.union(LIBRARY[n]) if lib is not None else None
        extra = induce(left, "strict") if left else Shape()
        if lib is not None and extra is not None:
            merged = lib.union(extra)
            if merged is not None:
                shapes.append(("library:" + "+".join(names) + ("+strict" if left else ""), merged))
    levels: tuple[Level, ...] = ("loose", "strict", "literal")
    for level in levels:
        shape = induce(spans, level)
        if shape is not None and shape not in {s for _, s in shapes}:
            shapes.append((level, shape))
    return [Candidate(f"{label}/{b}", shape, b) for label, shape in shapes for b in BOUNDARIES]


Scorer = Callable[[SpanRecipe], int]


def _search(tokens: list[str], cands: dict[str, list[Candidate]], score: Scorer, target: int) -> tuple[SpanRecipe, dict[str, str], int]:
    choice = {t: 0 for t in tokens}
    order = list(tokens)

    def build(ch: dict[str, int], od: list[str]) -> SpanRecipe:
        return SpanRecipe(tuple(SpanRule(t, cands[t][ch[t]].shape, cands[t][ch[t]].boundary) for t in od))

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
