"""The evaluate stage: score the would-be artifact on its test rows and enforce the gate.

The runtime is built from the very files the package stage will ship (``Predictor.from_parts``);
each test row (ingest's ``heldout.jsonl``, seen by no earlier choice) is answered and judged by the
synthesized verifier: that is K, and the gate applies to it. The select rows (which chose the
recipes) are scored the same way and reported apart as the *selection score*: it is optimistic by
construction, and the gap between the two says how much the choices fit the select rows.

Latency and cost come from the reference-machine model (docs/k-score.md) so eval.json and the
receipt are functions of the inputs; the measured wall-clock p50 only goes to the build log. The
receipt also records, per test row, the hashes of its input and of the runtime's output
(:mod:`kolmbuild.evaluate.replay`) for ``kolmbuild replay``. Below the gate the stage raises
:class:`~kolmbuild.errors.GateFailed` naming the short terms: no eval.json, so no package, so no
artifact at the output path.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from kolmbuild.atomic import write_atomic
from kolmbuild.compare.records import percentile
from kolmbuild.config.models import BaseModelSpec
from kolmbuild.data import read_jsonl
from kolmbuild.engine.stage import StageContext, StageResult
from kolmbuild.errors import BuildFailed, DataError
from kolmbuild.evaluate import cases_from_rows, gate_error, run_cases, score
from kolmbuild.evaluate.profile import file_sizes, gates_of, model_profile, teacher_of
from kolmbuild.evaluate.replay import replay_record
from kolmbuild.evaluate.score import KScore, SizeInfo
from kolmbuild.hashing import canonical_json
from kolmbuild.stages.package import base_reference, gather_components, read_json


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


def locate_parts(ctx: StageContext, task: Mapping[str, Any]) -> Shipped:
    """The files the package stage will ship, and the base GGUF the model route runs on: the
    shipped one, else the one the manifest will name (package's ``base_reference`` of train.json,
    which the runtime resolves on the user's machine), else None (no model: recipes only)."""
    files = gather_components(ctx)  # the package stage's own list, so the two never disagree
    files.pop("eval", None)
    if "base_gguf" in files:
        return Shipped(files, files["base_gguf"], external_base=False)
    ref = base_reference(ctx.up("train", "train.json"), task, ctx.up("decompose", "decompose.json"))
    if ref is None:
        if "adapter_gguf" in files:
            raise BuildFailed("evaluate: the train stage exported an adapter but train.json names no base model")
        return Shipped(files, None, external_base=False)
    from kolmbuild.models import resolve_base

    spec = BaseModelSpec(name=ref["name"], revision=ref.get("revision"))
    base = resolve_base(spec, base_dir=ctx.project_dir)
    if base.gguf_path is None:
        raise BuildFailed(f"evaluate: the base model {base.name!r} has no GGUF for the runtime")
    return Shipped(files, base.gguf_path, external_base=True)


def _load_verifier(path: Path | None) -> Any:
    from kolmbuild.verifier import Verifier

    if path is None:
        raise BuildFailed("evaluate: the distill stage left no verifier.json")
    return Verifier.from_json(read_json(path, "the distill stage's verifier"))


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


def selection_score(ks: KScore) -> dict[str, Any]:
    """The score on the select rows, as eval.json and the receipt report it (never gated)."""
    return {"K": ks.K, "terms": ks.terms.to_json(), "cases": ks.n, "passed": ks.passed,
            "pass_rate": round(ks.passed / ks.n, 6) if ks.n else 0.0}  # fmt: skip


def run(ctx: StageContext) -> StageResult:
    task: Mapping[str, Any] = ctx.param("task") or {}
    gates = gates_of(ctx.param("gates"), where="gates")
    heldout = ctx.up("ingest", "heldout.jsonl")
    if heldout is None:
        raise BuildFailed("evaluate: the ingest stage left no heldout.jsonl")
    cases = cases_from_rows(read_jsonl(heldout))
    if not cases:
        raise DataError(
            f"target {ctx.target!r}: the held-out set is empty, nothing to score",
            hint="add rows to task.eval, or raise task.split.holdout",
        )
    select_path = ctx.up("ingest", "select.jsonl")
    select_cases = cases_from_rows(read_jsonl(select_path)) if select_path is not None else []
    verifier = _load_verifier(ctx.up("distill", "verifier.json"))
    shipped = locate_parts(ctx, task)
    with _predictor(ctx, task, shipped) as predictor:  # closing it frees llama.cpp
        results = run_cases(predictor.predict, verifier.check, cases, ctx.progress)
        selected = run_cases(predictor.predict, verifier.check, select_cases, ctx.progress) if select_cases else []
    has_index = "index" in shipped.files

    def scored(judged: list[Any]) -> KScore:
        return score(
            judged,
            size=shipped.size,
            model=model_profile(task, weight_bytes=shipped.weight_bytes, has_index=has_index),
            teacher=teacher_of(task, has_index=has_index),
            gates=gates,
        )

    ks = scored(results)
    selection = selection_score(scored(selected)) if selected else None
    measured = percentile([r.measured_ms for r in results], 50)
    line = ks.line() + (f"; selection K {selection['K']:.4f} on {selection['cases']} select rows" if selection else "")
    ctx.progress.log(f"{line}; measured p50 {measured:.3f} ms on this machine (not recorded)")
    if not ks.ok:
        errors = [r for r in results if r.error]
        detail = [f"{len(errors)} case(s) raised: {errors[0].error}"] if errors else []
        failed = [str(f["id"]) for f in ks.to_json()["cases"]["failures"][:10]]
        if failed:
            detail.append(f"failing held-out ids: {', '.join(failed)}{' …' if ks.n - ks.passed > 10 else ''}")
        raise gate_error(ctx.target, ks.K, ks.shortfalls, detail)
    record = ks.to_json()
    metrics = ks.metrics()
    if selection is not None:
        record["selection"] = metrics["selection"] = selection
    metrics["replay"] = replay_record(results)
    write_atomic(ctx.output("eval.json"), canonical_json(record))
    return StageResult(metrics=metrics, summary=line)
