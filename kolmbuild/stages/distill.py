"""Stage ``distill``: the verifier, and labels (gold, or the teacher's verified best of k).

Outputs (docs/architecture.md): ``verifier.json``, ``labels.jsonl`` (rows ``id, input, output,
source, verified``), ``preferences.jsonl`` (only when the teacher ran) and ``distill.json`` (also
the stage metrics, with ``teacher_cost_usd``: what this build paid the teacher). With no teacher
the labels are the train rows as gold. With one, each train example gets k samples grounded on
the passages recalled for its input; the verifier picks the winner; examples with no passing
sample keep their gold label and are listed under ``no_passing_sample``.

Every output is written only after the teacher is done, so a build stopped by the budget or a
failing endpoint leaves no output (the replies it paid for stay in the request cache).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from kolmbuild.config.models import RecallSpec, ShapeSpec, TeacherSpec, VerifierSpec
from kolmbuild.data import Example, read_jsonl, write_jsonl
from kolmbuild.engine.stage import StageContext, StageResult
from kolmbuild.errors import BuildFailed, DataError
from kolmbuild.recall.index import Hit, open_index
from kolmbuild.stages.recall import spec_from
from kolmbuild.teacher.labels import Labelled, gold_row, label_example
from kolmbuild.teacher.prompt import build_requests, parse_answer, pick_shots, render, system_prompt
from kolmbuild.teacher.runner import Teacher, TeacherStats
from kolmbuild.verifier import Verifier, synthesize

SHOTS = 2
LISTED_IDS = 50  # ids listed under no_passing_sample (the count is always complete)


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


def _recalled(index_path: Path | None, examples: list[Example], recall: RecallSpec) -> list[list[Hit]]:
    if index_path is None:
        return [[] for _ in examples]
    with open_index(index_path) as index:
        return index.search_many([render(e.input) for e in examples], recall.top_k)


def _write_json(path: Path, value: Any) -> None:
    path.write_text(json.dumps(value, sort_keys=True, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")


def _teacher_labels(
    ctx: StageContext, spec: TeacherSpec, examples: list[Example], shape: ShapeSpec, verifier: Verifier
) -> tuple[list[Labelled], TeacherStats]:
    recall = spec_from(RecallSpec, ctx.param("task.recall"), "task.recall")
    hits = _recalled(ctx.up("recall", "index.sqlite"), examples, recall)
    system = system_prompt(str(ctx.param("task.description") or ""), shape, spec.system_prompt)
    requests = []
    for example, found in zip(examples, hits, strict=True):
        requests += build_requests(spec, system, example, found, pick_shots(examples, example, SHOTS))
    replies, stats = Teacher(spec, ctx.cache_dir, progress=ctx.progress).run(requests)
    labelled = []
    for i, example in enumerate(examples):
        samples = [parse_answer(r.text, shape) for r in replies[i * spec.k : (i + 1) * spec.k]]
        labelled.append(label_example(verifier, example, samples))
    return labelled, stats


def run(ctx: StageContext) -> StageResult:
    shape = spec_from(ShapeSpec, ctx.param("task.shape"), "task.shape")
    vspec = spec_from(VerifierSpec, ctx.param("task.verifier"), "task.verifier")
    raw_teacher = ctx.param("task.teacher")
    examples = _train_examples(ctx.up("ingest", "train.jsonl"))
    verifier = synthesize(examples, shape, vspec, ctx.project_dir)

    teacher: dict[str, Any] | None = None
    preferences: list[dict[str, Any]] | None = None
    failed: list[int] = []
    spent = 0.0
    if raw_teacher:
        spec = spec_from(TeacherSpec, raw_teacher, "task.teacher")
        labelled, stats = _teacher_labels(ctx, spec, examples, shape, verifier)
        rows = [item.row for item in labelled]
        preferences = [p for item in labelled for p in item.preferences]
        failed = [item.row["id"] for item in labelled if not item.passed]
        spent = stats.spent_usd
        teacher = {"provider": spec.provider, "model": spec.model, "k": spec.k, **stats.to_json()}
        for example_id in failed[:LISTED_IDS]:
            ctx.progress.log(f"example {example_id}: no teacher sample passed the verifier; kept its gold label")
    else:
        rows = [gold_row(verifier, e) for e in examples]

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
    _write_json(ctx.output("verifier.json"), verifier.to_json())
    write_jsonl(ctx.output("labels.jsonl"), rows)
    if preferences is not None:
        write_jsonl(ctx.output("preferences.jsonl"), preferences)
    _write_json(ctx.output("distill.json"), metrics)
    summary = f"{len(rows)} labels ({metrics['sources']['teacher']} from the teacher), verifier {verifier.mode}"
    if teacher is not None:
        summary += f"; teacher {teacher['calls']} calls, {teacher['cached']} cached, ${spent:.4f}"
        if failed:
            summary += f"; {len(failed)} examples with no passing sample"
    return StageResult(metrics, summary)
