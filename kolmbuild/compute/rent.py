"""The rent flow: quote → budget gate → token check → confirm gate → run with release in ``finally``.

The budget gate comes first and makes no provider call: a refusal costs nothing and exits 2. The
confirm gate asks on a TTY and refuses without one (``--confirm`` answers it). SIGINT and SIGTERM
unwind through the adapter's ``finally`` (release), and a signal during release is deferred.
"""

from __future__ import annotations

import json
import shutil
import tempfile
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import replace
from pathlib import Path

from kolmbuild.compute import signals
from kolmbuild.compute.adapters.base import Adapter, OnProgress, RunResult
from kolmbuild.compute.job import Job
from kolmbuild.compute.quote import Quote
from kolmbuild.errors import BudgetExceeded, KolmError, UserInputError

PAYLOAD_NAME = "kolm_payload.py"


class NotConfirmed(UserInputError):
    """A paid rental was not confirmed (no --confirm, and no TTY to ask, or the answer was no)."""


class Interrupted(KolmError):
    """The rental was stopped by a signal after its machine was released (exit 128 + signal)."""

    def __init__(self, message: str, exit_code: int) -> None:
        super().__init__(message)
        self.exit_code = exit_code


def usd(x: float) -> str:
    """$1.83; sub-cent amounts keep their digits ($0.0042) so a refusal never reads "$0.00 > $0.00"."""
    return f"${x:.2f}" if x == 0 or x >= 0.01 else f"${x:.4f}"


def refuse_over_budget(q: Quote, budget_usd: float | None, extra_usd: float = 0.0) -> None:
    if budget_usd is None:
        return
    total = q.cost_usd + extra_usd
    if total > budget_usd:
        raise BudgetExceeded(f"refused: estimate {usd(total)} exceeds budget {usd(budget_usd)}")


def confirm_gate(q: Quote, *, confirm: bool, is_tty: bool, ask: Callable[[str], bool]) -> None:
    if confirm or q.cost_usd <= 0:
        return
    question = f"rent {q.backend} for about {q.duration_s / 60:.1f} min, estimate ${q.cost_usd:.2f}?"
    if not is_tty:
        raise NotConfirmed(f"refused: {question} needs confirmation: pass --confirm (no TTY to ask)")
    if not ask(question):
        raise NotConfirmed("refused: not confirmed")


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
               estimate_usd: float) -> RunResult:
    """Run with signals trapped; a signal becomes :class:`Interrupted` once release has finished."""
    try:
        with signals.trap():
            return adapter.run(job, on_progress, run_id=run_id, estimate_usd=estimate_usd)
    except signals.Interrupted as exc:
        raise Interrupted(f"interrupted by {exc}; rental {run_id} released", exc.exit_code) from None
    except KeyboardInterrupt:
        raise Interrupted(f"interrupted; rental {run_id} released", 130) from None
