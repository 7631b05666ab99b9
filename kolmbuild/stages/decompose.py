"""Stage ``decompose``: learn the recipe pack from verified labels and verify it on held-out rows.

Reads ``labels.jsonl`` and ``verifier.json`` (distill) and ``select.jsonl`` (ingest: the rows that
choose recipes; the test rows in ``heldout.jsonl`` score K and are never seen here); writes
``recipes.json`` (``RecipePack.to_json()``) and ``decompose.json`` (per-recipe coverage and
accuracy on the select rows, whether each was kept, and the pack's totals).
"""

from __future__ import annotations

import json
from pathlib import Path

from kolmbuild.config.models import RecipesSpec, ShapeSpec
from kolmbuild.data import Example, read_jsonl, write_json
from kolmbuild.engine.stage import StageContext, StageResult
from kolmbuild.errors import BuildFailed
from kolmbuild.recipes import learn
from kolmbuild.stages.recall import spec_from
from kolmbuild.verifier import Verifier


def _rows(path: Path | None, what: str) -> list[Example]:
    if path is None:
        raise BuildFailed(f"decompose: the upstream stage left no {what}")
    return [Example(int(r["id"]), r["input"], r["output"]) for r in read_jsonl(path) if r.get("verified", True)]


def run(ctx: StageContext) -> StageResult:
    spec = spec_from(RecipesSpec, ctx.param("task.recipes"), "task.recipes")
    shape = spec_from(ShapeSpec, ctx.param("task.shape"), "task.shape")
    verifier_path = ctx.up("distill", "verifier.json")
    if verifier_path is None:
        raise BuildFailed("decompose: the distill stage left no verifier.json")
    verifier = Verifier.from_json(json.loads(verifier_path.read_text(encoding="utf-8")))
    train = _rows(ctx.up("distill", "labels.jsonl"), "labels.jsonl")
    heldout = _rows(ctx.up("ingest", "select.jsonl"), "select.jsonl")  # choose on select rows, never test
    ctx.progress.start("learn recipes", total=None)
    pack = learn(train, heldout, verifier, spec, shape)
    write_json(ctx.output("recipes.json"), pack.to_json())
    report = dict(pack.report)
    # the pack's held-out totals also at the top level: the train stage's "auto" reads them there
    report["coverage"], report["accuracy"] = report["pack"]["coverage"], report["pack"]["accuracy"]
    write_json(ctx.output("decompose.json"), report)
    kept = [r.kind for r in pack.recipes]
    p = report["pack"]
    summary = (
        f"recipes {'+'.join(kept) or 'none'}: coverage {p['coverage']:.0%}, "
        f"accuracy {'-' if p['accuracy'] is None else format(p['accuracy'], '.0%')} on {p['heldout']} held-out"
    )
    metrics = {
        "kept": kept,
        "coverage": p["coverage"],
        "accuracy": p["accuracy"],
        "recipe_only": report["recipe_only"],
        "drafts": report["drafts"],
    }
    return StageResult(metrics=metrics, summary=summary)
