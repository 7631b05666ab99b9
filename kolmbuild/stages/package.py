"""The package stage: upstream outputs → one deterministic, signed kolm/1 file (``artifact.kolm``).

Components come from the stages before it (held-out set, verifier, recipes, recall index, LoRA
adapter, shipped base, eval record); the manifest adds the composed task, the base model reference
from ``train.json``, the receipt chain (each stage's key and output CIDs, in pipeline order), the
compute block, the gates and the K-score with its terms. Everything but the compute block's measured
``actual`` is a function of the inputs: ``created`` is ``$SOURCE_DATE_EPOCH`` (or a fixed date),
receipts carry no durations, signatures are deterministic; ``actual`` comes from the run records
(the same on a rebuild from the cache) and is left out when ``$SOURCE_DATE_EPOCH`` is set. The
signing key is the configured one; the first build without one creates it in the user's config
folder and says so on stderr.
"""

from __future__ import annotations

import json
import os
import sys
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from kolmbuild.artifact import write_artifact
from kolmbuild.artifact.keys import resolve_hmac_key
from kolmbuild.artifact.receipts import COMPONENT_SOURCES
from kolmbuild.engine.stage import StageContext, StageReceipt, StageResult
from kolmbuild.errors import BuildFailed

OUTPUT = "artifact.kolm"

# (stage, output file, component name): the artifact layer's table, which verify checks too
SOURCES: tuple[tuple[str, str, str], ...] = tuple(
    (stage, output, component) for component, (stage, output) in COMPONENT_SOURCES.items()
)
BASE_KEYS = ("name", "sha256", "file", "revision", "quantize")
K_TERMS = ("A", "S", "L", "C", "V")


def gather_components(ctx: StageContext) -> dict[str, Path]:
    """Component name → upstream file, for each upstream output that was produced."""
    found: dict[str, Path] = {}
    for stage, filename, component in SOURCES:
        path = ctx.up(stage, filename)
        if path is not None:
            found[component] = path
    return found


def read_json(path: Path, what: str) -> dict[str, Any]:
    try:
        doc = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise BuildFailed(f"package: cannot read {what} ({path.name}): {exc}") from exc
    if not isinstance(doc, dict):
        raise BuildFailed(f"package: {what} ({path.name}) is not a JSON object")
    return doc


def base_reference(
    train_json: Path | None, task: Mapping[str, Any], decompose_json: Path | None = None
) -> dict[str, Any] | None:
    """The base model as ``train.json`` names it; the revision asked for in the task fills a gap.

    None for a recipe-only artifact: when nothing was trained and decompose reports that the
    recipes answer every held-out input, the runtime never loads a model, so the artifact names
    none (and needs none installed to run).
    """
    if train_json is None:
        return None
    record = read_json(train_json, "the train stage's record")
    if decompose_json is not None and record.get("trained") is False:
        if read_json(decompose_json, "the decompose stage's record").get("recipe_only") is True:
            return None
    base = record.get("base")
    if not isinstance(base, Mapping) or not isinstance(base.get("name"), str):
        return None
    ref = {k: base[k] for k in BASE_KEYS if base.get(k) is not None}
    asked = task.get("base") if isinstance(task.get("base"), Mapping) else {}
    if "revision" not in ref and asked.get("revision") and asked.get("name") == ref["name"]:
        ref["revision"] = asked["revision"]
    return ref


def upstream_receipts(ctx: StageContext) -> dict[str, StageReceipt]:
    """Receipts of the stages this one comes after, in the rule's order.

    Only declared upstream stages: another stage may or may not have finished by now (parallel
    builds), and the manifest must not depend on timing.
    """
    return {s: ctx.receipts[s] for s in ctx.upstream if s in ctx.receipts}


def metrics_of(ctx: StageContext) -> dict[str, Any]:
    """K and its five terms, from the evaluate stage's receipt (else its eval.json)."""
    source: Mapping[str, Any] = {}
    receipt = ctx.receipts.get("evaluate")
    if receipt is not None and "K" in receipt.metrics:
        source = receipt.metrics
    else:
        eval_json = ctx.up("evaluate", "eval.json")
        if eval_json is not None:
            source = read_json(eval_json, "the evaluate stage's record")
    if "K" not in source:
        return {}
    terms = source.get("terms") if isinstance(source.get("terms"), Mapping) else {}
    return {"K": source["K"], "terms": {t: terms[t] for t in K_TERMS if t in terms}}


def compute_of(backend: Mapping[str, Any], receipts: Mapping[str, StageReceipt]) -> dict[str, Any]:
    """The compute block from kolmbuild.compute when installed, else the backend's name and device.

    Its ``actual`` holds measured times (kept in each stage's run record, so a rebuild from the cache
    gives the same bytes); ``$SOURCE_DATE_EPOCH`` asks for a build that is bit-for-bit the same on
    any machine, so then they are left out (see docs/format.md)."""
    try:
        from kolmbuild.compute import compute_block
    except ImportError:
        return {"backend": backend.get("name"), "device": backend.get("device")}
    reproducible = bool(os.environ.get("SOURCE_DATE_EPOCH"))
    return dict(compute_block(dict(backend), dict(receipts), measured_values=not reproducible))


def _say(message: str) -> None:
    print(f"kolmbuild: {message}", file=sys.stderr, flush=True)


def run(ctx: StageContext) -> StageResult:
    # the manifest records the config: values from ${oc.env:…} stay interpolations, never values
    task = ctx.public_param("task")
    if not isinstance(task, Mapping):
        raise BuildFailed(f"package: target {ctx.target!r} has no task")
    backend = ctx.public_param("backend") or {}
    receipts = upstream_receipts(ctx)
    components = gather_components(ctx)
    ctx.progress.start("writing the artifact", total=1)
    written = write_artifact(
        ctx.output(OUTPUT),
        target=str(ctx.public_param("target") or ctx.target),
        version=str(task.get("version", "0.0.0")),
        task=task,
        components=components,
        base=base_reference(ctx.up("train", "train.json"), task, ctx.up("decompose", "decompose.json")),
        receipts=[r.to_json() for r in receipts.values()],
        compute=compute_of(backend, receipts),
        gates=ctx.public_param("gates") or {},
        metrics=metrics_of(ctx),
        hmac_key=resolve_hmac_key(),
        log=_say,
    )
    ctx.progress.advance(1)
    return StageResult(
        metrics={
            "manifest_cid": written.manifest_cid,
            "size": written.size,
            "components": sorted(components),
            "summary": f"{written.size} bytes, {len(components)} components",
        },
    )
