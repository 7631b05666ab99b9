"""Which spans of an input an output replaced: edit alignment for span recipes.

Phase 1 (:func:`rough_edits`): a word-level diff whose non-equal operations are merged across
one equal token (``[MRN]`` vs ``MRN 123456`` share the word ``MRN`` by accident).
The replacement texts that recur across examples, and never occur in their inputs, form the
placeholder vocabulary (:func:`placeholder_vocabulary`).

Phase 2 (:func:`spans_for`): with the vocabulary known, an output splits into literals and
placeholders; the input must read literal₀ span₁ literal₁ span₂ …. Both the shortest and the
longest reading are computed; when they differ the example is ambiguous and yields no spans.

Bounded work: the diff is quadratic in the worst case, so examples longer than
:data:`MAX_ALIGN_CHARS` are not aligned (the learner leaves them out and says so); the readings
are found with ``str.find``/``str.rfind`` in linear passes (a regex with one lazy group per
placeholder can backtrack polynomially).
"""

from __future__ import annotations

import difflib
import re
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass

MAX_GAP = 1  # tokens
MAX_ALIGN_CHARS = 20_000  # input + output: longer examples are not diffed (difflib is quadratic)
_TOKEN = re.compile(r"\w+|\s+|[^\w\s]")
MAX_TOKEN_CHARS = 40


@dataclass(frozen=True)
class Edit:
    start: int  # in the input
    end: int
    replacement: str


def _tokens(text: str) -> tuple[list[str], list[int]]:
    toks, starts = [], []
    for m in _TOKEN.finditer(text):
        toks.append(m.group())
        starts.append(m.start())
    starts.append(len(text))
    return toks, starts


def rough_edits(source: str, target: str) -> list[Edit]:
    """Edits from a word-level diff (words, runs of spaces, single symbols), so a placeholder
    never aligns with single letters of the span it replaced."""
    src, s_at = _tokens(source)
    dst, d_at = _tokens(target)
    ops = difflib.SequenceMatcher(None, src, dst, autojunk=False).get_opcodes()
    edits: list[list[int]] = []  # token ranges [i1, i2, j1, j2]
    for tag, i1, i2, j1, j2 in ops:
        if tag == "equal":
            continue
        if edits and i1 - edits[-1][1] <= MAX_GAP and j1 - edits[-1][3] <= MAX_GAP:
            edits[-1][1], edits[-1][3] = i2, j2
        else:
            edits.append([i1, i2, j1, j2])
    return [Edit(s_at[i1], s_at[i2], target[d_at[j1] : d_at[j2]]) for i1, i2, j1, j2 in edits]


def alignable(source: str, target: str) -> bool:
    """Whether an example is short enough to be diffed (see :data:`MAX_ALIGN_CHARS`)."""
    return len(source) + len(target) <= MAX_ALIGN_CHARS


def placeholder_vocabulary(pairs: Sequence[tuple[str, str]], min_count: int = 2) -> list[str]:
    """Replacement texts seen in at least ``min_count`` examples and absent from those inputs
    (examples too long to diff are skipped)."""
    counts: Counter[str] = Counter()
    for source, target in pairs:
        if not alignable(source, target):
            continue
        seen = {e.replacement for e in rough_edits(source, target) if e.start < e.end}
        counts.update(r for r in seen if len(r) <= MAX_TOKEN_CHARS and r.strip() == r and r not in source)
    kept: list[str] = []
    for tok in sorted((t for t, n in counts.items() if n >= min_count and t), key=lambda t: (len(t), t)):
        if not any(k in tok for k in kept):  # "[EMAIL]." is "[EMAIL]" plus a misaligned period
            kept.append(tok)
    return sorted(kept, key=lambda t: (-len(t), t))


def _split_output(target: str, vocab: Sequence[str]) -> tuple[list[str], list[str]] | None:
    if not vocab:
        return None
    finder = re.compile("|".join(re.escape(t) for t in vocab))
    literals: list[str] = []
    tokens: list[str] = []
    pos = 0
    for m in finder.finditer(target):
        literals.append(target[pos : m.start()])
        tokens.append(m.group())
        pos = m.end()
    literals.append(target[pos:])
    return literals, tokens


def _readings(source: str, literals: Sequence[str]) -> tuple[list[str], list[str]] | None:
    """The shortest and the longest reading of ``source`` as literal₀ span₁ literal₁ … spanₖ
    literalₖ with every span non-empty (what ``(.+?)`` and ``(.+)`` groups would capture), or
    None. The shortest places every inner literal at its earliest possible occurrence, the longest
    at its latest: both are valid whenever any reading is, so no backtracking is needed."""
    head, tail = literals[0], literals[-1]
    if not source.startswith(head) or not source.endswith(tail) or len(source) < len(head) + len(tail):
        return None
    start, stop = len(head), len(source) - len(tail)  # the spans and inner literals lie in [start, stop)
    inner = literals[1:-1]
    early: list[int] = []  # where each inner literal begins
    pos = start
    for lit in inner:
        at = source.find(lit, pos + 1, stop)
        if at < 0:
            return None
        early.append(at)
        pos = at + len(lit)
    if pos >= stop:  # the last span would be empty
        return None
    late: list[int] = []
    end = stop
    for lit in reversed(inner):
        at = source.rfind(lit, start + 1, end - 1)  # non-empty spans on both sides
        if at < 0:
            return None
        late.append(at)
        end = at
    late.reverse()

    def cut(at: list[int]) -> list[str]:
        bounds = [start, *(x for a, lit in zip(at, inner, strict=True) for x in (a, a + len(lit))), stop]
        return [source[bounds[i] : bounds[i + 1]] for i in range(0, len(bounds), 2)]

    return cut(early), cut(late)


def spans_for(source: str, target: str, vocab: Sequence[str]) -> list[tuple[str, str]] | None:
    """[(placeholder, replaced input text)] for one example; None when it cannot be aligned
    unambiguously (or the output contains no placeholder: then [])."""
    split = _split_output(target, vocab)
    if split is None:
        return None
    literals, tokens = split
    if not tokens:
        return [] if source == target else None
    readings = _readings(source, literals)
    if readings is None or readings[0] != readings[1]:
        return None
    return list(zip(tokens, readings[0], strict=True))
