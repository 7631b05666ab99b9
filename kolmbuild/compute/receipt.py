"""The compute block a build's manifest signs: what was estimated, and what was measured.

Two kinds of value live in it, and the block never names one as the other:

* **estimated** (``estimate``, ``price``, ``catalog_date``): a function of the config and of the
  stage receipts' metrics, so the same inputs give the same values on every machine;
* **measured** (``actual``): the wall time of the stages that ran on the backend and what that time
  was billed. Each stage's time is measured once, when it runs, and kept in its run record; a cache
  hit reuses the record, so rebuilding from the cache gives the same bytes. Two independent builds
  measure different times: see docs/format.md (and ``measured=False``, which the package stage passes
  when ``$SOURCE_DATE_EPOCH`` asks for a bit-for-bit reproducible build).

A backend on which nothing ran (a recipe-only build on a GPU backend: train stayed here) is named
as the one chosen, with ``ran: []``, no device, no GPU and no ``actual``.

No wall clock is read here, no absolute path is written.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from kolmbuild.compute.job import DEFAULT_EVAL_TOKENS, Job, model_params
from kolmbuild.compute.picker import PICKER_VERSION
from kolmbuild.compute.quote import SLACK, quote
from kolmbuild.compute.registry import REGISTRY_SCHEMA
from kolmbuild.compute.settings import settings_for
from kolmbuild.config.models import BackendSpec

ROW_TOKENS = 64  # assumed tokens per row when no stage reported a token count
PROVENANCE_KEYS = ("instance_id", "offer_id", "image", "image_digest", "run_id", "host")
OMITTED = "left out: $SOURCE_DATE_EPOCH asks for a bit-for-bit reproducible build (measured times differ per run)"


def _metrics(receipts: Mapping[str, Any], stage: str) -> Mapping[str, Any]:
    r = receipts.get(stage)
    m = getattr(r, "metrics", None) if r is not None else None
    return m if isinstance(m, Mapping) else {}


def _number(v: Any) -> float | None:
    return float(v) if isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v) else None


def train_rows(ingest: Mapping[str, Any]) -> int:
    """The rows training saw, from ingest's ``rows`` (``{"train": n, "select": …, "test": …}``; an
    older record held one number)."""
    rows = ingest.get("rows")
    if isinstance(rows, Mapping):
        rows = rows.get("train")
    n = _number(rows)
    return int(n) if n is not None else 0


def job_from_receipts(receipts: Mapping[str, Any]) -> Job:
    ingest, train, ev = _metrics(receipts, "ingest"), _metrics(receipts, "train"), _metrics(receipts, "evaluate")
    rows = train_rows(ingest)
    labelled = _number(train.get("examples"))  # the labels train fit (distill may add teacher-labelled rows)
    trained_rows = int(labelled) if labelled is not None else rows
    raw_base = train.get("base")
    base: Mapping[str, Any] = raw_base if isinstance(raw_base, Mapping) else {}
    params, _ = model_params(str(base.get("name") or "smollm2"), Path("/nonexistent"))  # names only
    reported = _number(train.get("tokens"))
    tokens = int(reported) if reported is not None else trained_rows * ROW_TOKENS
    trained = train.get("trained") is True
    cases = _number(ev.get("cases"))
    eval_cases = int(cases) if cases is not None else int(math.ceil(rows * 0.2))
    return Job(name="build", model_params=params, train_tokens=tokens if trained else 0, epochs=1.0,
               eval_cases=eval_cases, eval_tokens_per_case=DEFAULT_EVAL_TOKENS, kind="train",
               origin=f"receipts: {rows} train rows, {tokens} tokens, trained={trained}")


# ---------------------------------------------------------------------------------- measured


@dataclass(frozen=True)
class Measured:
    """What ran on one backend, as measured: each stage's wall time (from its run record) and the
    cost billed for it. ``cost_usd`` is None when the pricing is not by time and no provider
    reported a cost (a per-token backend that never said what it charged)."""

    backend: str
    stages: dict[str, float] = field(default_factory=dict)
    cost_usd: float | None = 0.0
    cost_basis: str = ""

    @property
    def duration_s(self) -> float:
        return sum(self.stages.values())

    def to_json(self) -> dict[str, Any]:
        return {
            "duration_seconds": round(self.duration_s, 3),
            "cost_usd": None if self.cost_usd is None else round(self.cost_usd, 6),
            "cost_basis": self.cost_basis,
            "stages": {s: round(t, 3) for s, t in sorted(self.stages.items())},
        }


def _remote_record(receipt: Any) -> Mapping[str, Any] | None:
    m = getattr(receipt, "metrics", None)
    rec = m.get("compute") if isinstance(m, Mapping) else None
    return rec if isinstance(rec, Mapping) and rec.get("ran") == "remote" else None


def time_cost(spec: BackendSpec, seconds: float) -> float | None:
    """``seconds`` of the backend priced at its catalog rate; None when it is not priced by time."""
    p = spec.pricing
    if p.basis == "per-hour":
        return seconds / 3600.0 * p.rate_usd
    if p.basis == "per-second":
        return seconds * p.rate_usd
    return None


def _rate_text(spec: BackendSpec) -> str:
    p = spec.pricing
    return f"${p.rate_usd:.2f}/h" if p.basis == "per-hour" else f"${p.rate_usd:g}/{p.basis.removeprefix('per-')}"


def measured(backend: Mapping[str, Any] | BackendSpec, receipts: Mapping[str, Any]) -> Measured | None:
    """The stages of ``receipts`` that ran on ``backend`` and what they cost; None when none did.

    A stage ran on a remote backend when its metrics carry that backend's compute record
    (``ran: remote``, written by :mod:`kolmbuild.compute.stage_remote`); it ran on a local backend
    when it ran in-process (no such record). Its cost is the one billed for it (the rental ledger's
    start and stop times × the provider's rate, or the provider's reported cost) when the record
    carries one, else its measured time × the catalog rate (self-hosted and local machines).
    """
    spec = backend if isinstance(backend, BackendSpec) else BackendSpec.model_validate(dict(backend))
    stages: dict[str, float] = {}
    billed: list[float | None] = []
    sources: set[str] = set()
    for name, r in receipts.items():
        rec = _remote_record(r)
        ran_here = rec.get("backend") == spec.name if rec is not None else spec.kind == "local"
        if not ran_here:
            continue
        seconds = _number(getattr(r, "duration_s", None)) or 0.0
        stages[name] = seconds
        cost = _number(rec.get("cost_usd")) if rec is not None else None
        if cost is not None:
            billed.append(cost)
            sources.add(str(rec.get("cost_source") or "billed") if rec is not None else "billed")
        else:
            billed.append(time_cost(spec, seconds))
            sources.add(f"measured time x {_rate_text(spec)}")
    if not stages:
        return None
    total = None if any(c is None for c in billed) else sum(c for c in billed if c is not None)
    basis = "; ".join(sorted(sources)) if total is not None else \
        f"unknown: {spec.pricing.basis} pricing and no cost reported by {spec.name}"
    return Measured(spec.name, stages, total, basis)


def teacher_cost(receipts: Mapping[str, Any]) -> float:
    """What the teacher's labels cost when they were bought (cached replies included), from distill."""
    m = _metrics(receipts, "distill")
    teacher = m.get("teacher")
    bought = _number(teacher.get("labels_cost_usd")) if isinstance(teacher, Mapping) else None
    if bought is None:
        bought = _number(m.get("teacher_cost_usd"))
    return bought or 0.0


# ------------------------------------------------------------------------------------ block


def compute_block(backend: Mapping[str, Any], receipts: Mapping[str, Any], *, measured_values: bool = True
                  ) -> dict[str, Any]:
    """The manifest's compute block. ``measured_values=False`` leaves ``actual`` out (saying why),
    for builds that must be bit-for-bit reproducible across machines."""
    if hasattr(backend, "backend") and not isinstance(backend, Mapping):  # a TargetConfig (architecture.md form)
        backend = backend.backend
    spec = backend if isinstance(backend, BackendSpec) else BackendSpec.model_validate(dict(backend))
    job = job_from_receipts(receipts)
    q = quote(spec, job)
    settings = settings_for(spec)
    ran = measured(spec, receipts)
    block: dict[str, Any] = {"backend": spec.name, "kind": spec.kind, "ran": sorted(ran.stages) if ran else []}
    if ran is not None:  # only a backend that ran something is named as the device
        device = _metrics(receipts, "train").get("device") if "train" in ran.stages else None
        block["device"] = str(device or settings.device)
        block["gpu"] = settings.gpu
    block.update({
        "price": {"basis": spec.pricing.basis, "rate_usd": spec.pricing.rate_usd},
        "catalog_date": spec.catalog_date,
        "estimate": {"duration_seconds": round(q.duration_s, 1), "cost_usd": round(q.cost_usd, 6),
                     "basis": q.basis, "work": job.to_json()},
    })
    if ran is None:
        block["actual"] = None
        block["note"] = f"nothing ran on {spec.name}: every stage ran here or came from the cache"
    else:
        block["actual"] = ran.to_json() if measured_values else {"omitted": OMITTED}
    provenance: dict[str, Any] = {"picker_version": PICKER_VERSION, "registry_schema": REGISTRY_SCHEMA, "slack": SLACK}
    for r in receipts.values():  # ids of the machines rented (never credentials)
        rec = _remote_record(r)
        if rec is not None and rec.get("backend") == spec.name:
            provenance.update({k: str(rec[k]) for k in PROVENANCE_KEYS if k in rec})
    block["provenance"] = provenance
    return block
