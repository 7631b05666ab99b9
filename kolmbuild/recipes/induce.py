"""Shapes induced from example spans, at several levels of generality.

A span is read as runs: digits, alphabetic words, and single literal characters. Spans with the
same sequence of run kinds form a group; a group becomes alternatives (see
:mod:`kolmbuild.recipes.shape`) whose runs are

* ``strict``: digits ``[0-9]{lo,hi}`` and words by their case shape with observed lengths;
* ``loose``:  digits ``[0-9]+`` and words ``[A-Za-z]+``;

in both, a word position whose values are all month names becomes any month name, and a word
position with few repeated values keeps them as literals (``ext``, ``Dr``). ``literal`` is the
alternation of the spans themselves (memorization, the last resort).
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from typing import Literal

from kolmbuild.recipes.library import LIBRARY, MONTH_PATTERN, MONTH_WORDS, month_alts
from kolmbuild.recipes.shape import FLAGS, Alt, Shape

Level = Literal["strict", "loose", "literal"]
MAX_GROUPS = 8
_RUN = re.compile(r"\d+|[A-Za-z]+|.", re.DOTALL | re.ASCII)

# a run as a regex split into its first character class and the rest: (first, rest) or None
# for a run that needs its own alternatives (month names, literal word choices)
Piece = tuple[str, str]


def _runs(span: str) -> list[tuple[str, str]]:
    out = []
    for m in _RUN.finditer(span):
        t = m.group()
        if t.isdigit():
            out.append(("d", t))
        elif t.isalpha():
            out.append(("a", t))
        else:
            out.append(("=" + t, t))
    return out


def _rep(cls: str, lo: int, hi: int | None) -> str:
    if hi is None:
        return cls + ("*" if lo == 0 else "+" if lo == 1 else f"{{{lo},}}")
    if hi == 0:
        return ""
    if lo == hi:
        return cls if lo == 1 else f"{cls}{{{lo}}}"
    return f"{cls}{{{lo},{hi}}}"


def _class_of(char: str) -> str:
    return "[" + re.escape(char) + "]"


def _word_options(values: Sequence[str], level: Level) -> list[Piece] | str:
    """Pieces (first class, rest) for a word position; MONTH when it is a month name."""
    distinct = sorted(set(values))
    if all(v in MONTH_WORDS for v in distinct):
        return "MONTH"
    if len(distinct) <= 3 and len(values) >= 2 * len(distinct):
        return [(_class_of(v[0]), re.escape(v[1:])) for v in sorted(distinct, key=lambda v: (-len(v), v))]
    lengths = [len(v) for v in values]
    lo, hi = min(lengths), max(lengths)
    if level == "loose":
        return [("[A-Za-z]", "[A-Za-z]*")]
    if all(v.isupper() for v in values):
        return [("[A-Z]", _rep("[A-Z]", lo - 1, hi - 1))]
    if all(v.islower() for v in values):
        return [("[a-z]", _rep("[a-z]", lo - 1, hi - 1))]
    if all(v[0].isupper() and v[1:].islower() for v in values):
        return [("[A-Z]", _rep("[a-z]", lo - 1, hi - 1))]
    return [("[A-Za-z]", _rep("[A-Za-z]", lo - 1, hi - 1))]


def _piece_regex(kind: str, values: Sequence[str], level: Level) -> str:
    """A whole run (not the first) as one regex."""
    if kind == "d":
        return "[0-9]+" if level == "loose" else _rep("[0-9]", min(map(len, values)), max(map(len, values)))
    if kind == "a":
        opts = _word_options(values, level)
        if opts == "MONTH":
            return MONTH_PATTERN
        assert isinstance(opts, list)
        return opts[0][0] + opts[0][1] if len(opts) == 1 else "(?:" + "|".join(f + r for f, r in opts) + ")"
    return re.escape(values[0])


def _group_alts(members: list[list[tuple[str, str]]], level: Level) -> list[Alt]:
    kinds = [k for k, _ in members[0]]
    rest = "".join(_piece_regex(k, [m[i][1] for m in members], level) for i, k in enumerate(kinds) if i > 0)
    kind, values = kinds[0], [m[0][1] for m in members]
    if kind == "d":
        lo, hi = min(map(len, values)), max(map(len, values))
        head = "[0-9]*" if level == "loose" else _rep("[0-9]", lo - 1, hi - 1)
        return [Alt("[0-9]", head + rest)]
    if kind == "a":
        opts = _word_options(values, level)
        if opts == "MONTH":
            return month_alts(rest)
        assert isinstance(opts, list)
        return [Alt(f, r + rest) for f, r in opts]
    return [Alt(_class_of(values[0]), rest)]


def induce(spans: Sequence[str], level: Level) -> Shape | None:
    """A shape matching every span, or None when they are too varied (or hold a newline)."""
    if not spans or any("\n" in s for s in spans):
        return None
    if level == "literal":
        ordered = sorted(set(spans), key=lambda s: (-len(s), s))
        return Shape(tuple(Alt(_class_of(s[0]), re.escape(s[1:])) for s in ordered))
    groups: dict[tuple[str, ...], list[list[tuple[str, str]]]] = {}
    for s in spans:
        runs = _runs(s)
        groups.setdefault(tuple(k for k, _ in runs), []).append(runs)
    if len(groups) > MAX_GROUPS:
        return None
    alts: list[Alt] = []
    # longer groups first: at one position the first alternative that matches wins
    for members in sorted(groups.values(), key=lambda ms: (-max(len("".join(t for _, t in m)) for m in ms), _key(ms))):
        for alt in _group_alts(members, level):
            if alt not in alts:
                alts.append(alt)
    return Shape(tuple(alts))


def _key(members: list[list[tuple[str, str]]]) -> str:
    return "".join(k for k, _ in members[0])


def library_cover(spans: Sequence[str], min_share: float = 0.9, library: Mapping[str, Shape] = LIBRARY
                  ) -> tuple[list[str], list[str]] | None:
    """Entries of ``library`` (greedy set cover) explaining at least ``min_share`` of the spans,
    and the spans they leave unexplained; None when the library explains too little."""
    if not spans:
        return None
    compiled = {name: re.compile(shape.regex(), FLAGS) for name, shape in library.items()}
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
