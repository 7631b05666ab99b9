"""The rent flow: quote → budget gate → token check → confirm gate → run with release in ``finally``.

:func:`rent` owns the order of the gates, for every caller (the CLI, ``compute test``, a Python
program): the budget gate comes first and makes no provider call (a refusal costs nothing, exit 2);
then the credentials are checked (still no call); then confirmation, through the caller's ``ask``
callback (the CLI asks on a TTY; without one, or without ``ask``, an unconfirmed paid rental is
refused). A paid run also gets a wall-clock limit from the budget (:func:`wall_clock_limit`).
SIGINT and SIGTERM unwind through the adapter's ``finally`` (release); a signal during release is
deferred.
"""

from __future__ import annotations

import json
import math
import shutil
import tempfile
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, replace
from pathlib import Path

from kolmbuild.compute import signals
from kolmbuild.compute.adapters.base import Adapter, OnProgress, RunResult
from kolmbuild.compute.job import Job
from kolmbuild.compute.quote import Quote
from kolmbuild.errors import BudgetExceeded, ConfigError, UserInputError

PAYLOAD_NAME = "kolm_payload.py"
Ask = Callable[[str], bool]


class NotConfirmed(UserInputError):
    """Paid compute was not consented to: no --confirm and nobody to ask (no TTY), the answer was no,
    or a build would rent without a budget (exit 2, nothing rented)."""


def usd(x: float) -> str:
    """$1.83; sub-cent amounts keep their digits ($0.0042) so a refusal never reads "$0.00 > $0.00"."""
    return f"${x:.2f}" if x == 0 or x >= 0.01 else f"${x:.4f}"


def check_budget_value(value: float | None, where: str) -> float | None:
    """A budget is a finite number >= 0 (0: free compute only); anything else is a UserInputError
    naming where it came from (``--budget``, ``budget.usd`` in the kolmfile …)."""
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value) or value < 0:
        raise UserInputError(f"{where}: a budget must be a finite number of USD >= 0, got {value!r}")
    return float(value)


def refuse_over_budget(q: Quote, budget_usd: float | None, extra_usd: float = 0.0) -> None:
    if budget_usd is None:
        return
    total = q.cost_usd + extra_usd
    if total > budget_usd:
        raise BudgetExceeded(f"refused: estimate {usd(total)} exceeds budget {usd(budget_usd)}")


def confirm_gate(q: Quote, *, confirm: bool, ask: Ask | None) -> None:
    """Paid rentals need consent: ``confirm`` (--confirm), or ``ask(question)`` answering yes.
    ``ask`` is None when nobody can be asked (no TTY)."""
    if confirm or q.cost_usd <= 0:
        return
    question = f"rent {q.backend} for about {q.duration_s / 60:.1f} min, estimate ${q.cost_usd:.2f}?"
    if ask is None:
        raise NotConfirmed(f"refused: {question} needs confirmation: pass --confirm (no TTY to ask)")
    if not ask(question):
        raise NotConfirmed("refused: not confirmed")


def wall_clock_limit(q: Quote, hourly_usd: float, budget_usd: float | None, slack: float) -> float | None:
    """Seconds a paid run may take: what the budget buys at the hourly rate, and at most ``slack``
    times the quoted duration. None for a free run, or without a budget (a build has one whenever it
    rents paid compute). Past it the run is torn down like any other failure."""
    if hourly_usd <= 0 or q.cost_usd <= 0:
        return None
    limits = [slack * max(q.duration_s, 60.0)]
    if budget_usd is not None:
        limits.append(budget_usd / hourly_usd * 3600.0)
    return min(limits)


def gates(adapter: Adapter, q: Quote, *, budget_usd: float | None, extra_usd: float = 0.0,
          confirm: bool = False, ask: Ask | None = None, needs_token: bool = True) -> None:
    """The three gates, in their one order: budget (no provider call), token (no call), confirm."""
    if not q.eligible:
        raise ConfigError(f"backend {q.backend!r} cannot run this job: {q.reason}")
    refuse_over_budget(q, budget_usd, extra_usd)  # 1. budget
    if needs_token:
        adapter.token()  # 2. credentials present
    adapter.preflight()  # and the settings a rental needs (no provider call either)
    confirm_gate(q, confirm=confirm, ask=ask)  # 3. consent


@dataclass(frozen=True)
class RentRequest:
    """One rental: the job to quote and ship, the cap, and the consent already given."""

    job: Job
    budget_usd: float | None = None
    extra_usd: float = 0.0  # added to the quote for the budget (the teacher's estimate)
    confirm: bool = False
    command: tuple[str, ...] | None = None  # None: the trainer dry run
    data: Path | None = None


@dataclass(frozen=True)
class Rented:
    quote: Quote
    result: RunResult


def rent(adapter: Adapter, req: RentRequest, *, run_id: str, on_progress: OnProgress,
         ask: Ask | None = None, on_quote: Callable[[Quote], None] | None = None) -> Rented:
    """Quote, pass the gates (budget → token → confirm), run, and always release."""
    q = adapter.quote(req.job)
    needs_token = adapter.provisioned or adapter.spec.kind not in ("local", "self-hosted")
    gates(adapter, q, budget_usd=req.budget_usd, extra_usd=req.extra_usd, confirm=req.confirm, ask=ask,
          needs_token=needs_token)
    if on_quote is not None:
        on_quote(q)
    limit = wall_clock_limit(q, adapter.hourly_rate() or _hourly(q), req.budget_usd, adapter.conf.run_limit_slack)
    with payload_dir(req.job, run_id, req.command, req.data) as shipped:
        result = run_rental(adapter, shipped, on_progress, run_id=run_id, estimate_usd=q.cost_usd, limit_s=limit)
    return Rented(q, result)


def _hourly(q: Quote) -> float:
    return q.cost_usd / (q.duration_s / 3600.0) if q.duration_s > 0 else 0.0


@contextmanager
def payload_dir(job: Job, run_id: str, command: Sequence[str] | None, data: Path | None) -> Iterator[Job]:
    """A temp folder with job.json, the dry-run trainer and (optionally) the data; the job points at it."""
    from importlib.resources import files

    tmp = Path(tempfile.mkdtemp(prefix="kolm-payload-"))
    try:
        (tmp / "job.json").write_text(json.dumps({**job.to_json(), "run_id": run_id}, sort_keys=True) + "\n")
        (tmp / PAYLOAD_NAME).write_bytes(files("kolmbuild.compute").joinpath("payload.py").read_bytes())
        shipped = [tmp / "job.json", tmp / PAYLOAD_NAME]
        if data is not None:
            shutil.copyfile(data, tmp / "data.jsonl")
            shipped.append(tmp / "data.jsonl")
        cmd = tuple(command) if command else ("python3", PAYLOAD_NAME, "job.json", "out")
        yield replace(job, command=cmd, files=tuple(shipped), outputs=("out",), labels={"run_id": run_id})
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def run_rental(adapter: Adapter, job: Job, on_progress: OnProgress, *, run_id: str,
               estimate_usd: float, limit_s: float | None = None) -> RunResult:
    """Run with signals trapped (and, when ``limit_s`` is given, a wall-clock limit); a signal becomes
    :class:`~kolmbuild.compute.signals.Interrupted` naming the rental once release has finished."""
    try:
        with signals.trap(), signals.deadline(limit_s, f"{adapter.spec.name}: run {run_id}"):
            return adapter.run(job, on_progress, run_id=run_id, estimate_usd=estimate_usd)
    except signals.Interrupted as exc:
        raise signals.Interrupted(exc.signum, f"{exc}; rental {run_id} released") from None
    except KeyboardInterrupt:
        raise signals.Interrupted(2, f"interrupted; rental {run_id} released") from None
