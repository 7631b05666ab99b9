"""Lambda Cloud, REST API v1 over httpx (not lambda-cloud-client: it pins pydantic<2).

``GET /instance-types`` (a region with capacity) → ``POST /instance-operations/launch`` (the instance
name carries the run id) → ``GET /instances/{id}`` until ``active`` with an ``ip`` → SSH →
``POST /instance-operations/terminate``. ``GET /instances`` lists them for orphan checks.
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

_GONE = ("terminated", "preempted")  # "terminating" still runs (and bills) until it is "terminated"


class LambdaAdapter(ProvisionedAdapter):
    def _call(self, method: str, path: str, what: str, **kw: Any) -> Any:
        return provider_call(self, {"Authorization": f"Bearer {self.token()}"}, method, path, what, **kw)

    def _region(self, type_name: str) -> tuple[str, float]:
        data = self._call("GET", "/instance-types", "instance types").get("data", {})
        entry = data.get(type_name)
        if entry is None:
            raise ComputeError(f"lambda: no instance type {type_name!r} (offered: {', '.join(sorted(data))})")
        regions = entry.get("regions_with_capacity_available") or []
        if not regions:
            raise ComputeError(f"lambda: {type_name} has no capacity in any region right now")
        wanted = self.conf.region
        names = [r.get("name") for r in regions]
        region = wanted if wanted in names else names[0]
        cents = entry.get("instance_type", {}).get("price_cents_per_hour")
        price = cents / 100.0 if isinstance(cents, (int, float)) else self.hourly_rate()
        return str(region), price

    def find_offer(self, job: Job) -> dict[str, Any]:
        region, price = self._region(self.conf.instance_type)
        return {"region": region, "price": price}

    def create_instance(self, job: Job, run_id: str, label: str, offer: Mapping[str, Any]) -> tuple[str, dict[str, Any]]:
        type_name = self.conf.instance_type
        region, price = str(offer["region"]), float(offer["price"])
        body = {
            "region_name": region, "instance_type_name": type_name,
            "ssh_key_names": [self.conf.ssh_key_name],
            "file_system_names": [], "quantity": 1, "name": label,
        }
        data = self._call("POST", "/instance-operations/launch", "launch", json=body).get("data", {})
        ids = data.get("instance_ids") or []
        if not ids:
            raise ProviderError("lambda: launch returned no instance id")
        return str(ids[0]), {"price_per_hour": price, "region": region, "instance_type": type_name}

    def instance_status(self, instance_id: str) -> tuple[str, dict[str, Any]]:
        try:
            inst = self._call("GET", f"/instances/{instance_id}", f"instance {instance_id}").get("data", {})
        except ProviderError as exc:
            if exc.not_found:
                return "gone", {}
            raise
        status = str(inst.get("status", ""))
        if status in _GONE:
            return "gone", {"status": status}
        if status == "active" and inst.get("ip"):
            return "running", {"ssh_host": inst["ip"], "ssh_port": int(inst.get("ssh_port", 22)),
                               "ssh_user": self.conf.ssh_user, "status": status}
        if status == "unhealthy":
            raise ComputeError(f"lambda: instance {instance_id} is unhealthy")
        return "pending", {"status": status}

    def terminate_instance(self, instance_id: str) -> None:
        self._call("POST", "/instance-operations/terminate", "terminate", json={"instance_ids": [instance_id]})

    def list_instances(self) -> list[RemoteInstance]:
        rows = self._call("GET", "/instances", "instances").get("data", [])
        return [RemoteInstance(str(r.get("id")), str(r.get("name") or ""),
                               "gone" if r.get("status") in _GONE else str(r.get("status")))
                for r in rows if str(r.get("name") or "").startswith("kolm-")]
