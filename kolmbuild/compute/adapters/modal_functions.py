"""Modal: a deployed function, spawned and polled through the ``modal`` SDK.

Modal's API is gRPC, so this adapter talks to a small client boundary, :class:`ModalClient`
(``spawn`` / ``poll`` / ``cancel``); :class:`SDKModalClient` implements it with
``modal.Function.from_name(app, fn).spawn(payload)``, ``modal.FunctionCall.from_id(id).get(timeout=0)``
and ``.cancel(terminate_containers=True)``. Tests substitute a fake at this boundary.
"""

from __future__ import annotations

import base64
import json
from pathlib import Path
from typing import Any, Protocol

from kolmbuild.compute.adapters.base import ProviderError
from kolmbuild.compute.adapters.serverless import JobState, ServerlessAdapter
from kolmbuild.compute.job import Job
from kolmbuild.errors import ComputeError


class ModalClient(Protocol):
    def spawn(self, app: str, function: str, payload: dict[str, Any]) -> str: ...

    def poll(self, call_id: str) -> tuple[JobState, Any]: ...

    def cancel(self, call_id: str) -> None: ...


class SDKModalClient:
    """The real boundary: the ``modal`` package (credentials from MODAL_TOKEN_ID / MODAL_TOKEN_SECRET)."""

    def __init__(self) -> None:
        try:
            import modal
        except ImportError:
            raise ComputeError("the modal backend needs the `modal` package: pip install modal") from None
        self.modal = modal

    def spawn(self, app: str, function: str, payload: dict[str, Any]) -> str:
        fn = self.modal.Function.from_name(app, function)
        return str(fn.spawn(payload).object_id)

    def poll(self, call_id: str) -> tuple[JobState, Any]:
        call = self.modal.FunctionCall.from_id(call_id)
        try:
            return "succeeded", call.get(timeout=0)
        except TimeoutError:
            return "running", None
        except self.modal.exception.OutputExpiredError:
            return "succeeded", None
        except self.modal.exception.NotFoundError:
            raise ProviderError(f"modal: call {call_id} not found", not_found=True) from None
        except Exception as exc:  # the remote function raised
            if "cancel" in type(exc).__name__.lower():
                return "cancelled", None
            return "failed", str(exc)

    def cancel(self, call_id: str) -> None:
        self.modal.FunctionCall.from_id(call_id).cancel(terminate_containers=True)


class ModalAdapter(ServerlessAdapter):
    def __init__(self, *args: Any, client: ModalClient | None = None, **kw: Any) -> None:
        super().__init__(*args, **kw)
        self._client = client
        self._results: dict[str, Any] = {}

    def client(self) -> ModalClient:
        if self._client is None:
            self._client = SDKModalClient()
        return self._client

    def token(self, name: str | None = None) -> str:
        for var in self.spec.auth:  # both MODAL_TOKEN_ID and MODAL_TOKEN_SECRET
            super().token(var)
        return "modal"

    def submit(self, job: Job, run_id: str, label: str) -> tuple[str, dict[str, Any]]:
        files = {f.name: base64.b64encode(f.read_bytes()).decode() for f in job.files}
        payload = {"run_id": run_id, "job": job.to_json(), "command": list(job.command), "files": files,
                   "outputs": list(job.outputs)}
        call_id = self.client().spawn(self.conf.modal_app, self.conf.modal_function,
                                      payload)
        return call_id, {}

    def job_state(self, job_id: str) -> tuple[JobState, dict[str, Any]]:
        state, value = self.client().poll(job_id)
        if state == "succeeded":
            self._results[job_id] = value
        return state, ({"error": value} if state == "failed" else {})

    def cancel_job(self, job_id: str) -> None:
        self.client().cancel(job_id)

    def collect(self, job_id: str, info: dict[str, Any], dest: Path) -> list[Path]:
        """The job's outputs (unpacked from the function's answer) and its record as result.json."""
        from kolmbuild.compute.modal_job import unpack_outputs

        result = self._results.get(job_id)
        outputs = unpack_outputs(result, dest) if isinstance(result, dict) else []
        dest.mkdir(parents=True, exist_ok=True)
        out = dest / "result.json"
        record = {k: v for k, v in result.items() if k != "outputs_tgz"} if isinstance(result, dict) else result
        out.write_text(json.dumps(record, indent=2, sort_keys=True, default=str) + "\n")
        return [*outputs, out]
