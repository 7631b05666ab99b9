"""vast.ai, REST: ``POST /api/v0/bundles/`` (offers) → ``PUT /api/v0/asks/{offer}/`` (rent; answers
``new_contract``, the instance id) → ``GET /api/v0/instances/{id}/`` until ``actual_status`` is
``running`` → SSH → ``DELETE /api/v0/instances/{id}/``. The key goes in a Bearer header, never the URL.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from kolmbuild.compute.adapters.base import (
    ProviderError,
    ProvisionedAdapter,
    RemoteInstance,
    provider_call,
)
from kolmbuild.compute.job import Job
from kolmbuild.errors import ComputeError

_GONE = ("exited", "offline", "destroyed")


class VastAdapter(ProvisionedAdapter):
    def _call(self, method: str, path: str, what: str, **kw: Any) -> Any:
        return provider_call(self, {"Authorization": f"Bearer {self.token()}"}, method, path, what, **kw)

    def find_offer(self, job: Job) -> dict[str, Any]:
        vram_mb = max(job.min_vram_gb, float(self.spec.vram_cap_gb or 0)) * 1000
        query = {
            "verified": {"eq": True}, "rentable": {"eq": True}, "rented": {"eq": False},
            "gpu_ram": {"gte": vram_mb}, "num_gpus": {"eq": 1},
            "dph_total": {"lte": self.hourly_rate() or 1e9},
            "order": [["dph_total", "asc"]], "type": "on-demand", "limit": 5,
        }
        offers = self._call("POST", "/api/v0/bundles/", "offers", json=query).get("offers", [])
        if not offers:
            raise ComputeError(f"vast: no rentable offer with {vram_mb / 1000:g} GB at <= ${self.hourly_rate():.2f}/h")
        return dict(offers[0])

    def create_instance(self, job: Job, run_id: str, label: str, offer: Mapping[str, Any]) -> tuple[str, dict[str, Any]]:
        body = {
            "client_id": "me", "image": self.conf.image, "disk": self.conf.disk_gb,
            "label": label, "runtype": "ssh", "onstart": "", "env": {"KOLM_RUN_ID": run_id},
        }
        data = self._call("PUT", f"/api/v0/asks/{offer['id']}/", "rent offer", json=body)
        if not data.get("success") or data.get("new_contract") is None:
            raise ProviderError(f"vast: renting offer {offer['id']} failed: {data.get('msg') or data.get('error')}")
        return str(data["new_contract"]), {"offer_id": offer["id"], "price_per_hour": offer.get("dph_total"),
                                           "gpu": offer.get("gpu_name"), "image": self.conf.image}

    def instance_status(self, instance_id: str) -> tuple[str, dict[str, Any]]:
        try:
            data = self._call("GET", f"/api/v0/instances/{instance_id}/", f"instance {instance_id}",
                              params={"owner": "me"})
        except ProviderError as exc:
            if exc.not_found:
                return "gone", {}
            raise
        inst = data.get("instances")
        if not inst:  # vast answers {"instances": null} for a destroyed instance
            return "gone", {}
        status = str(inst.get("actual_status") or inst.get("cur_state") or "")
        if status in _GONE:
            return "gone", {"status": status}
        if status == "running" and inst.get("ssh_host"):
            return "running", {"ssh_host": inst["ssh_host"], "ssh_port": int(inst.get("ssh_port", 22)),
                               "ssh_user": self.conf.ssh_user,
                               "price_per_hour": inst.get("dph_total"), "status": status}
        return "pending", {"status": status}

    def terminate_instance(self, instance_id: str) -> None:
        self._call("DELETE", f"/api/v0/instances/{instance_id}/", "destroy")

    def list_instances(self) -> list[RemoteInstance]:
        rows = self._call("GET", "/api/v0/instances/", "instances", params={"owner": "me"}).get("instances") or []
        return [RemoteInstance(str(r.get("id")), str(r.get("label") or ""),
                               "gone" if r.get("actual_status") in _GONE else str(r.get("actual_status")))
                for r in rows if str(r.get("label") or "").startswith("kolm-")]
