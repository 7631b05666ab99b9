"""Span recipes: replace every match of a learned pattern with its placeholder.

Anchored shapes (emails) run first, then one fused pattern covers every other alternative of
every placeholder (leftmost match wins, ties go to the earlier rule); see
:mod:`kolmbuild.recipes.shape` for why it is built that way. A batch runs as one pass over the
newline-joined inputs when no input holds a newline (no shape matches one). Learning: the placeholder vocabulary and spans come from :mod:`kolmbuild.recipes.align`,
candidate patterns per placeholder from the library and from induction, and a coordinate search
over (candidate per placeholder, placeholder order) keeps what reproduces the most examples.
"""

from __future__ import annotations

import functools
import itertools
import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

from kolmbuild.data.examples import Example
from kolmbuild.recipes.align import alignable, placeholder_vocabulary, spans_for
from kolmbuild.recipes.induce import Level, induce, library_cover
from kolmbuild.recipes.library import BROAD, LIBRARY
from kolmbuild.recipes.shape import BOUNDARY_CLASS, FLAGS, Alt, Shape, plain_regex

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
    items: list[tuple[str, str, str | None]]  # (inner guard, rest, token; None for a trigger)


def _runs(rules: Sequence[SpanRule]) -> tuple[list[_Run], dict[str, frozenset[str]]]:
    """Alternatives grouped by (first class, boundary), keeping their priority order for every
    character: an alternative joins an earlier group of its class, or a later-checked group of a
    wider class (with an inner one-character guard), only when no group in between could claim
    one of its characters. Then groups whose classes are disjoint trade places, digits first."""
    runs: list[_Run] = []
    chars: dict[str, frozenset[str]] = {}
    # every rule's alternatives in priority order, then the rare parts' triggers (token None: they
    # only signal), last so that they never take a position another alternative matches
    entries: list[tuple[Alt, str, str | None]] = [(alt, r.boundary, r.token) for r in rules for alt in r.shape.alts]
    entries += [(rare.trigger, r.boundary, None) for r in rules for rare in r.shape.rare]
    for alt, boundary, token in entries:
        mine = chars.setdefault(alt.first, _members(alt.first))
        target = None
        for i in range(len(runs) - 1, -1, -1):
            if runs[i].first == alt.first and runs[i].boundary == boundary:
                target = i
                break
            if chars[runs[i].first] & mine:
                break
        if target is None:
            runs.append(_Run(alt.first, boundary, [("", alt.rest, token)]))
        else:
            runs[target].items.append(("", alt.rest, token))
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


def _dispatch(runs: list[_Run], chars: dict[str, frozenset[str]], hoist: str | None, tokens: list[str | None]) -> str:
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


def _fused(rules: Sequence[SpanRule]) -> tuple[re.Pattern[str] | None, tuple[str | None, ...]]:
    """Every alternative of every rule in one pattern that ``re`` scans quickly (see shape.py):
    ``[F](?<!B.)(?:(?<=f₁)(?:rest()|…)|(?<!f₁)(?:(?<=f₂)…))``."""
    runs, chars = _runs(rules)
    if not runs:
        return None, ()
    shared = {r.boundary for r in runs}
    hoist = BOUNDARY_CLASS[next(iter(shared))] if len(shared) == 1 else None
    tokens: list[str | None] = [""]
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


class _Escalate(Exception):
    """A trigger matched: the text may hold a rare part (see :class:`kolmbuild.recipes.shape.Rare`)."""


def _rare_pass(rules: Sequence[SpanRule]) -> tuple[re.Pattern[str], tuple[str, ...]] | None:
    """One case-insensitive pattern for every rule's rare parts (an empty group names the rule)."""
    parts, tokens = [], [""]
    for r in rules:
        b = BOUNDARY_CLASS[r.boundary]
        for regex in dict.fromkeys(rare.regex() for rare in r.shape.rare):  # several triggers may share one pattern
            parts.append(f"(?<!{b}){regex}(?!{b})()")
            tokens.append(r.token)
    if not parts:
        return None
    return re.compile("|".join(parts), FLAGS), tuple(tokens)


@dataclass(frozen=True)
class SpanRecipe:
    rules: tuple[SpanRule, ...]
    _rx: re.Pattern[str] | None = field(init=False, repr=False, compare=False)
    _repl: Callable[[re.Match[str]], str] = field(init=False, repr=False, compare=False)
    _anchored: tuple[_AnchoredRule, ...] = field(init=False, repr=False, compare=False)
    _rare: tuple[re.Pattern[str], Callable[[re.Match[str]], str], Callable[[re.Match[str]], str]] | None = field(
        init=False, repr=False, compare=False)

    kind = "span"

    def __post_init__(self) -> None:
        rx, tokens = _fused(self.rules)
        rare = _rare_pass(self.rules)

        def repl(m: re.Match[str], _t: tuple[str | None, ...] = tokens) -> str:
            return _t[m.lastindex]  # type: ignore[index,return-value]  # no triggers: never None

        def repl_or_escalate(m: re.Match[str], _t: tuple[str | None, ...] = tokens) -> str:
            token = _t[m.lastindex]  # type: ignore[index]
            if token is None:
                raise _Escalate
            return token

        def repl_after_rare(m: re.Match[str], _t: tuple[str | None, ...] = tokens) -> str:
            token = _t[m.lastindex]  # type: ignore[index]
            return m.group() if token is None else token

        object.__setattr__(self, "_rx", rx)
        object.__setattr__(self, "_repl", repl if rare is None else repl_or_escalate)
        object.__setattr__(self, "_anchored", tuple(_AnchoredRule(r) for r in self.rules if r.shape.anchored))
        if rare is not None:
            rare_rx, rare_tokens = rare

            def repl_rare(m: re.Match[str], _t: tuple[str, ...] = rare_tokens) -> str:
                return _t[m.lastindex]  # type: ignore[index]

            object.__setattr__(self, "_rare", (rare_rx, repl_rare, repl_after_rare))
        else:
            object.__setattr__(self, "_rare", None)

    def answer(self, text: Any) -> str | None:
        if type(text) is not str:
            return None
        for a in self._anchored:
            if a.anchor in text:
                text = a.apply(text)
        if self._rx is None:
            return text
        try:
            return self._rx.sub(self._repl, text)
        except _Escalate:  # only raised when a rare part exists
            assert self._rare is not None
            rare_rx, repl_rare, repl_after = self._rare
            return self._rx.sub(repl_after, rare_rx.sub(repl_rare, text))

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


Generalize = Literal["broad", "exact"]


@dataclass(frozen=True)
class Candidate:
    label: str  # how it was made, for the decompose report
    shape: Shape
    boundary: str
    broad: bool = False  # from the broad library (see kolmbuild.recipes.library.BROAD)


def _library_shape(spans: Sequence[str], library: Mapping[str, Shape], prefix: str) -> tuple[str, Shape] | None:
    """The union of the library entries explaining the spans, plus a strict induced shape for the
    few they leave; None when the library explains too little."""
    cover = library_cover(spans, library=library)
    if cover is None:
        return None
    names, left = cover
    lib: Shape | None = Shape()
    for n in names:
        lib = lib.union(library[n]) if lib is not None else None
    extra = induce(left, "strict") if left else Shape()
    if lib is None or extra is None:
        return None
    merged = lib.union(extra)
    if merged is None:
        return None
    return prefix + ":" + "+".join(names) + ("+strict" if left else ""), merged


def candidates_for(spans: Sequence[str], generalize: Generalize = "exact") -> list[Candidate]:
    """Hypotheses for one placeholder's pattern, most general first: under ``broad`` the broad
    library's shape for these entities leads (the search keeps it unless a narrower candidate
    reproduces more examples), then the library's usual formats, then induced shapes."""
    shapes: list[tuple[str, Shape]] = []
    if generalize == "broad":
        found = _library_shape(spans, BROAD, "broad")
        if found is not None:
            shapes.append(found)
    found = _library_shape(spans, LIBRARY, "library")
    if found is not None and found[1] not in {s for _, s in shapes}:
        shapes.append(found)
    levels: tuple[Level, ...] = ("loose", "strict", "literal")
    for level in levels:
        shape = induce(spans, level)
        if shape is not None and shape not in {s for _, s in shapes}:
            shapes.append((level, shape))
    return [Candidate(f"{label}/{b}", shape, b, label.startswith("broad:")) for label, shape in shapes for b in BOUNDARIES]


Scorer = Callable[[SpanRecipe], int]


def _build(cands: dict[str, list[Candidate]], choice: dict[str, int], order: Sequence[str]) -> SpanRecipe:
    return SpanRecipe(tuple(SpanRule(t, cands[t][choice[t]].shape, cands[t][choice[t]].boundary) for t in order))


def _search(tokens: list[str], cands: dict[str, list[Candidate]], score: Scorer, target: int
            ) -> tuple[dict[str, int], list[str], int]:
    """Coordinate search from the first (most general) candidate of every placeholder: a
    placeholder moves to another candidate, or the placeholders to another order, only when that
    reproduces strictly more rows."""
    choice = {t: 0 for t in tokens}
    order = list(tokens)
    build = functools.partial(_build, cands)

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
    return choice, order, best


def _broad_rejected(token: str, cands: dict[str, list[Candidate]], choice: dict[str, int], order: list[str],
                    rows: Callable[[SpanRecipe], list[bool]], ids: Sequence[int]) -> dict[str, Any] | None:
    """Why ``token`` did not keep its broad candidate: the example rows it gets wrong that the
    chosen candidate gets right (the broad shape's false positives there)."""
    broad = next((i for i, c in enumerate(cands[token]) if c.broad and c.boundary == cands[token][choice[token]].boundary), None)
    if broad is None or cands[token][choice[token]].broad:
        return None
    chosen = rows(_build(cands, choice, order))
    trial = rows(_build(cands, {**choice, token: broad}, order))
    lost = [i for i, ok, bad in zip(ids, chosen, trial, strict=True) if ok and not bad]
    return {"candidate": cands[token][broad].label, "rows_lost": len(lost), "row_ids": lost[:5]}


def learn_span(train: Sequence[Example], check: Callable[[Any, Any, Any], bool], generalize: Generalize = "exact"
               ) -> tuple[SpanRecipe, dict[str, Any]] | None:
    """The span recipe reproducing the most training examples (checked by ``check``), with notes
    on how each placeholder's pattern was chosen; None when outputs are not span edits. Under
    ``generalize="broad"`` a placeholder keeps the broad library's shape unless a narrower
    candidate reproduces more rows (the notes then name the rows the broad shape got wrong)."""
    texts = [e for e in train if isinstance(e.input, str) and isinstance(e.output, str)]
    rows_in = [e for e in texts if alignable(e.input, e.output)]  # bounded work: long rows are not learned from
    pairs = [(e.input, e.output) for e in rows_in]
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
    cands = {t: candidates_for(spans[t], generalize) for t in tokens}
    tokens = [t for t in tokens if cands[t]]
    if not tokens:
        return None
    tokens.sort(key=lambda t: -sum(map(len, spans[t])) / len(spans[t]))

    def rows(recipe: SpanRecipe) -> list[bool]:
        outs = recipe.answer_batch([s for s, _ in pairs])
        return [check(s, o, t) for (s, t), o in zip(pairs, outs, strict=True)]

    choice, order, correct = _search(tokens, cands, lambda r: sum(rows(r)), len(pairs))
    placeholders: dict[str, dict[str, Any]] = {}
    for t in tokens:
        note: dict[str, Any] = {"spans": len(spans[t]), "pattern": cands[t][choice[t]].label}
        rejected = _broad_rejected(t, cands, choice, order, rows, [e.id for e in rows_in]) if generalize == "broad" else None
        if rejected is not None:
            note["broad_rejected"] = rejected
        placeholders[t] = note
    notes = {
        "placeholders": placeholders,
        "aligned": aligned,
        "train_correct": correct,
        "train_rows": len(pairs),
    }
    if len(texts) > len(rows_in):
        notes["too_long_to_learn"] = len(texts) - len(rows_in)
    return _build(cands, choice, order), notes
