"""From k teacher samples to one label row and preference pairs, decided by the verifier.

Gold examples: the winner is the verifier's :func:`choose_winner` (best-verified sample, ties by
majority vote). A winner that passes against the example's reference output becomes a ``teacher``
label. When no sample passes, the example keeps its gold output as a ``gold`` label and is reported
(never is an unverified teacher answer kept). Preference pairs put the label above the distinct
failing samples.

Unlabelled inputs: there is no reference, so :func:`~kolmbuild.verifier.consensus` decides (shape
checks, the user's verifier, and a clear majority of the k samples). A kept answer becomes a
``teacher`` label; a rejected input gets no row, only its line in the report. Preference pairs put
the kept answer above the distinct samples that disagreed with it.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from kolmbuild.data.examples import Example
from kolmbuild.verifier import Verifier, choose_winner, consensus

MAX_REJECTED = 2  # preference pairs per example


@dataclass(frozen=True)
class Labelled:
    row: dict[str, Any]
    passed: bool  # some teacher sample verified against the reference
    preferences: tuple[dict[str, Any], ...]
    votes: int  # samples agreeing with the winner


def gold_row(verifier: Verifier, example: Example) -> dict[str, Any]:
    """The example as a gold label; ``verified`` = the output passes the verifier's shape checks."""
    return {
        "id": example.id,
        "input": example.input,
        "output": example.output,
        "source": "gold",
        "verified": bool(verifier.check(example.input, example.output)),
    }


def _rejected(verifier: Verifier, example: Example, samples: Sequence[Any], chosen_key: str) -> list[Any]:
    seen = {chosen_key}
    out: list[Any] = []
    for sample in samples:
        key = verifier.vote_key(sample)
        if key in seen or verifier.check(example.input, sample, example.output):
            continue
        seen.add(key)
        out.append(verifier.parse(sample))
        if len(out) == MAX_REJECTED:
            break
    return out


def label_example(verifier: Verifier, example: Example, samples: Sequence[Any]) -> Labelled:
    winner = choose_winner(verifier, example.input, samples, example.output)
    if winner is not None and winner.passed:
        row = {"id": example.id, "input": example.input, "output": winner.output, "source": "teacher", "verified": True}
        chosen = winner.output
    else:
        row = gold_row(verifier, example)
        chosen = example.output
    rejected = _rejected(verifier, example, samples, verifier.vote_key(chosen))
    prefs = tuple({"input": example.input, "chosen": chosen, "rejected": r} for r in rejected)
    passed = winner is not None and winner.passed
    return Labelled(row, passed, prefs, winner.votes if passed and winner is not None else 0)


@dataclass(frozen=True)
class Unlabelled:
    row: dict[str, Any] | None  # the teacher label, None when rejected
    preferences: tuple[dict[str, Any], ...]
    report: dict[str, Any]  # distill.json's line for this input


def label_unlabeled(
    verifiers: Sequence[Verifier], row_id: int, line: int | None, input: Any, samples: Sequence[Any], min_agreement: float
) -> Unlabelled:
    """The teacher label for an unlabelled input, decided without a reference (module doc)."""
    decided = consensus(verifiers, input, samples, min_agreement)
    report: dict[str, Any] = {"id": row_id, "kept": decided.kept, "agreement": decided.agreement,
                              "votes": decided.votes, "valid": decided.valid, "k": decided.k}  # fmt: skip
    if line is not None:
        report["line"] = line
    if not decided.kept:
        report["reason"] = decided.reason
        return Unlabelled(None, (), report)
    row = {"id": row_id, "input": input, "output": decided.output, "source": "teacher", "verified": True}
    prefs = tuple({"input": input, "chosen": decided.output, "rejected": r} for r in decided.rejected[:MAX_REJECTED])
    return Unlabelled(row, prefs, report)
