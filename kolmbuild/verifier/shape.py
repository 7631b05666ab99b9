"""Regex shape of patterned strings: runs of digits / upper / lower letters, literal punctuation.

``2024-01-05`` and ``1999-12-31`` share the shape ``\\d{4}-\\d{2}-\\d{2}``; ``ORD-0042`` and
``ORD-12345`` share ``[A-Z]{3}-\\d{4,5}``. A set of strings is *patterned* when every one
contains a digit and at most :data:`MAX_SHAPES` shapes cover them all.
"""

from __future__ import annotations

import re
from collections.abc import Sequence

MAX_SHAPES = 3
_RUN = re.compile(r"\d+|[A-Z]+|[a-z]+|.", re.DOTALL)
_CLASS = {"d": r"\d", "U": "[A-Z]", "L": "[a-z]"}


def _runs(s: str) -> list[tuple[str, str]]:
    out: list[tuple[str, str]] = []
    for m in _RUN.finditer(s):
        t = m.group()
        if t.isdigit() and t.isascii():
            out.append(("d", t))
        elif t.isascii() and t.isalpha():
            out.append(("U" if t.isupper() else "L", t))
        else:
            out.append(("=", t))
    return out


def _signature(runs: list[tuple[str, str]]) -> tuple[str, ...]:
    return tuple(c if c != "=" else "=" + t for c, t in runs)


def _group_regex(members: list[list[tuple[str, str]]]) -> str:
    parts: list[str] = []
    for i, (cls, tok) in enumerate(members[0]):
        if cls == "=":
            parts.append(re.escape(tok))
            continue
        lengths = [len(m[i][1]) for m in members]
        lo, hi = min(lengths), max(lengths)
        parts.append(_CLASS[cls] + (f"{{{lo}}}" if lo == hi else f"{{{lo},{hi}}}"))
    return "".join(parts)


def shape_regex(strings: Sequence[str]) -> str | None:
    """An anchored regex every string fully matches, or None when the strings are not patterned."""
    if not strings or not all(any(c.isdigit() for c in s) for s in strings):
        return None
    groups: dict[tuple[str, ...], list[list[tuple[str, str]]]] = {}
    for s in strings:
        runs = _runs(s)
        groups.setdefault(_signature(runs), []).append(runs)
    if len(groups) > MAX_SHAPES:
        return None
    alts = sorted(_group_regex(members) for members in groups.values())
    body = alts[0] if len(alts) == 1 else "(?:" + "|".join(alts) + ")"
    return "^" + body + "$"
