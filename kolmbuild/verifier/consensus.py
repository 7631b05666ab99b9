"""Deciding an unlabelled input's label from k teacher samples, with no reference to compare to.

A sample is *valid* when every given verifier accepts it without a reference: the shape checks
(label set, JSON schema, the examples' output pattern, plausible length) and, when the task has
one, the user's Python ``verify(input, output, None)``. Valid samples vote (answers that differ
only by the verifier's normalization vote together). The winning answer is kept only when its
votes are a clear majority of *all* k samples: ``votes / k >= min_agreement`` (> 1/2, so two
answers can never both pass); invalid samples count against it. Everything else is rejected,
with the reason.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from kolmbuild.verifier.core import Verifier


@dataclass(frozen=True)
class Consensus:
    kept: bool
    output: Any  # the majority answer (parsed), None when no sample was valid
    votes: int  # samples giving that answer
    valid: int  # samples that passed every check
    k: int
    reason: str | None  # why it was rejected (None when kept)
    rejected: tuple[Any, ...]  # distinct other answers (invalid or outvoted), first seen first

    @property
    def agreement(self) -> float:
        return round(self.votes / self.k, 6) if self.k else 0.0


def _valid(verifiers: Sequence[Verifier], input: Any, sample: Any) -> bool:
    return all(v.check(input, sample, None) for v in verifiers)


def consensus(verifiers: Sequence[Verifier], input: Any, samples: Sequence[Any], min_agreement: float) -> Consensus:
    """The label the k ``samples`` agree on for ``input``, or why there is none (module doc).
    ``verifiers[0]`` decides which answers are the same (its vote key) and parses the output."""
    if not verifiers:
        raise ValueError("consensus needs at least one verifier")
    if not 0.5 < min_agreement <= 1:
        raise ValueError(f"min_agreement must be in (0.5, 1], got {min_agreement}")
    lead = verifiers[0]
    k = len(samples)
    keys = [lead.vote_key(s) for s in samples]
    ok = [_valid(verifiers, input, s) for s in samples]
    votes = Counter(key for key, good in zip(keys, ok, strict=True) if good)
    valid = sum(ok)
    if not votes:
        return Consensus(False, None, 0, 0, k, "no sample passed the checks", _distinct(lead, samples, keys, None))
    ranked = sorted(votes.items(), key=lambda kv: (-kv[1], keys.index(kv[0])))
    top_key, top = ranked[0]
    winner = lead.parse(samples[keys.index(top_key)])
    others = _distinct(lead, samples, keys, top_key)
    if top / k < min_agreement:
        runner_up = f", next {ranked[1][1]}" if len(ranked) > 1 else ""
        reason = (f"no clear majority: the top answer has {top} of {k} samples{runner_up} "
                  f"(agreement {top / k:.2f} < {min_agreement:.2f})")
        return Consensus(False, winner, top, valid, k, reason, others)
    return Consensus(True, winner, top, valid, k, None, others)


def _distinct(lead: Verifier, samples: Sequence[Any], keys: Sequence[str], chosen: str | None) -> tuple[Any, ...]:
    seen = {chosen}
    out = []
    for sample, key in zip(samples, keys, strict=True):
        if key not in seen:
            seen.add(key)
            out.append(lead.parse(sample))
    return tuple(out)
