"""A sweep's record of one point (a row of ``summary.json``): what it built, where, and what it cost.

Measured values only, each saying where it comes from:

* ``duration_s``: the wall time of this point in this sweep (a point the cache answered takes
  a fraction of a second);
* ``stage_seconds``: the measured wall time of every stage of the artifact, summed — each stage
  timed when it ran (now or in an earlier build) and kept in its run record;
* ``backend_seconds``: the part of it that ran on the point's backend (the compute block's ``actual``);
* ``cost_usd`` = ``compute_cost_usd`` (what the backend billed for those stages: the rental ledger's
  metered time × the quoted rate, the provider's reported cost, or measured time × the catalog rate)
  + ``teacher_cost_usd`` (what the teacher's labels cost when they were bought). ``cost_known`` is
  false when a part has no measured figure (a per-token backend that reported no cost);
* ``spent_usd``: what this sweep paid for this point (only the stages that ran now);
* ``executor`` and ``worker``: how the point was run (``serial``, ``threads``, ``ray``) and on which
  machine (``host``, and the Ray ``node_id`` of the worker that built it; a point the cache answered
  names this machine).

``ran``, ``pulled`` and ``pushed`` name the stages this point ran here, took from the remote stage
cache, and pushed to it (a stage two points share is run or pulled by one of them only).
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from kolmbuild.compute import measured, teacher_cost
from kolmbuild.config.models import BackendSpec
from kolmbuild.engine.results import TargetOutcome
from kolmbuild.engine.stage import StageReceipt
from kolmbuild.sweep.base import Where
from kolmbuild.sweep.points import SweepPoint


def _status(o: TargetOutcome) -> str:
    return "ok" if o.ok else o.status


def _spent(backend: BackendSpec, receipts: Mapping[str, StageReceipt], ran: list[str]) -> float:
    now = {s: receipts[s] for s in ran if s in receipts}
    m = measured(backend, now)
    compute = m.cost_usd if m is not None and m.cost_usd is not None else 0.0
    teacher = receipts["distill"].metrics.get("teacher_cost_usd") if "distill" in now else None
    return compute + (float(teacher) if isinstance(teacher, (int, float)) else 0.0)


def point_record(point: SweepPoint, outcome: TargetOutcome, backend: BackendSpec | None, root: Path,
                 install: tuple[str, str] | None, where: Where) -> dict[str, Any]:
    """The summary row of ``point``. ``install`` is the (stage, output) the engine installs (its CID
    is the artifact's); ``backend`` is None when the point could not be composed; ``where`` is where
    it was built."""
    receipts = outcome.receipts
    m = measured(backend, receipts) if backend is not None and receipts else None
    teacher = teacher_cost(receipts)
    compute_cost = (m.cost_usd if m is not None else 0.0)
    artifact_cid = manifest_cid = None
    if install is not None and install[0] in receipts:
        artifact_cid = receipts[install[0]].outputs.get(install[1])
        mc = receipts[install[0]].metrics.get("manifest_cid")
        manifest_cid = mc if isinstance(mc, str) else None
    return {
        "point": point.index,
        "name": point.name,
        "target": point.target,
        "overrides": list(point.overrides),
        "backend": outcome.backend or (backend.name if backend is not None else ""),
        "gates": outcome.gates,
        "status": _status(outcome),
        "executor": where.executor,
        "worker": where.worker(),
        "ran": list(outcome.ran),
        "pulled": list(outcome.pulled),
        "pushed": list(outcome.pushed),
        "duration_s": round(outcome.duration_s, 3),
        "stage_seconds": round(sum(r.duration_s for r in receipts.values()), 3),
        "backend_seconds": round(m.duration_s, 3) if m is not None else 0.0,
        "ran_on_backend": sorted(m.stages) if m is not None else [],
        "cost_usd": round((compute_cost or 0.0) + teacher, 6),
        "compute_cost_usd": None if compute_cost is None else round(compute_cost, 6),
        "teacher_cost_usd": round(teacher, 6),
        "cost_known": compute_cost is not None,
        "cost_basis": m.cost_basis if m is not None else f"nothing ran on {outcome.backend or 'the backend'}",
        "spent_usd": round(_spent(backend, receipts, outcome.ran), 6) if backend is not None else 0.0,
        "k_score": outcome.k_score,
        "artifact": os.path.relpath(outcome.artifact, root) if outcome.artifact else None,
        "artifact_cid": artifact_cid,
        "manifest_cid": manifest_cid,
        "message": str(outcome.error) if outcome.error else "",
    }
