"""Compute backends: registry, detection, picker, quotes, adapters, the rental ledger.

Pinned API used by the engine and config composition (kept import-light: nothing heavy loads here):

* ``check_budget(config)`` — raise BudgetExceeded before any provider call when the quote (plus the
  teacher's estimate) exceeds ``budget.usd``;
* ``default_backend_name()`` — the backend ``kolmbuild compute use NAME`` chose;
* ``compute_block(backend, receipts)`` — the compute block of a build's manifest (estimated values,
  and the measured ``actual`` of the stages that ran on the backend);
* ``measured(backend, receipts)`` / ``teacher_cost(receipts)`` — what a build's stages measured and
  paid (sweeps report them).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

__all__ = ["check_budget", "compute_block", "default_backend_name", "measured", "setup_estimate", "teacher_cost"]

# the teacher's estimated cost for a task and a number of examples (kolmbuild.teacher.estimate_cost):
# passed in by the caller, so this layer never imports the teacher
TeacherCost = Callable[[Any, int], "float | None"]


def default_backend_name() -> str | None:
    from kolmbuild.compute.defaults import read_default_backend

    return read_default_backend()


def setup_estimate(backend: Any) -> float | None:
    """The machine setup time last measured for ``backend`` (None: the catalog's value applies)."""
    from kolmbuild.compute.bootstrap import measured_setup
    from kolmbuild.userconfig import state_dir

    return measured_setup(state_dir(), backend.name)


def check_budget(config: Any, root: Path | None = None, *, teacher_cost: TeacherCost | None = None) -> None:
    """Raise BudgetExceeded (exit 2) when the quote for ``config`` (plus the teacher's estimate, when
    ``teacher_cost`` is given) exceeds ``budget.usd``. Reads files, calls no provider."""
    budget = config.budget.usd
    if budget is None:
        return
    from kolmbuild.compute.job import job_from_task
    from kolmbuild.compute.quote import quote
    from kolmbuild.compute.rent import check_budget_value, refuse_over_budget

    check_budget_value(budget, "budget.usd")
    job = job_from_task(config.task, root or Path.cwd(), name=config.target)
    q = quote(config.backend, job, setup_s=setup_estimate(config.backend))
    teacher = (teacher_cost(config.task, job.rows) if teacher_cost is not None and config.task.teacher else None)
    refuse_over_budget(q, budget, teacher or 0.0)


def compute_block(backend: Mapping[str, Any], receipts: Mapping[str, Any], *, measured_values: bool = True
                  ) -> dict[str, Any]:
    from kolmbuild.compute.receipt import compute_block as block

    return block(backend, receipts, measured_values=measured_values)


def measured(backend: Any, receipts: Mapping[str, Any]) -> Any:
    """:func:`kolmbuild.compute.receipt.measured`: the stages that ran on ``backend``, their measured
    time and billed cost (None when nothing ran there)."""
    from kolmbuild.compute.receipt import measured as measure

    return measure(backend, receipts)


def teacher_cost(receipts: Mapping[str, Any]) -> float:
    """What the teacher's labels cost when bought, from the distill stage's receipt."""
    from kolmbuild.compute.receipt import teacher_cost as cost

    return cost(receipts)
