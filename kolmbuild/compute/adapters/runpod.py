"""RunPod pods through GraphQL at ``{base_url}/graphql``: ``podFindAndDeployOnDemand`` (the pod name
carries the run id) → ``pod(input: {podId})`` until its runtime exposes port 22 → SSH →
``podTerminate``. ``myself { pods }`` lists them for orphan checks.
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

DEPLOY = """mutation Deploy($input: PodFindAndDeployOnDemandInput) {
  podFindAndDeployOnDemand(input: $input) { id imageName machineId desiredStatus costPerHr }
}"""
POD = """query Pod($input: PodFilter) {
  pod(input: $input) { id name desiredStatus costPerHr
    runtime { uptimeInSeconds ports { ip isIpPublic privatePort publicPort type } } }
}"""
TERMINATE = """mutation Terminate($input: PodTerminateInput!) { podTerminate(input: $input) }"""
PODS = """query Pods { myself { pods { id name desiredStatus } } }"""


class RunPodAdapter(ProvisionedAdapter):
    def _gql(self, query: str, variables: dict[str, Any], what: str) -> dict[str, Any]:
        body = provider_call(self, {"Authorization": f"Bearer {self.token()}"}, "POST", "/graphql", what,
                             json={"query": query, "variables": variables})
        errors = body.get("errors") or []
        if errors:
            msg = "; ".join(str(e.get("message", e)) for e in errors)
            raise ProviderError(f"runpod: {what}: {msg}", not_found="not found" in msg.lower())
        return dict(body.get("data") or {})

    def create_instance(self, job: Job, run_id: str, label: str, offer: Mapping[str, Any]) -> tuple[str, dict[str, Any]]:
        pod_input = {
            "cloudType": "ALL", "gpuCount": 1, "gpuTypeId": self.conf.gpu_type_id,
            "name": label, "imageName": self.conf.image,
            "containerDiskInGb": self.conf.container_disk_gb, "volumeInGb": 0,
            "ports": "22/tcp", "supportPublicIp": True, "env": [{"key": "KOLM_RUN_ID", "value": run_id}],
        }
        pod = self._gql(DEPLOY, {"input": pod_input}, "deploy").get("podFindAndDeployOnDemand") or {}
        if not pod.get("id"):
            raise ProviderError("runpod: deploy returned no pod id (no capacity?)")
        return str(pod["id"]), {"price_per_hour": pod.get("costPerHr"), "image": pod.get("imageName")}

    def instance_status(self, instance_id: str) -> tuple[str, dict[str, Any]]:
        try:
            pod = self._gql(POD, {"input": {"podId": instance_id}}, f"pod {instance_id}").get("pod")
        except ProviderError as exc:
            if exc.not_found:
                return "gone", {}
            raise
        if not pod or pod.get("desiredStatus") in ("TERMINATED", "EXITED"):
            return "gone", {}
        runtime = pod.get("runtime") or {}
        for port in runtime.get("ports") or []:
            if port.get("privatePort") == 22 and port.get("isIpPublic"):
                return "running", {"ssh_host": port["ip"], "ssh_port": int(port["publicPort"]),
                                   "ssh_user": self.conf.ssh_user,
                                   "price_per_hour": pod.get("costPerHr"), "status": pod.get("desiredStatus")}
        return "pending", {"status": pod.get("desiredStatus")}

    def terminate_instance(self, instance_id: str) -> None:
        self._gql(TERMINATE, {"input": {"podId": instance_id}}, "terminate")

    def list_instances(self) -> list[RemoteInstance]:
        pods = ((self._gql(PODS, {}, "pods").get("myself") or {}).get("pods")) or []
        return [RemoteInstance(str(p.get("id")), str(p.get("name") or ""),
                               "gone" if p.get("desiredStatus") in ("TERMINATED", "EXITED") else "running")
                for p in pods if str(p.get("name") or "").startswith("kolm-")]
