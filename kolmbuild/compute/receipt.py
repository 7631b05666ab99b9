"""The compute block a build's manifest signs: deterministic (no wall clock, no absolute paths)."""

from __future__ import annotations

import math
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from kolmbuild.compute.job import DEFAULT_EVAL_TOKENS, Job, model_params
from kolmbuild.compute.picker import PICKER_VERSION
from kolmbuild.compute.quote import SLACK, quote
from kolmbuild.compute.registry import REGISTRY_SCHEMA
from kolmbuild.compute.settings import settings_for
from kolmbuild.config.models import BackendSpec

ROW_TOKENS = 64  # assumed tokens per row when no stage reported a token count


def _metrics(receipts: Mapping[str, Any], stage: str) -> Mapping[str, Any]:
    r = receipts.get(stage)
    m = getattr(r, "metrics", None) if r is not None else None
    return m if isinstance(m, Mapping) else {}


def job_from_receipts(receipts: Mapping[str, Any]) -> Job:
    ingest, train, ev = _metrics(receipts, "ingest"), _metrics(receipts, "train"), _metrics(receipts, "evaluate")
    rows = int(ingest.get("rows") or 0) if isinstance(ingest.get("rows"), (int, float)) else 0
    raw_base = train.get("base")
    base: Mapping[str, Any] = raw_base if isinstance(raw_base, Mapping) else {}
    params, _ = model_params(str(base.get("name") or "smollm2"), Path("/nonexistent"))  # names only
    tokens = train.get("tokens")
    tokens = int(tokens) if isinstance(tokens, (int, float)) else rows * ROW_TOKENS
    epochs = 1.0
    trained = bool(train.get("trained", False))
    eval_cases = ev.get("cases")
    eval_cases = int(eval_cases) if isinstance(eval_cases, (int, float)) else int(math.ceil(rows * 0.2))
    return Job(name="build", model_params=params, train_tokens=tokens if trained else 0, epochs=epochs,
               eval_cases=eval_cases, eval_tokens_per_case=DEFAULT_EVAL_TOKENS, kind="train",
               origin=f"receipts: {rows} rows, {tokens} tokens, trained={trained}")


def compute_block(backend: Mapping[str, Any], receipts: Mapping[str, Any]) -> dict[str, Any]:
    if hasattr(backend, "backend") and not isinstance(backend, Mapping):  # a TargetConfig (architecture.md form)
        backend = backend.backend
    spec = backend if isinstance(backend, BackendSpec) else BackendSpec.model_validate(dict(backend))
    job = job_from_receipts(receipts)
    q = quote(spec, job)
    train = _metrics(receipts, "train")
    raw = train.get("compute")
    reported: Mapping[str, Any] = raw if isinstance(raw, Mapping) else {}
    actual = float(reported["cost_usd"]) if isinstance(reported.get("cost_usd"), (int, float)) else None
    actual_s = reported.get("duration_seconds")
    return {
        "backend": spec.name,
        "kind": spec.kind,
        "device": str(train.get("device") or settings_for(spec).device),
        "gpu": settings_for(spec).gpu,
        "duration_seconds": float(actual_s) if isinstance(actual_s, (int, float)) else round(q.duration_s, 1),
        "cost_usd": actual if actual is not None else round(q.cost_usd, 6),
        "price": {"basis": spec.pricing.basis, "rate_usd": spec.pricing.rate_usd},
        "catalog_date": spec.catalog_date,
        "estimate": {"duration_seconds": round(q.duration_s, 1), "cost_usd": round(q.cost_usd, 6),
                     "basis": q.basis, "work": job.to_json()},
        "actual": {"cost_usd": actual},
        "provenance": {
            "picker_version": PICKER_VERSION, "registry_schema": REGISTRY_SCHEMA, "slack": SLACK,
            # reported by a stage that rented a machine (ids and image digests, never credentials)
            **{k: str(reported[k]) for k in ("instance_id", "offer_id", "image", "image_digest", "run_id", "host")
               if k in reported},
        },
    }
