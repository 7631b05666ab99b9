"""fal.ai queue, inference only, through the ``fal-client`` SDK.

The submit POST goes to ``{base_url}/{app}`` (``https://queue.fal.run`` by default; the SDK hard-codes
https there, so kolmbuild sends this one request itself, in the SDK's shape); the answer names the
request's ``status_url``, ``response_url`` and ``cancel_url``, and from then on the SDK's own
``SyncRequestHandle`` follows them: status (IN_QUEUE / IN_PROGRESS / COMPLETED), result, cancel.
One request per input, one in flight at a time; teardown cancels the one in flight.
"""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

from kolmbuild.compute import signals
from kolmbuild.compute.adapters.base import OnProgress, ProviderError, RunHandle, RunResult, check_response
from kolmbuild.compute.adapters.serverless import JobState, ServerlessAdapter
from kolmbuild.compute.job import Job
from kolmbuild.compute.ledger import Rental, new_run_id
from kolmbuild.errors import ComputeError


class FalAdapter(ServerlessAdapter):
    def __init__(self, *args: Any, **kw: Any) -> None:
        super().__init__(*args, **kw)
        self._handles: dict[str, Any] = {}
        self._http: Any = None

    def _client(self) -> Any:
        import httpx

        if self._http is None:
            self._http = httpx.Client(headers={"Authorization": f"Key {self.token()}"},
                                      timeout=self.settings.http_timeout_s, follow_redirects=True)
        return self._http

    def submit(self, job: Job, run_id: str, label: str) -> tuple[str, dict[str, Any]]:
        raise NotImplementedError("fal runs one request per input; see run()")

    def _submit_one(self, arguments: Any) -> Any:
        from fal_client.client import SyncRequestHandle

        app = self.conf.fal_app
        resp = self._client().post(f"{self.base_url()}/{app}", json=arguments)
        data = check_response(resp, f"submit to {app}", backend="fal", secrets=self.secrets())
        try:
            handle = SyncRequestHandle(request_id=data["request_id"], response_url=data["response_url"],
                                       status_url=data["status_url"], cancel_url=data["cancel_url"],
                                       client=self._client())
        except KeyError as exc:
            raise ProviderError(f"fal: submit answer lacks {exc.args[0]!r}") from None
        self._handles[handle.request_id] = handle
        return handle

    def job_state(self, job_id: str) -> tuple[JobState, dict[str, Any]]:
        import fal_client
        import httpx

        handle = self._handles.get(job_id)
        if handle is None:
            raise ProviderError(f"fal: unknown request {job_id}", not_found=True)
        try:
            status = handle.status(with_logs=True)
        except httpx.HTTPStatusError as exc:
            code = exc.response.status_code
            raise ProviderError(f"fal: status of {job_id}: HTTP {code}", status=code, not_found=code == 404) from None
        except fal_client.FalClientHTTPError as exc:
            sdk_code: int | None = getattr(exc, "status_code", None)
            raise ProviderError(f"fal: status of {job_id}: {exc}", status=sdk_code,
                                not_found=sdk_code == 404) from None
        if isinstance(status, fal_client.Completed):
            if status.error:
                return "failed", {"error": status.error}
            return "succeeded", {"metrics": status.metrics}
        if isinstance(status, fal_client.InProgress):
            return "running", {}
        return "queued", {}

    def cancel_job(self, job_id: str) -> None:
        import httpx

        handle = self._handles.get(job_id)
        if handle is None:
            raise ProviderError(f"fal: unknown request {job_id}", not_found=True)
        try:
            handle.cancel()
        except httpx.HTTPStatusError as exc:
            code = exc.response.status_code
            if code == 400:  # ALREADY_COMPLETED: nothing left to cancel
                return
            raise ProviderError(f"fal: cancel {job_id}: HTTP {code}", status=code, not_found=code == 404) from None
        except Exception as exc:
            sdk_code: int | None = getattr(exc, "status_code", None)
            if sdk_code == 400:
                return
            raise ProviderError(f"fal: cancel {job_id}: {exc}", status=sdk_code, not_found=sdk_code == 404) from None

    def run(self, job: Job, on_progress: OnProgress, *, run_id: str | None = None,
            estimate_usd: float | None = None) -> RunResult:
        if not job.inputs:
            raise ComputeError("fal is inference only: the job has no inputs to answer")
        rid = run_id or new_run_id()
        est = self.quote(job).cost_usd if estimate_usd is None else estimate_usd
        self.token()
        self.ledger.put(Rental(run_id=rid, backend="fal", state="running", label=rid, estimate_usd=est))
        in_flight: str | None = None
        started = time.monotonic()
        answers: list[Any] = []
        try:
            for i, arguments in enumerate(job.inputs):
                handle = self._submit_one(arguments)
                in_flight = handle.request_id
                self.ledger.update(rid, instance_id=in_flight, detail={"done": i, "of": len(job.inputs)})
                deadline = time.monotonic() + self.settings.ready_timeout_s
                while True:
                    state, info = self.job_state(in_flight)
                    if state in ("succeeded", "failed", "cancelled"):
                        break
                    if time.monotonic() > deadline:
                        raise ComputeError(f"fal: request {in_flight} still {state}")
                    time.sleep(self.settings.poll_s)
                if state != "succeeded":
                    raise ComputeError(f"fal: request {in_flight} {state}: {info.get('error', '')}")
                answers.append(handle.get())
                in_flight = None
                on_progress(f"fal: {i + 1}/{len(job.inputs)} answered")
            out = self.output_dir(rid)
            out.mkdir(parents=True, exist_ok=True)
            path = out / "answers.jsonl"
            path.write_text("".join(json.dumps(a, sort_keys=True) + "\n" for a in answers))
            actual = round(len(answers) * self.spec.pricing.rate_usd, 6)
            self.ledger.update(rid, state="released", actual_usd=actual, note=f"{len(answers)} calls")
            return RunResult("fal", rid, 0, None, time.monotonic() - started, est, actual, (Path(path),))
        finally:
            with signals.shield():  # no signal may skip the cancel below
                if in_flight is not None:
                    self.teardown(RunHandle(rid, "fal", in_flight))
                elif (r := self.ledger.get(rid)) is not None and r.live:
                    self.ledger.update(rid, state="released", note="stopped between requests")
                if self._http is not None:
                    self._http.close()
                    self._http = None
