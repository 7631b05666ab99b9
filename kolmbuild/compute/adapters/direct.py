"""Backends that rent nothing: the local ones (a temp folder on this machine) and remote-ssh (your host
over SSH with paramiko). ``rent`` on them is ``run``: nothing to provision, nothing to release but the
job folder, which ``close`` removes."""

from __future__ import annotations

import time
from typing import Any

from kolmbuild.compute.adapters.base import Adapter, OnProgress, RunResult, line_relay
from kolmbuild.compute.job import Job
from kolmbuild.compute.ledger import new_run_id
from kolmbuild.compute.transport import LocalTransport, SSHTarget, SSHTransport
from kolmbuild.errors import ComputeError


class DirectAdapter(Adapter):
    def open_transport(self) -> Any:
        det = self.detect()
        if not det.available:
            raise ComputeError(f"{self.spec.name}: {det.status} ({det.detail})")
        return LocalTransport()

    def run(self, job: Job, on_progress: OnProgress, *, run_id: str | None = None,
            estimate_usd: float | None = None) -> RunResult:
        rid = run_id or new_run_id()
        started = time.monotonic()
        transport = self.open_transport()
        tail: list[str] = []
        try:
            transport.upload(job.files)
            code = transport.run(job.command, line_relay(job, transport, tail, on_progress))
            outputs = transport.download(job.outputs, self.output_dir(rid))
        finally:
            transport.close()
        return RunResult(self.spec.name, rid, code, None, time.monotonic() - started,
                         0.0 if estimate_usd is None else estimate_usd, 0.0, tuple(outputs), tuple(tail))


class RemoteSSHAdapter(DirectAdapter):
    def open_transport(self) -> Any:
        host = self.token("KOLM_REMOTE_HOST")
        target = SSHTarget.parse(host, key_file=self.environ.get("KOLM_REMOTE_KEY") or None,
                                 known_hosts=self.environ.get("KOLM_REMOTE_KNOWN_HOSTS") or None)
        return SSHTransport(target)
