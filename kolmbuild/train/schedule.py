"""The deterministic order of training batches, so an interrupted run resumes on the same data."""

from __future__ import annotations

import math
import random
from dataclasses import dataclass
from typing import Literal

Phase = Literal["sft", "dpo", "orpo"]


@dataclass(frozen=True)
class Step:
    phase: Phase
    indices: tuple[int, ...]  # rows of the phase's dataset (labels for sft, pairs otherwise)


def phase_steps(n_rows: int, epochs: float, batch_size: int, max_steps: int | None) -> int:
    """``max_steps`` when set (it overrides epochs, as in transformers), else
    ceil(epochs * rows / batch); 0 when there are no rows."""
    if n_rows == 0:
        return 0
    return max_steps if max_steps else max(1, math.ceil(epochs * n_rows / batch_size))


def phase_batches(phase: Phase, n_rows: int, n_steps: int, batch_size: int, seed: int) -> list[Step]:
    """``n_steps`` batches over ``n_rows`` rows: each epoch is a fresh seeded permutation, cut into
    batches of ``batch_size`` (an epoch's last batch may be short)."""
    steps: list[Step] = []
    epoch = 0
    salt = {"sft": 0, "dpo": 1, "orpo": 2}[phase]
    while len(steps) < n_steps:
        order = list(range(n_rows))
        random.Random(f"{seed}:{salt}:{epoch}").shuffle(order)
        for start in range(0, n_rows, batch_size):
            if len(steps) == n_steps:
                break
            steps.append(Step(phase, tuple(order[start : start + batch_size])))
        epoch += 1
    return steps


def build_schedule(
    n_labels: int, n_pairs: int, *, preference: str, epochs: float, batch_size: int, max_steps: int | None, seed: int
) -> list[Step]:
    """The whole run: supervised steps on the labels, then DPO steps on the pairs (``dpo``); ORPO
    steps on the pairs alone (``orpo``: its loss carries the supervised term). ``max_steps``
    sets the length of each phase."""
    if preference == "orpo" and n_pairs:
        return phase_batches("orpo", n_pairs, phase_steps(n_pairs, epochs, batch_size, max_steps), batch_size, seed)
    sft = phase_batches("sft", n_labels, phase_steps(n_labels, epochs, batch_size, max_steps), batch_size, seed)
    if preference == "dpo" and n_pairs:
        sft += phase_batches("dpo", n_pairs, phase_steps(n_pairs, epochs, batch_size, max_steps), batch_size, seed)
    return sft
