"""Stage ``ingest``: validate the examples, eval set and unlabelled inputs; fix the three-way split.

Gold rows play one of three parts (docs/k-score.md, "Honest K"):

* ``train.jsonl``   — learned from (distill, decompose, train);
* ``select.jsonl``  — chooses among recipes and early-stops training, never trained on;
* ``heldout.jsonl`` — the test rows: they score K and ship in the artifact; no choice sees them.

With an eval set, the eval rows are the test rows and the examples split into train and select;
without one, the examples split three ways (``task.split``). Each row's part comes from a hash of
its input and the seed (:mod:`kolmbuild.data.split`), so adding rows never moves another row.
Ids: examples 0…n-1 in file order, eval rows after them, unlabelled inputs after those.

``unlabeled.jsonl`` (only when ``task.unlabeled`` is set) holds ``{"id","input","line"}`` for each
distinct unlabelled input that is not also a gold input (the teacher labels them in distill; a
copy of a test input would leak it into training). ``ingest.json`` is the metrics, including which
ids played which part.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from kolmbuild.config.models import LimitsSpec, ShapeSpec, SplitSpec
from kolmbuild.data import (
    Example,
    Split,
    UnlabeledSet,
    id_ranges,
    load_examples,
    load_unlabeled,
    three_way_split,
    write_json,
    write_jsonl,
)
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


def split_rows(examples: list[Example], evals: list[Example] | None, split: SplitSpec) -> tuple[Split, dict[str, Any]]:
    """The three parts, and the split record. Ids: examples 0…n-1, eval rows after them."""
    numbered = [Example(i, e.input, e.output) for i, e in enumerate(examples)]
    if evals is not None:
        parts = three_way_split(numbered, 0.0, split.select, split.seed)
        test = tuple(Example(len(numbered) + i, e.input, e.output) for i, e in enumerate(evals))
        parts = Split(parts.train, parts.select, test, parts.borrowed)
        record: dict[str, Any] = {"kind": "eval-file", "seed": split.seed, "select": split.select}
    else:
        parts = three_way_split(numbered, split.holdout, split.select, split.seed)
        record = {"kind": "seeded", "seed": split.seed, "holdout": split.holdout, "select": split.select}
    if parts.borrowed:
        record["borrowed"] = list(parts.borrowed)
    return parts, record


def _unlabeled_rows(found: UnlabeledSet, gold: set[bytes], first_id: int) -> tuple[list[dict[str, Any]], int]:
    rows: list[dict[str, Any]] = []
    overlap = 0
    for item in found.inputs:
        if canonical_json(item.input) in gold:
            overlap += 1
            continue
        rows.append({"id": first_id + len(rows), "input": item.input, "line": item.line})
    return rows, overlap


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
    unlabeled_path = _local(ctx, "task.unlabeled")
    ctx.progress.start("validate examples", total=1 + bool(eval_path) + bool(unlabeled_path))
    examples = load_examples(examples_path, shape, limit)
    ctx.progress.advance()
    evals = load_examples(eval_path, shape, limit) if eval_path else None
    if evals is not None:
        ctx.progress.advance()
    found = load_unlabeled(unlabeled_path, shape, limit) if unlabeled_path else None
    if found is not None:
        ctx.progress.advance()
    parts, record = split_rows(examples, evals, split)
    if not parts.test:
        raise DataError(f"{ctx.param('task.examples')}: {len(examples)} example(s) leave nothing to hold out; "
                        "add examples or a task.eval file")
    if not parts.select:  # too few examples for a selection set: choices are made on the train rows
        parts = Split(parts.train, parts.train, parts.test, parts.borrowed)
        record["select_from"] = "train"
        ctx.progress.log(f"warning: {len(examples)} example(s) leave no rows to select recipes with; "
                         "the train rows select them (K is still scored on test rows only)")
    train_inputs = {canonical_json(e.input) for e in parts.train}
    overlap = sum(1 for e in parts.test if canonical_json(e.input) in train_inputs)
    write_jsonl(ctx.output("train.jsonl"), [e.to_row() for e in parts.train])
    write_jsonl(ctx.output("select.jsonl"), [e.to_row() for e in parts.select])
    write_jsonl(ctx.output("heldout.jsonl"), [e.to_row() for e in parts.test])
    rows = {"train": len(parts.train), "select": len(parts.select), "test": len(parts.test)}
    metrics: dict[str, Any] = {
        "rows": rows,
        "split": record,
        "parts": {name: id_ranges([e.id for e in parts.part(name)]) for name in ("train", "select", "test")},
        "shape": {"input": shape.input, "output": shape.output},
        "heldout_in_train": overlap,
    }
    if found is not None:
        gold = train_inputs | {canonical_json(e.input) for e in (*parts.select, *parts.test)}
        unlabeled, gold_overlap = _unlabeled_rows(found, gold, len(examples) + len(evals or ()))
        write_jsonl(ctx.output("unlabeled.jsonl"), unlabeled)
        rows["unlabeled"] = len(unlabeled)
        metrics["unlabeled"] = {"inputs": len(unlabeled), "duplicates": found.duplicates, "gold": gold_overlap}
        if gold_overlap:
            ctx.progress.log(f"{gold_overlap} unlabelled input(s) are gold inputs already; the gold label is used")
    write_json(ctx.output("ingest.json"), metrics)
    summary = f"{rows['train']} train, {rows['select']} select, {rows['test']} test ({record['kind']})"
    if found is not None:
        summary += f"; {rows['unlabeled']} unlabelled"
    if overlap:
        ctx.progress.log(f"warning: {overlap} held-out input(s) also appear in the examples")
    return StageResult(metrics=metrics, summary=summary)
