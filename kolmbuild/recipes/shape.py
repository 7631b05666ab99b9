"""The compiled form of span patterns, built for CPython's regex engine.

A placeholder's pattern is a :class:`Shape`: alternatives :class:`Alt` ``(first, rest)`` where
``first`` is one bracketed character class (``[0-9]``, ``[(]``) and ``rest`` a regex for what
follows, or an :class:`Anchored` shape (a run of ``left`` characters, a literal ``anchor``,
then ``right``), used for emails.

Why: ``re`` scans fastest when a pattern begins with one character class (it then skips
non-candidate characters in C). So all alternatives of all placeholders are fused into
``[F](?:(?<=f₁)(?<!B.)rest₁ ()|(?<=f₂)…)``: ``F`` is the union of the first classes, a one-char
lookbehind re-checks the alternative's own first class, the two-char lookbehind is the word
boundary before the match, and the empty group at each alternative's end says which placeholder
matched (``lastindex``). Anchored shapes run first as a split on their anchor character (found with
C-speed string search) and a left-strip of ``left`` characters, since no forward regex can start
an email quickly.

A :class:`Rare` part is for alternatives whose first character is too common to scan for (a
month name written in lower case: its initial would stop the scan at a third of all letters).
The fast pattern carries only its ``trigger``, a cheap alternative for what must follow it (the
day and year after the month); when the trigger fires, the text is first rewritten by the rare
``pattern`` (case-insensitive) and then scanned again, the trigger now inert.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

FLAGS = re.ASCII | re.DOTALL
BOUNDARY_CLASS = {"word": r"\w", "strict": r"[\w-]"}


@dataclass(frozen=True)
class Alt:
    first: str  # "[...]"
    rest: str

    def regex(self) -> str:
        return self.first + self.rest


@dataclass(frozen=True)
class Anchored:
    left: str  # "[...]": one character class, repeated one or more times, left of the anchor
    anchor: str  # one literal character
    right: str

    def regex(self) -> str:
        return f"{self.left}+{re.escape(self.anchor)}(?:{self.right})"


@dataclass(frozen=True)
class Rare:
    trigger: Alt  # in the fast pattern: matches (a part of) what follows the rare text
    pattern: str  # the rare text itself, matched case-insensitively in a second pass

    def regex(self) -> str:
        return f"(?i:{self.pattern})"


@dataclass(frozen=True)
class Shape:
    alts: tuple[Alt, ...] = ()
    anchored: Anchored | None = None
    rare: tuple[Rare, ...] = ()

    def regex(self) -> str:
        """The plain regex this shape stands for (no boundaries; triggers are only signals)."""
        parts = [a.regex() for a in self.alts] + ([self.anchored.regex()] if self.anchored else [])
        parts += [r.regex() for r in self.rare]
        return "(?:" + "|".join(parts) + ")"

    def union(self, other: Shape) -> Shape | None:
        if self.anchored and other.anchored:
            return None
        return Shape(self.alts + other.alts, self.anchored or other.anchored, self.rare + other.rare)

    def to_json(self) -> dict[str, Any]:
        doc: dict[str, Any] = {"alts": [[a.first, a.rest] for a in self.alts]}
        if self.anchored:
            doc["anchored"] = [self.anchored.left, self.anchored.anchor, self.anchored.right]
        if self.rare:
            doc["rare"] = [[r.trigger.first, r.trigger.rest, r.pattern] for r in self.rare]
        return doc

    @classmethod
    def from_json(cls, doc: dict[str, Any]) -> Shape:
        alts = tuple(Alt(str(f), str(r)) for f, r in doc.get("alts", []))
        anch = doc.get("anchored")
        anchored = Anchored(str(anch[0]), str(anch[1]), str(anch[2])) if anch else None
        rare = tuple(Rare(Alt(str(f), str(r)), str(p)) for f, r, p in doc.get("rare", []))
        for a in (*alts, *(r.trigger for r in rare)):
            if not (a.first.startswith("[") and a.first.endswith("]")):
                raise ValueError(f"first class must be bracketed, got {a.first!r}")
        if anchored and len(anchored.anchor) != 1:
            raise ValueError(f"anchor must be one character, got {anchored.anchor!r}")
        return cls(alts, anchored, rare)


def plain_regex(shape: Shape, boundary: str) -> str:
    """``shape`` with its word boundaries, as one ordinary regex (the naive form)."""
    b = BOUNDARY_CLASS[boundary]
    return f"(?<!{b}){shape.regex()}(?!{b})"
