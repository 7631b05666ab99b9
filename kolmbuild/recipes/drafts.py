"""The deterministic-token draft table for generative tasks.

For every context (the last 1…:data:`MAX_CONTEXT` characters of an output so far, digits
shaped as ``0``) seen at least :data:`MIN_SUPPORT` times in the accepted outputs, the table
keeps the longest continuation that *every* occurrence shares (JSON keys and braces, fixed
phrasings). ``propose(text_so_far)`` returns that continuation for the longest known context,
the outputs' shared prefix when nothing is written yet, or ``""``. The runtime feeds it to
llama.cpp as a draft; the model still verifies every drafted token.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

MAX_CONTEXT = 8
MAX_CONTINUATION = 48
MIN_SUPPORT = 3
MAX_ENTRIES = 2000
MAX_OUTPUTS = 2000  # outputs read (the first ones), to bound learning time
MAX_OUTPUT_CHARS = 4096  # characters read of each output: the table holds ~MAX_CONTEXT entries per character
_SHAPE = str.maketrans("0123456789", "0000000000")


def shape(text: str) -> str:
    return text.translate(_SHAPE)


def output_text(output: Any) -> str:
    """How an output reads as generated text: JSON with sorted keys, as training renders answers
    and the runtime decodes them (:func:`kolmbuild.runtime.shape.input_text`), so a draft proposes
    keys in the order a trained adapter writes them."""
    return output if isinstance(output, str) else json.dumps(output, ensure_ascii=False, sort_keys=True)


def _common_prefix(a: str, b: str) -> str:
    n = min(len(a), len(b))
    i = 0
    while i < n and a[i] == b[i]:
        i += 1
    return a[:i]


@dataclass(frozen=True)
class DraftTable:
    start: str = ""
    entries: tuple[tuple[str, str], ...] = ()
    _table: dict[str, str] = field(init=False, repr=False, compare=False)
    _longest: int = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "_table", dict(self.entries))
        object.__setattr__(self, "_longest", max((len(c) for c, _ in self.entries), default=0))

    def __len__(self) -> int:
        return len(self.entries)

    def propose(self, text_so_far: str) -> str:
        if len(text_so_far) < len(self.start) and self.start.startswith(text_so_far):
            return self.start[len(text_so_far) :]
        tail = shape(text_so_far[-self._longest :]) if self._longest else ""
        for n in range(len(tail), 0, -1):
            cont = self._table.get(tail[-n:])
            if cont is not None:
                return cont
        return ""

    def to_json(self) -> dict[str, Any]:
        return {"start": self.start, "entries": [[c, t] for c, t in self.entries]}

    @classmethod
    def from_json(cls, doc: dict[str, Any] | None) -> DraftTable:
        if not doc:
            return cls()
        return cls(str(doc.get("start", "")), tuple((str(c), str(t)) for c, t in doc.get("entries", [])))


def learn_drafts(outputs: Sequence[Any]) -> DraftTable:
    texts = [output_text(o) for o in outputs[:MAX_OUTPUTS]]
    ended = [len(t) <= MAX_OUTPUT_CHARS for t in texts]  # a cut output does not end where it is cut
    texts = [t[:MAX_OUTPUT_CHARS] for t in texts]
    if len(texts) < MIN_SUPPORT:
        return DraftTable()
    start = texts[0]
    for t in texts[1:]:
        start = _common_prefix(start, t)
    start = start[:MAX_CONTINUATION]
    shared: dict[str, str] = {}
    support: dict[str, int] = {}
    for t, whole in zip(texts, ended, strict=True):
        shaped = shape(t)
        for p in range(1, len(t)):
            follower = t[p : p + MAX_CONTINUATION]
            for n in range(1, min(MAX_CONTEXT, p) + 1):
                ctx = shaped[p - n : p]
                if ctx in shared:
                    shared[ctx] = _common_prefix(shared[ctx], follower)
                    support[ctx] += 1
                else:
                    shared[ctx], support[ctx] = follower, 1
        # an output ending right after a context means that context has no forced continuation
        for n in range(1, min(MAX_CONTEXT, len(t)) + 1 if whole else 0):
            ctx = shaped[len(t) - n :]
            shared[ctx] = ""
            support[ctx] = support.get(ctx, 0) + 1
    kept = {c: s for c, s in shared.items() if s and support[c] >= MIN_SUPPORT}
    # a context whose shorter suffix already proposes the same continuation is redundant
    entries = [(c, s) for c, s in kept.items() if not (len(c) > 1 and kept.get(c[1:]) == s)]
    entries.sort(key=lambda cs: (-support[cs[0]] * len(cs[1]), cs[0]))
    return DraftTable(start, tuple(sorted(entries[:MAX_ENTRIES])))
