"""Stage ``distill``: the verifier, and labels (gold, the teacher's verified best of k, and the
teacher's labels for unlabelled inputs that pass the reference-free checks).

Outputs (docs/architecture.md): ``verifier.json``, ``labels.jsonl`` (rows ``id, input, output,
source, verified``), ``preferences.jsonl`` (only when the teacher ran) and ``distill.json``.

* With no teacher the labels are the train rows as gold (unlabelled inputs stay unlabelled).
* With one, each train example gets k samples grounded on the passages recalled for its input; the
  verifier picks the winner; examples with no passing sample keep their gold label and are listed
  under ``no_passing_sample``.
* Each unlabelled input (ingest's ``unlabeled.jsonl``: ``task.unlabeled`` and accepted drift) gets
  k samples too, grounded the same way. With no reference, the shape checks, the user's verifier
  and self-consistency decide (:mod:`kolmbuild.verifier.consensus`); a kept answer joins the labels
  as ``source: teacher``. ``distill.json`` lists every unlabelled input: kept, agreement, and why
  it was rejected. The receipt's metrics carry only the counts (inputs are the user's data).

Every output is written only after the teacher is done, so a build stopped by the budget or a
failing endpoint leaves no output (the replies it paid for stay in the request cache).
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from kolmbuild.config.models import RecallSpec, ShapeSpec, TeacherSpec, VerifierSpec
from kolmbuild.data import Example, read_jsonl, write_jsonl
from kolmbuild.engine.stage import StageContext, StageResult
from kolmbuild.errors import BuildFailed, ConfigError, DataError
from kolmbuild.recall.index import Hit, open_index
from kolmbuild.stages.recall import spec_from
from kolmbuild.teacher.labels import Labelled, Unlabelled, gold_row, label_example, label_unlabeled
from kolmbuild.teacher.prompt import (
    build_requests,
    parse_answer,
    pick_shots,
    render,
    shot_pool,
    system_prompt,
)
from kolmbuild.teacher.runner import Teacher, TeacherStats
from kolmbuild.verifier import Verifier, synthesize

SHOTS = 2
LISTED_IDS = 50  # ids listed under no_passing_sample (the count is always complete)


@dataclass(frozen=True)
class Pending:
    """An unlabelled input from ingest's unlabeled.jsonl."""

    id: int
    input: Any
    line: int | None


def _train_examples(path: Path | None) -> list[Example]:
    if path is None:
        raise BuildFailed("distill: the ingest stage left no train.jsonl")
    examples = []
    for n, row in enumerate(read_jsonl(path), 1):
        try:
            examples.append(Example(int(row["id"]), row["input"], row["output"]))
        except (KeyError, TypeError, ValueError) as exc:
            raise DataError(f"{path}:{n}: train row needs id, input and output ({exc})") from None
    return examples


def _pending(path: Path | None) -> list[Pending]:
    if path is None:
        return []
    out = []
    for n, row in enumerate(read_jsonl(path), 1):
        try:
            line = row.get("line")
            out.append(Pending(int(row["id"]), row["input"], int(line) if line is not None else None))
        except (KeyError, TypeError, ValueError) as exc:
            raise DataError(f"{path}:{n}: unlabelled row needs id and input ({exc})") from None
    return out


def _recalled(index_path: Path | None, inputs: Sequence[Any], recall: RecallSpec) -> list[list[Hit]]:
    if index_path is None:
        return [[] for _ in inputs]
    with open_index(index_path) as index:
        return index.search_many([render(value) for value in inputs], recall.top_k)


def _write_json(path: Path, value: Any) -> None:
    path.write_text(json.dumps(value, sort_keys=True, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")


def _shape_checks(examples: list[Example], shape: ShapeSpec, verifier: Verifier, project_dir: Path) -> list[Verifier]:
    """The verifiers an unlabelled answer must pass: the task's, and with a user's Python verifier
    also the shape checks synthesized from the examples (the label set, a schema, a pattern)."""
    if verifier.mode != "python":
        return [verifier]
    try:
        return [synthesize(examples, shape, VerifierSpec(kind="auto"), project_dir), verifier]
    except ConfigError:  # the outputs have no shape to check: the user's verifier alone decides
        return [verifier]


@dataclass(frozen=True)
class TeacherRun:
    labelled: list[Labelled]
    unlabelled: list[Unlabelled]
    stats: TeacherStats


def _teacher_labels(
    ctx: StageContext, spec: TeacherSpec, examples: list[Example], pending: list[Pending], shape: ShapeSpec,
    verifier: Verifier,
) -> TeacherRun:
    recall = spec_from(RecallSpec, ctx.param("task.recall"), "task.recall")
    hits = _recalled(ctx.up("recall", "index.sqlite"), [e.input for e in examples] + [p.input for p in pending], recall)
    system = system_prompt(str(ctx.param("task.description") or ""), shape, spec.system_prompt)
    pool = shot_pool(examples, SHOTS)
    requests = []
    for example, found in zip(examples, hits[: len(examples)], strict=True):
        requests += build_requests(spec, system, example, found, pick_shots(pool, example, SHOTS))
    for item, found in zip(pending, hits[len(examples):], strict=True):
        # the shots are gold examples; an unlabelled input is never one of them
        target = Example(item.id, item.input, None)
        requests += build_requests(spec, system, target, found, pick_shots(pool, target, SHOTS))
    replies, stats = Teacher(spec, ctx.cache_dir, progress=ctx.progress, shared=ctx.shared).run(requests)
    k = spec.k
    samples = [[parse_answer(r.text, shape) for r in replies[i * k : (i + 1) * k]] for i in range(len(requests) // k)]
    labelled = [label_example(verifier, e, s) for e, s in zip(examples, samples[: len(examples)], strict=True)]
    checks = _shape_checks(examples, shape, verifier, ctx.project_dir)
    unlabelled = [
        label_unlabeled(checks, item.id, item.line, item.input, s, spec.min_agreement)
        for item, s in zip(pending, samples[len(examples):], strict=True)
    ]
    return TeacherRun(labelled, unlabelled, stats)


def _unlabeled_metrics(pending: list[Pending], decided: list[Unlabelled] | None) -> dict[str, Any]:
    if decided is None:
        return {"inputs": len(pending), "kept": 0, "rejected": 0, "not_labelled": len(pending)}
    kept = sum(1 for d in decided if d.row is not None)
    reasons: dict[str, int] = {}
    for d in decided:
        if d.row is None:
            head = str(d.report.get("reason", "")).split(":", 1)[0]
            reasons[head] = reasons.get(head, 0) + 1
    return {"inputs": len(pending), "kept": kept, "rejected": len(pending) - kept, "why_rejected": reasons}


def run(ctx: StageContext) -> StageResult:
    shape = spec_from(ShapeSpec, ctx.param("task.shape"), "task.shape")
    vspec = spec_from(VerifierSpec, ctx.param("task.verifier"), "task.verifier")
    raw_teacher = ctx.param("task.teacher")
    examples = _train_examples(ctx.up("ingest", "train.jsonl"))
    pending = _pending(ctx.up("ingest", "unlabeled.jsonl"))
    verifier = synthesize(examples, shape, vspec, ctx.project_dir)

    teacher: dict[str, Any] | None = None
    preferences: list[dict[str, Any]] | None = None
    decided: list[Unlabelled] | None = None
    failed: list[int] = []
    spent = 0.0
    if raw_teacher:
        spec = spec_from(TeacherSpec, raw_teacher, "task.teacher")
        got = _teacher_labels(ctx, spec, examples, pending, shape, verifier)
        decided = got.unlabelled
        rows = [item.row for item in got.labelled] + [d.row for d in decided if d.row is not None]
        preferences = [p for item in got.labelled for p in item.preferences] + [p for d in decided for p in d.preferences]
        failed = [item.row["id"] for item in got.labelled if not item.passed]
        spent = got.stats.spent_usd
        teacher = {"provider": spec.provider, "model": spec.model, "k": spec.k, **got.stats.to_json()}
        for example_id in failed[:LISTED_IDS]:
            ctx.progress.log(f"example {example_id}: no teacher sample passed the verifier; kept its gold label")
    else:
        rows = [gold_row(verifier, e) for e in examples]
        if pending:
            ctx.progress.log(f"{len(pending)} unlabelled input(s) stay unlabelled: the task has no teacher")

    metrics: dict[str, Any] = {
        "examples": len(examples),
        "labels": len(rows),
        "sources": {"gold": sum(r["source"] == "gold" for r in rows), "teacher": sum(r["source"] == "teacher" for r in rows)},
        "verified": sum(bool(r["verified"]) for r in rows),
        "verifier": verifier.mode,
        "teacher": teacher,
        "no_passing_sample": {"count": len(failed), "ids": failed[:LISTED_IDS]},
        "preferences": len(preferences) if preferences is not None else 0,
        "teacher_cost_usd": round(spent, 8),
    }
    report = dict(metrics)
    if pending:
        metrics["unlabeled"] = _unlabeled_metrics(pending, decided)
        report["unlabeled"] = {**metrics["unlabeled"], "per_input": [d.report for d in decided or ()]}
    _write_json(ctx.output("verifier.json"), verifier.to_json())
    write_jsonl(ctx.output("labels.jsonl"), rows)
    if preferences is not None:
        write_jsonl(ctx.output("preferences.jsonl"), preferences)
    _write_json(ctx.output("distill.json"), report)
    summary = f"{len(rows)} labels ({metrics['sources']['teacher']} from the teacher), verifier {verifier.mode}"
    if teacher is not None:
        summary += f"; teacher {teacher['calls']} calls, {teacher['cached']} cached, ${spent:.4f}"
        if failed:
            summary += f"; {len(failed)} examples with no passing sample"
    if pending:
        u = metrics["unlabeled"]
        summary += f"; unlabelled: {u['kept']} of {u['inputs']} kept" if decided is not None else "; unlabelled: none labelled (no teacher)"
    return StageResult(metrics, summary)
