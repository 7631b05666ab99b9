"""Seeded, deterministic splits of the gold rows: train, select and test.

Each example's place comes from one number, ``u = sha256("kolm-split:<seed>:" + canonical input)``
read as a fraction in [0, 1). With a test share ``t`` and a select share ``s``: ``u < t`` is test,
``t <= u < t + s`` is select, the rest is train. A row's part depends only on its own input and
the seed, never on file order, Python's ``random`` or the other rows, so adding or removing rows
never moves another row to another part.

Only tiny sets need more: when a part would be empty, the row whose ``u`` lies nearest to that
part's band, taken from a part that has rows to spare, is moved into it (recorded as
``borrowed``); that choice can change when rows are added.
"""

from __future__ import annotations

import hashlib
import math
from collections.abc import Sequence
from dataclasses import dataclass

from kolmbuild.data.examples import Example
from kolmbuild.hashing.jcs import canonical_json

PARTS = ("train", "select", "test")


def _rank(seed: int, example: Example) -> bytes:
    return hashlib.sha256(f"kolm-split:{seed}:".encode() + canonical_json(example.input)).digest()


def position(seed: int, example: Example) -> float:
    """The example's place in [0, 1): the first 8 bytes of its seeded hash, as a fraction."""
    return int.from_bytes(_rank(seed, example)[:8], "big") / 2**64


def seeded_split(examples: Sequence[Example], holdout: float, seed: int) -> tuple[list[Example], list[Example]]:
    """(train, heldout) by rank: the ``ceil(n · holdout)`` rows with the lowest hash are held out.
    Kept for callers that want an exact share; the build uses :func:`three_way_split`."""
    if not 0 < holdout < 1:
        raise ValueError(f"holdout must be in (0, 1), got {holdout}")
    n = len(examples)
    if n < 2:
        return list(examples), []
    k = min(n - 1, max(1, math.ceil(n * holdout)))
    ranked = sorted(range(n), key=lambda i: _rank(seed, examples[i]))
    held = set(ranked[:k])
    train = [e for i, e in enumerate(examples) if i not in held]
    heldout = [e for i, e in enumerate(examples) if i in held]
    return train, heldout


@dataclass(frozen=True)
class Split:
    """The parts, each in the original order, and the parts that had to borrow a row."""

    train: tuple[Example, ...]
    select: tuple[Example, ...]
    test: tuple[Example, ...]
    borrowed: tuple[str, ...] = ()

    def part(self, name: str) -> tuple[Example, ...]:
        return {"train": self.train, "select": self.select, "test": self.test}[name]


def three_way_split(examples: Sequence[Example], test: float, select: float, seed: int) -> Split:
    """Split ``examples`` into train / select / test by their seeded position (module doc).

    ``test`` 0 means the task has an eval set (the test set): the examples go to train and select
    only. A part that would be empty borrows its nearest row from a part with two or more; with
    too few rows it stays empty and the caller decides.
    """
    if not 0 <= test < 1 or not 0 < select < 1 or test + select >= 1:
        raise ValueError(f"bad split shares: test {test}, select {select}")
    where: dict[int, str] = {}
    pos = [position(seed, e) for e in examples]
    for i, u in enumerate(pos):
        where[i] = "test" if u < test else "select" if u < test + select else "train"
    borrowed: list[str] = []
    bands = {"train": (test + select, 1.0), "test": (0.0, test), "select": (test, test + select)}
    for part in ["train", "test", "select"] if test > 0 else ["train", "select"]:
        if part in where.values():
            continue
        lo, hi = bands[part]
        sizes = {name: sum(1 for p in where.values() if p == name) for name in PARTS}
        donors = [i for i, p in where.items() if sizes[p] >= 2]  # a part keeps at least one row
        if not donors:
            continue
        nearest = min(donors, key=lambda i: (lo - pos[i] if pos[i] < lo else pos[i] - hi, i))
        where[nearest] = part
        borrowed.append(part)
    parts = {name: tuple(e for i, e in enumerate(examples) if where[i] == name) for name in PARTS}
    return Split(parts["train"], parts["select"], parts["test"], tuple(borrowed))


def id_ranges(ids: Sequence[int]) -> list[list[int]]:
    """Sorted ids as inclusive ``[first, last]`` runs: ``[0,1,2,5]`` → ``[[0,2],[5,5]]`` (compact in a manifest)."""
    out: list[list[int]] = []
    for i in sorted(ids):
        if out and i == out[-1][1] + 1:
            out[-1][1] = i
        else:
            out.append([i, i])
    return out
