"""Replicate trainings through the ``replicate`` SDK: ``Client(api_token, base_url)``,
``trainings.create(model, version, input, destination)`` (the SDK uploads the training file through
``/v1/files``), ``trainings.get``, ``trainings.cancel``, ``trainings.list``."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from kolmbuild.compute.adapters.base import ProviderError, RemoteInstance, provider_call, redact
from kolmbuild.compute.adapters.serverless import JobState, ServerlessAdapter
from kolmbuild.compute.job import Job
from kolmbuild.errors import ConfigError

_STATES: dict[str, JobState] = {"starting": "queued", "processing": "running", "succeeded": "succeeded",
                                "failed": "failed", "canceled": "cancelled"}


class ReplicateAdapter(ServerlessAdapter):
    def _client(self) -> Any:
        import httpx
        from replicate.client import Client

        return Client(api_token=self.token(), base_url=self.base_url(),
                      timeout=httpx.Timeout(self.settings.http_timeout_s))

    def _wrap(self, what: str, fn: Any) -> Any:
        from replicate.exceptions import ReplicateError

        try:
            return fn()
        except ReplicateError as exc:
            status = getattr(exc, "status", None)
            detail = redact(str(getattr(exc, "detail", None) or exc), self.secrets())
            raise ProviderError(f"replicate: {what}: {detail}", status=status,
                                not_found=status == 404) from None

    def preflight(self) -> None:
        ref, destination = self.conf.trainer_version, self.conf.destination
        if not ref or ":" not in ref or "/" not in ref.split(":", 1)[0] or set(ref.split(":", 1)[1]) <= {"0"}:
            raise ConfigError(f"backend replicate: trainer_version {ref!r}: set it to owner/name:version of a "
                              "trainer model", hint="in your project's conf/backend/replicate.yaml")
        if "/" not in destination:
            raise ConfigError(f"backend replicate: destination {destination!r}: set it to the owner/model that "
                              "receives the trained version", hint="in your project's conf/backend/replicate.yaml")

    def submit(self, job: Job, run_id: str, label: str) -> tuple[str, dict[str, Any]]:
        self.preflight()
        model, version = self.conf.trainer_version.split(":", 1)
        destination = self.conf.destination
        data = next((f for f in job.files if f.name.endswith(".jsonl")), None)
        client = self._client()

        def create() -> Any:
            inputs: dict[str, Any] = {"epochs": job.epochs, "run_id": run_id}
            if data is not None:
                inputs["train_data"] = Path(data)
            return client.trainings.create(model=model, version=version, input=inputs, destination=destination)

        training = self._wrap("create training", create)
        return str(training.id), {"status": training.status}

    def job_state(self, job_id: str) -> tuple[JobState, dict[str, Any]]:
        t = self._wrap(f"training {job_id}", lambda: self._client().trainings.get(job_id))
        info: dict[str, Any] = {"status": t.status, "output": t.output, "error": t.error,
                                "log_tail": (t.logs or "").splitlines()[-5:]}
        state = _STATES.get(str(t.status), "running")
        if state in ("succeeded", "failed", "cancelled"):
            # Replicate bills the seconds it reports as metrics.predict_time, at the hardware's
            # per-second price; the SDK's Training model drops `metrics`, so the record is read as is
            raw = provider_call(self, {"Authorization": f"Bearer {self.token()}"}, "GET",
                                f"/v1/trainings/{job_id}", f"training {job_id}")
            metrics = raw.get("metrics") if isinstance(raw, dict) else None
            seconds = metrics.get("predict_time") if isinstance(metrics, dict) else None
            if isinstance(seconds, (int, float)) and not isinstance(seconds, bool) and seconds >= 0:
                info["cost_usd"] = round(seconds * self.spec.pricing.rate_usd, 6)
                info["cost_source"] = "provider"
        return state, info

    def cancel_job(self, job_id: str) -> None:
        self._wrap(f"cancel {job_id}", lambda: self._client().trainings.cancel(job_id))

    def collect(self, job_id: str, info: dict[str, Any], dest: Path) -> list[Path]:
        import json

        dest.mkdir(parents=True, exist_ok=True)
        out = dest / "training.json"
        out.write_text(json.dumps({"id": job_id, "output": info.get("output")}, indent=2, default=str) + "\n")
        return [out]

    def list_instances(self) -> list[RemoteInstance]:
        page = self._wrap("list trainings", lambda: self._client().trainings.list())
        out = []
        for t in page.results:
            run_id = str((t.input or {}).get("run_id", ""))
            if run_id.startswith("kolm-"):
                state = _STATES.get(str(t.status), "running")
                out.append(RemoteInstance(str(t.id), run_id,
                                          "gone" if state in ("succeeded", "failed", "cancelled") else state))
        return out
