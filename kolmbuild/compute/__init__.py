"""Compute backends: registry, detection, picker, quotes, adapters, the rental ledger.

Pinned API used by the engine and config composition (kept import-light: nothing heavy loads here):

* ``check_budget(config)`` — raise BudgetExceeded before any provider call when the quote (plus the
  teacher's estimate) exceeds ``budget.usd``;
* ``default_backend_name()`` — the backend ``kolmbuild compute use NAME`` chose;
* ``compute_block(backend, receipts)`` — the deterministic compute block of a build's manifest.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

__all__ = ["check_budget", "compute_block", "default_backend_name", "teacher_estimate"]


def default_backend_name() -> str | None:
    from kolmbuild.compute.defaults import read_default_backend

    return read_default_backend()


def teacher_estimate(task: Any, n_examples: int) -> float | None:
    """The teacher's estimated cost, when the task has a teacher and kolmbuild.teacher is installed."""
    if getattr(task, "teacher", None) is None:
        return None
    try:
        from kolmbuild.teacher import estimate_cost
    except ImportError:
        return None
    return float(estimate_cost(task, n_examples))


def check_budget(config: Any, root: Path | None = None) -> None:
    budget = config.budget.usd
    if budget is None:
        return
    from kolmbuild.compute.job import job_from_task
    from kolmbuild.compute.quote import quote
    from kolmbuild.compute.rent import refuse_over_budget

    job = job_from_task(config.task, root or Path.cwd(), name=config.target)
    q = quote(config.backend, job)
    teacher = teacher_estimate(config.task, job.rows) or 0.0
    refuse_over_budget(q, budget, teacher)


def compute_block(backend: Mapping[str, Any], receipts: Mapping[str, Any]) -> dict[str, Any]:
    from kolmbuild.compute.receipt import compute_block as block

    return block(backend, receipts)
