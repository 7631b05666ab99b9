"""The evaluate stage: score the would-be artifact on its held-out cases and enforce the gate.

The runtime is built from the very files the package stage will ship (``Predictor.from_parts``);
each held-out row is answered and judged by the synthesized verifier. Latency and cost come from
the reference-machine model (docs/k-score.md) so eval.json and the receipt are functions of the
inputs; the measured wall-clock p50 only goes to the build log. Below the gate the stage raises
:class:`~kolmbuild.errors.GateFailed` naming the short terms: no eval.json, so no package, so no
artifact at the output path.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from kolmbuild.artifact.format import COMPONENTS
from kolmbuild.compare.records import percentile
from kolmbuild.config.models import BaseModelSpec
from kolmbuild.data import read_jsonl
from kolmbuild.engine.stage import StageContext, StageResult
from kolmbuild.errors import BuildFailed, DataError
from kolmbuild.evaluate import cases_from_rows, gate_error, run_cases, score
from kolmbuild.evaluate.profile import file_sizes, gates_of, model_profile, teacher_of
from kolmbuild.evaluate.score import SizeInfo
from kolmbuild.hashing import canonical_json
from kolmbuild.migrate.atomic import write_bytes_atomic

# upstream file name -> component name (eval.json is this stage's own output)
_SHIPPED = {kind.filename: name for name, kind in COMPONENTS.items() if name != "eval"}


@dataclass(frozen=True)
class Shipped:
    """The component files the package stage will put in the artifact, and a base model the
    runtime needs that the artifact does not carry."""

    files: Mapping[str, Path]
    base_gguf: Path | None
    external_base: bool

    @property
    def size(self) -> SizeInfo:
        external = self.base_gguf.stat().st_size if self.external_base and self.base_gguf else 0
        return SizeInfo(file_sizes(self.files), external)

    @property
    def weight_bytes(self) -> int:
        if self.base_gguf is None:
            return 0
        adapter = self.files.get("adapter_gguf")
        return self.base_gguf.stat().st_size + (adapter.stat().st_size if adapter else 0)


def shipped_files(upstream: Mapping[str, Mapping[str, Path]]) -> dict[str, Path]:
    """Upstream outputs that become components, by component name."""
    found: dict[str, Path] = {}
    for outputs in upstream.values():
        for name, path in outputs.items():
            comp = _SHIPPED.get(name)
            if comp is not None:
                found[comp] = path
    return found


def _trained(train_json: Path | None) -> bool:
    if train_json is None:
        return False
    try:
        doc = json.loads(train_json.read_text(encoding="utf-8"))
    except (OSError, json.JSONDecodeError) as exc:
        raise BuildFailed(f"evaluate: cannot read train.json from the train stage: {exc}") from exc
    return bool(isinstance(doc, dict) and doc.get("trained"))


def locate_parts(ctx: StageContext, task: Mapping[str, Any]) -> Shipped:
    """Which files ship, and the base GGUF the model route runs on (None: recipe-only)."""
    files = shipped_files(ctx.upstream)
    if "base_gguf" in files:
        return Shipped(files, files["base_gguf"], external_base=False)
    if "adapter_gguf" in files or _trained(ctx.up("train", "train.json")):
        from kolmbuild.models import resolve_base

        base = resolve_base(BaseModelSpec.model_validate(task.get("base") or {}), base_dir=ctx.project_dir)
        if base.gguf_path is None:
            raise BuildFailed(f"evaluate: the base model {base.name!r} has no GGUF for the runtime")
        return Shipped(files, base.gguf_path, external_base=True)
    return Shipped(files, None, external_base=False)


def _load_verifier(path: Path | None) -> Any:
    from kolmbuild.verifier import Verifier

    if path is None:
        raise BuildFailed("evaluate: the distill stage left no verifier.json")
    try:
        doc = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, json.JSONDecodeError) as exc:
        raise BuildFailed(f"evaluate: cannot read verifier.json: {exc}") from exc
    return Verifier.from_json(doc)


def _predictor(ctx: StageContext, task: Mapping[str, Any], shipped: Shipped) -> Any:
    from kolmbuild.runtime import Predictor, RuntimeParts
    from kolmbuild.runtime.parts import load_recipes

    recipes = shipped.files.get("recipes")
    parts = RuntimeParts(
        target=ctx.target,
        task=task,
        recipes=load_recipes(recipes) if recipes is not None else None,
        base_gguf=shipped.base_gguf,
        adapter_gguf=shipped.files.get("adapter_gguf"),
        index=shipped.files.get("index"),
        drift_log=None,  # evaluation is not traffic: no drift logging
    )
    return Predictor.from_parts(parts)


def run(ctx: StageContext) -> StageResult:
    task: Mapping[str, Any] = ctx.param("task") or {}
    gates = gates_of(ctx.param("gates"), where="gates")
    heldout = ctx.up("ingest", "heldout.jsonl")
    if heldout is None:
        raise BuildFailed("evaluate: the ingest stage left no heldout.jsonl")
    cases = cases_from_rows(read_jsonl(heldout))
    if not cases:
        raise DataError(f"target {ctx.target!r}: the held-out set is empty, nothing to score", hint="add rows to task.eval, or raise task.split.holdout")
    verifier = _load_verifier(ctx.up("distill", "verifier.json"))
    shipped = locate_parts(ctx, task)
    predictor = _predictor(ctx, task, shipped)
    results = run_cases(predictor.predict, verifier.check, cases, ctx.progress)
    has_index = "index" in shipped.files
    ks = score(
        results,
        size=shipped.size,
        model=model_profile(task, weight_bytes=shipped.weight_bytes, has_index=has_index),
        teacher=teacher_of(task, has_index=has_index),
        gates=gates,
    )
    measured = percentile([r.measured_ms for r in results], 50)
    ctx.progress.log(f"{ks.line()}; measured p50 {measured:.3f} ms on this machine (not recorded)")
    if not ks.ok:
        errors = [r for r in results if r.error]
        detail = [f"{len(errors)} case(s) raised: {errors[0].error}"] if errors else []
        failed = [str(f["id"]) for f in ks.to_json()["cases"]["failures"][:10]]
        if failed:
            detail.append(f"failing held-out ids: {', '.join(failed)}{' …' if ks.n - ks.passed > 10 else ''}")
        raise gate_error(ctx.target, ks.K, ks.shortfalls, detail)
    write_bytes_atomic(ctx.output("eval.json"), canonical_json(ks.to_json()))
    return StageResult(metrics=ks.metrics(), summary=ks.line())
