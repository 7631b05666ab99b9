"""Regexes induced from example spans, at several levels of generality.

A span is read as runs: digits, alphabetic words, and single literal characters. Spans with the
same sequence of run kinds form a group; a group becomes one alternative whose runs are

* ``strict``: digits ``\\d{lo,hi}`` and words by their case shape with observed lengths;
* ``loose``:  ``\\d+`` and ``[A-Za-z]+``;

in both, a word position whose values are all month names becomes any month name, and a word
position with few repeated values keeps them as literals (``ext``, ``Dr``). ``literal`` is the
alternation of the spans themselves (memorization, the last resort).
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from typing import Literal

from kolmbuild.recipes.library import LIBRARY, MONTH_PATTERN, MONTH_WORDS

Level = Literal["strict", "loose", "literal"]
MAX_GROUPS = 8
_RUN = re.compile(r"\d+|[A-Za-z]+|.", re.DOTALL)


def _runs(span: str) -> list[tuple[str, str]]:
    out = []
    for m in _RUN.finditer(span):
        t = m.group()
        if t.isdigit() and t.isascii():
            out.append(("d", t))
        elif t.isascii() and t.isalpha():
            out.append(("a", t))
        else:
            out.append(("=" + t, t))
    return out


def _range(lengths: Sequence[int]) -> str:
    lo, hi = min(lengths), max(lengths)
    return f"{{{lo}}}" if lo == hi else f"{{{lo},{hi}}}"


def _word(values: Sequence[str], level: Level) -> str:
    distinct = sorted(set(values))
    if all(v in MONTH_WORDS for v in distinct):
        return MONTH_PATTERN
    if len(distinct) <= 3 and len(values) >= 2 * len(distinct):
        return "(?:" + "|".join(re.escape(v) for v in sorted(distinct, key=lambda v: (-len(v), v))) + ")"
    if level == "loose":
        return "[A-Za-z]+"
    lengths = [len(v) for v in values]
    if all(v.isupper() for v in values):
        return "[A-Z]" + _range(lengths)
    if all(v.islower() for v in values):
        return "[a-z]" + _range(lengths)
    if all(v[0].isupper() and v[1:].islower() for v in values):
        return "[A-Z][a-z]" + _range([n - 1 for n in lengths]) if min(lengths) > 1 else "[A-Z][a-z]*"
    return "[A-Za-z]" + _range(lengths)


def _group(members: list[list[tuple[str, str]]], level: Level) -> str:
    parts = []
    for i, (kind, tok) in enumerate(members[0]):
        values = [m[i][1] for m in members]
        if kind == "d":
            parts.append(r"\d+" if level == "loose" else r"\d" + _range([len(v) for v in values]))
        elif kind == "a":
            parts.append(_word(values, level))
        else:
            parts.append(re.escape(tok))
    return "".join(parts)


def induce(spans: Sequence[str], level: Level) -> str | None:
    """One non-capturing regex matching every span, or None when they are too varied."""
    if not spans or any("\n" in s for s in spans):
        return None
    if level == "literal":
        return "(?:" + "|".join(re.escape(s) for s in sorted(set(spans), key=lambda s: (-len(s), s))) + ")"
    groups: dict[tuple[str, ...], list[list[tuple[str, str]]]] = {}
    for s in spans:
        runs = _runs(s)
        groups.setdefault(tuple(k for k, _ in runs), []).append(runs)
    if len(groups) > MAX_GROUPS:
        return None
    alts = sorted({_group(members, level) for members in groups.values()}, key=lambda a: (-len(a), a))
    return alts[0] if len(alts) == 1 else "(?:" + "|".join(alts) + ")"


def library_cover(spans: Sequence[str], min_share: float = 0.9) -> tuple[list[str], list[str]] | None:
    """Library entries (greedy set cover) explaining at least ``min_share`` of the spans, and the
    spans they leave unexplained; None when the library explains too little."""
    if not spans:
        return None
    compiled = {name: re.compile(p) for name, p in LIBRARY.items()}
    left = list(spans)
    chosen: list[str] = []
    while left:
        best, hits = None, 0
        for name, rx in compiled.items():
            if name in chosen:
                continue
            n = sum(1 for s in left if rx.fullmatch(s))
            if n > hits:
                best, hits = name, n
        if best is None:
            break
        chosen.append(best)
        left = [s for s in left if not compiled[best].fullmatch(s)]
    if (len(spans) - len(left)) < min_share * len(spans):
        return None
    return chosen, left
