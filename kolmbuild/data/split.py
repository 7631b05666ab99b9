"""The seeded, deterministic held-out split used when a task has no eval set.

Each example's place is decided by sha256(seed, canonical input): the split does not depend on
file order or Python's ``random``, and adding a row never moves another row across the split.
"""

from __future__ import annotations

import hashlib
import math
from collections.abc import Sequence

from kolmbuild.data.examples import Example
from kolmbuild.hashing.jcs import canonical_json


def _rank(seed: int, example: Example) -> bytes:
    return hashlib.sha256(f"kolm-split:{seed}:".encode() + canonical_json(example.input)).digest()


def seeded_split(examples: Sequence[Example], holdout: float, seed: int) -> tuple[list[Example], list[Example]]:
    """(train, heldout), each in the original order. At least one row on each side when n ≥ 2."""
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
