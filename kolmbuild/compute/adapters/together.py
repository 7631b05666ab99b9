"""Together AI fine-tuning, REST: ``POST /files/upload`` (the labels) → ``POST /fine-tunes`` (LoRA)
→ ``GET /fine-tunes/{id}`` → ``POST /fine-tunes/{id}/cancel``. ``GET /fine-tunes`` lists jobs."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from kolmbuild.compute.adapters.base import (
    ProviderError,
    RemoteInstance,
    check_response,
    http_client,
    provider_call,
)
from kolmbuild.compute.adapters.serverless import JobState, ServerlessAdapter
from kolmbuild.compute.job import Job

NANODOLLARS_PER_USD = 1_000_000_000
_STATES: dict[str, JobState] = {
    "pending": "queued", "queued": "queued", "running": "running", "compressing": "running",
    "uploading": "running", "cancel_requested": "running", "cancelled": "cancelled",
    "error": "failed", "user_error": "failed", "completed": "succeeded",
}


def conversational_file(src: Path, dest: Path) -> Path:
    """Together's documented conversational format: one ``{"messages": [user, assistant]}`` per line
    (docs.together.ai/docs/fine-tuning/data-preparation), from kolmbuild's ``{input, output}`` rows;
    a value that is not text is sent as its JSON."""

    def text(v: object) -> str:
        return v if isinstance(v, str) else json.dumps(v, sort_keys=True, ensure_ascii=False)

    with src.open(encoding="utf-8") as fh, dest.open("w", encoding="utf-8") as out:
        for line in fh:
            if not line.strip():
                continue
            row = json.loads(line)
            out.write(json.dumps({"messages": [{"role": "user", "content": text(row["input"])},
                                               {"role": "assistant", "content": text(row["output"])}]},
                                 ensure_ascii=False) + "\n")
    return dest


class TogetherAdapter(ServerlessAdapter):
    def _headers(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.token()}"}

    def _client(self) -> Any:
        return http_client(self, self._headers())

    def submit(self, job: Job, run_id: str, label: str) -> tuple[str, dict[str, Any]]:
        data = next((f for f in job.files if f.name.endswith(".jsonl")), None)
        if data is None:
            raise ProviderError("together: the job has no .jsonl training file to upload")
        converted = conversational_file(data, data.with_name(f"{run_id}.together.jsonl"))
        with self._client() as c:
            with converted.open("rb") as fh:
                up = check_response(
                    c.post("/files/upload", data={"purpose": "fine-tune", "file_name": f"{run_id}.jsonl"},
                           files={"file": (f"{run_id}.jsonl", fh, "application/jsonl")}),
                    "upload", backend="together", secrets=self.secrets())
            body = {
                "training_file": up["id"], "model": self.conf.model, "n_epochs": max(1, round(job.epochs)),
                "suffix": label, "lora": True, "lora_r": self.conf.lora_r, "lora_alpha": self.conf.lora_alpha,
                "batch_size": "max",
            }
            ft = check_response(c.post("/fine-tunes", json=body), "create fine-tune", backend="together", secrets=self.secrets())
        return str(ft["id"]), {"status": ft.get("status"), "file_id": up["id"]}

    def job_state(self, job_id: str) -> tuple[JobState, dict[str, Any]]:
        ft = provider_call(self, self._headers(), "GET", f"/fine-tunes/{job_id}", f"fine-tune {job_id}")
        raw = str(ft.get("status", ""))
        info: dict[str, Any] = {"status": raw, "output_name": ft.get("output_name"),
                                "log_tail": [e.get("message", "") for e in (ft.get("events") or [])[-5:]]}
        price = ft.get("total_price")  # what Together charged, in nanodollars (its SDK's finetune_price_to_dollars)
        if isinstance(price, (int, float)) and not isinstance(price, bool) and price >= 0:
            info["cost_usd"] = round(price / NANODOLLARS_PER_USD, 6)
            info["cost_source"] = "provider"
        return _STATES.get(raw, "running"), info

    def collect(self, job_id: str, info: dict[str, Any], dest: Path) -> list[Path]:
        """The fine-tune's record (its output model name); the weights stay at Together."""
        dest.mkdir(parents=True, exist_ok=True)
        out = dest / "fine_tune.json"
        out.write_text(json.dumps({"id": job_id, "status": info.get("status"),
                                   "output_name": info.get("output_name")}, indent=2) + "\n")
        return [out]

    def cancel_job(self, job_id: str) -> None:
        provider_call(self, self._headers(), "POST", f"/fine-tunes/{job_id}/cancel", f"cancel {job_id}")

    def list_instances(self) -> list[RemoteInstance]:
        rows = provider_call(self, self._headers(), "GET", "/fine-tunes", "fine-tunes").get("data") or []
        out = []
        for r in rows:
            label = str(r.get("suffix") or "")
            if label.startswith("kolm-"):
                state = _STATES.get(str(r.get("status")), "running")
                out.append(RemoteInstance(str(r.get("id")), label, "gone" if state in
                                          ("succeeded", "failed", "cancelled") else state))
        return out
