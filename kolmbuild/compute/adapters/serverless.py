"""Jobs billed per use (Together fine-tunes, Replicate trainings, fal requests, Modal calls).

submit → poll until a terminal state → collect; ``teardown`` cancels a job that has not finished
(the same retry/confirm rules as rented machines: "not found" is done, released only when the
provider says the job is terminal).
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any, Literal

from kolmbuild.compute import signals
from kolmbuild.compute.adapters.base import Adapter, OnProgress, RunHandle, RunResult
from kolmbuild.compute.job import Job
from kolmbuild.compute.ledger import Rental, new_run_id
from kolmbuild.errors import ComputeError

JobState = Literal["queued", "running", "succeeded", "failed", "cancelled"]
TERMINAL: tuple[str, ...] = ("succeeded", "failed", "cancelled")


class ServerlessAdapter(Adapter):
    def submit(self, job: Job, run_id: str, label: str) -> tuple[str, dict[str, Any]]:
        raise NotImplementedError

    def job_state(self, job_id: str) -> tuple[JobState, dict[str, Any]]:
        raise NotImplementedError

    def cancel_job(self, job_id: str) -> None:
        raise NotImplementedError

    def collect(self, job_id: str, info: dict[str, Any], dest: Path) -> list[Path]:
        return []

    def terminate_instance(self, instance_id: str) -> None:
        self.cancel_job(instance_id)

    def is_gone(self, instance_id: str) -> bool:
        return self.job_state(instance_id)[0] in TERMINAL

    def run(self, job: Job, on_progress: OnProgress, *, run_id: str | None = None,
            estimate_usd: float | None = None) -> RunResult:
        rid = run_id or new_run_id()
        est = self.quote(job).cost_usd if estimate_usd is None else estimate_usd
        self.token()
        signals.check_stop(signals.current_stop())  # a sweep stopped meanwhile: submit nothing
        self.ledger.put(Rental(run_id=rid, backend=self.spec.name, state="provisioning", label=rid, estimate_usd=est))
        job_id: str | None = None
        state: str = "queued"
        started = time.monotonic()
        try:
            on_progress(f"{self.spec.name}: submitting ({rid})")
            job_id, info = self.submit(job, rid, rid)
            self.ledger.update(rid, instance_id=job_id, state="running")
            on_progress(f"{self.spec.name}: job {job_id} submitted")
            failures = 0
            # past the wait-for-capacity timeout plus three times the quoted duration, give up (and cancel)
            deadline = time.monotonic() + self.settings.ready_timeout_s + 3 * self.quote(job).duration_s
            stop = signals.current_stop()  # a job started from a worker thread (a sweep point)
            while True:
                signals.check_stop(stop)
                try:
                    state, info = self.job_state(job_id)
                    failures = 0
                except (ComputeError, OSError) as exc:
                    failures += 1
                    if failures >= self.settings.max_poll_failures:
                        raise ComputeError(f"{self.spec.name}: lost contact with job {job_id}: {exc}") from exc
                if state in TERMINAL:
                    break
                if time.monotonic() > deadline:
                    raise ComputeError(f"{self.spec.name}: job {job_id} still {state} past its quoted time")
                time.sleep(self.settings.poll_s)
            outputs = self.collect(job_id, info, self.output_dir(rid)) if state == "succeeded" else []
            actual = info.get("cost_usd")  # the provider's own figure, when its API reports one
            self.ledger.update(rid, state="released", actual_usd=actual, released_at=time.time(), note=f"job {state}")
            tail = tuple(str(x) for x in info.get("log_tail", ()))
            if state != "succeeded":
                tail += (f"{self.spec.name}: job {job_id} {state}: {info.get('error') or ''}".rstrip(": "),)
            return RunResult(self.spec.name, rid, 0 if state == "succeeded" else 1, job_id,
                             time.monotonic() - started, est, actual, tuple(outputs), tail,
                             {"cost_source": "provider"} if actual is not None else {})
        finally:
            with signals.shield():  # no signal may skip the cancel below
                if job_id is None:
                    if (r := self.ledger.get(rid)) is not None and r.state == "provisioning":
                        self.ledger.update(rid, state="released", note="nothing was submitted")
                elif state not in TERMINAL:
                    self.teardown(RunHandle(rid, self.spec.name, job_id))
