"""Stage ``ingest``: validate the examples (and eval set) and fix the train / held-out split.

Outputs ``train.jsonl`` and ``heldout.jsonl`` (rows ``{"id","input","output"}``, canonical JSON)
and ``ingest.json`` (the metrics). With an eval set, the held-out rows are the eval rows and
their ids continue after the training ids; without one, a seeded split of the examples
(``task.split``) holds out a share, recorded as ``{"kind": "seeded", "seed", "holdout"}``.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from kolmbuild.config.models import LimitsSpec, ShapeSpec, SplitSpec
from kolmbuild.data import Example, load_examples, seeded_split, write_json, write_jsonl
from kolmbuild.engine.stage import StageContext, StageResult
from kolmbuild.errors import DataError
from kolmbuild.hashing.jcs import canonical_json
from kolmbuild.stages.recall import spec_from


def _local(ctx: StageContext, key: str) -> Path | None:
    declared = ctx.param(key)
    if declared is None:
        return None
    path = ctx.inputs.get(key)
    if path is None:
        raise DataError(f"{key}: {declared}: ingest reads local files only (fetch remote examples first)")
    return path


def split_rows(
    examples: list[Example], evals: list[Example] | None, split: SplitSpec
) -> tuple[list[Example], list[Example], dict[str, Any]]:
    """(train, heldout, split record). Ids: training rows 0…n-1, eval rows after them."""
    if evals is not None:
        train = [Example(i, e.input, e.output) for i, e in enumerate(examples)]
        held = [Example(len(train) + i, e.input, e.output) for i, e in enumerate(evals)]
        return train, held, {"kind": "eval-file"}
    numbered = [Example(i, e.input, e.output) for i, e in enumerate(examples)]
    train, held = seeded_split(numbered, split.holdout, split.seed)
    return train, held, {"kind": "seeded", "seed": split.seed, "holdout": split.holdout}


def run(ctx: StageContext) -> StageResult:
    shape = spec_from(ShapeSpec, ctx.param("task.shape"), "task.shape")
    split = spec_from(SplitSpec, ctx.param("task.split"), "task.split")
    try:
        declared_limits = ctx.param("task.limits")
    except KeyError:  # a project's own ingest rule that predates task.limits: the default limits
        declared_limits = None
    limit = spec_from(LimitsSpec, declared_limits, "task.limits").max_example_bytes
    examples_path = _local(ctx, "task.examples")
    if examples_path is None:
        raise DataError("task.examples is not set")
    eval_path = _local(ctx, "task.eval")
    ctx.progress.start("validate examples", total=2 if eval_path else 1)
    examples = load_examples(examples_path, shape, limit)
    ctx.progress.advance()
    evals = load_examples(eval_path, shape, limit) if eval_path else None
    if evals is not None:
        ctx.progress.advance()
    train, held, record = split_rows(examples, evals, split)
    if not held:
        raise DataError(f"{ctx.param('task.examples')}: {len(examples)} example(s) leave nothing to hold out; "
                        "add examples or a task.eval file")
    train_inputs = {canonical_json(e.input) for e in train}
    overlap = sum(1 for e in held if canonical_json(e.input) in train_inputs)
    write_jsonl(ctx.output("train.jsonl"), [e.to_row() for e in train])
    write_jsonl(ctx.output("heldout.jsonl"), [e.to_row() for e in held])
    metrics = {
        "rows": {"train": len(train), "heldout": len(held)},
        "split": record,
        "shape": {"input": shape.input, "output": shape.output},
        "heldout_in_train": overlap,
    }
    write_json(ctx.output("ingest.json"), metrics)
    summary = f"{len(train)} train, {len(held)} held-out ({record['kind']})"
    if overlap:
        ctx.progress.log(f"warning: {overlap} held-out input(s) also appear in the examples")
    return StageResult(metrics=metrics, summary=summary)

