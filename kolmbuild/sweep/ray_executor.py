"""The Ray executor (``kolmbuild -m … --executor ray --ray-address HOST:PORT``): each sweep point a Ray task.

This process (the coordinator) decides what is stale; Ray decides where and when each point runs.
kolmbuild has no scheduler of its own: every point that is not already built (here or in the remote
cache) is submitted at once as one task, with the resources its backend needs (:func:`resources`),
and Ray runs as many as the cluster has room for.

* **The project** goes to the workers as Ray's ``working_dir`` runtime environment: the project
  folder without its local state (:data:`NOT_SHIPPED`, ``executor.excludes``; Ray also honours the
  project's ``.gitignore`` and ``.rayignore``). kolmbuild itself must be installed on the workers,
  the same release under the same Python (checked).
* **Results** come back through the remote cache, which the Ray executor requires: the worker builds
  the point with a local cache of its own and pushes every run it made
  (:mod:`kolmbuild.sweep.ray_worker`); the coordinator then builds the same point here, which adopts
  those runs (their stage keys are the same) and installs the artifact — fetched from the remote
  cache and re-hashed on the way — into the point's folder under ``sweeps/``. Nothing runs here: a
  stage the remote cannot supply for this machine (an untrusted signer, a differing key) fails the
  point and says which. The bytes are the worker's, so they are byte-identical to a local build of
  the point made with the same signing key.
* **Trust**: the worker signs its runs with its own, already-configured key; the coordinator uses
  them only if that key is one it trusts (``cache.trust`` or its keys folder), as for any remote
  run. No private key travels: a worker whose key is not trusted refuses to build, and the sweep
  stops with exit 2 before anything is written (the check runs once on a worker before the sweep,
  and again in every point's task).

Independent stages of one point run as the worker's ``-j`` threads (each point's task asks Ray for
``-j`` CPUs), not as separate Ray tasks: the stages of a point share the point's local cache.
"""

from __future__ import annotations

import logging
import os
import socket
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from typing import Any, TypeVar

import ray
import ray.exceptions

from kolmbuild.compute import signals
from kolmbuild.config.compose import ComposedTarget
from kolmbuild.config.interp import DYNAMIC
from kolmbuild.config.models import BackendSpec
from kolmbuild.engine.plan import env_fingerprint
from kolmbuild.errors import BuildFailed, KolmError, UserInputError
from kolmbuild.remote.cache import RemoteCache
from kolmbuild.remote.storage import display_url
from kolmbuild.secretnames import is_secret_name
from kolmbuild.sweep import ray_worker
from kolmbuild.sweep.base import SweepJob, Where, interrupted
from kolmbuild.sweep.points import SweepPoint
from kolmbuild.sweep.ray_worker import WorkerReport
from kolmbuild.sweep.worker_build import PointJob

R = TypeVar("R")

# What never goes to the workers: the project's local state (gitignore patterns; "/x/" is x at the top).
NOT_SHIPPED = ("/cache/", "/artifacts/", "/sweeps/", "/kolm-runs/", ".venv/", ".git/", "__pycache__/", "*.pyc")
CONNECT_TIMEOUT_S = 3.0  # is anything listening at the address (before Ray's own minute of retries)
PROBE_TIMEOUT_S = 600.0  # the first worker: a node may have to start, or the runtime env to unpack
# Devices Ray does not know by name: a node that has one declares it (ray start --resources '{"mps": 1}').
CUSTOM_DEVICES = ("mps", "mlx", "directml")


@dataclass(frozen=True)
class RayExecutor:
    """Points as Ray tasks on the cluster at ``address``; ``stage_jobs`` (``-j``) is each point's
    stage parallelism and CPU request."""

    address: str
    excludes: tuple[str, ...] = ()
    stage_jobs: int = 1
    kind: str = "ray"
    workers: int = 1  # points this process builds at once: it only takes finished points from the remote cache

    def session(self, job: SweepJob) -> RaySession:
        return RaySession(self, job)


def resources(backend: BackendSpec, jobs: int) -> dict[str, Any]:
    """The Ray resources a point's task asks for: ``jobs`` CPUs, and the backend's local accelerator
    (a GPU for CUDA and ROCm, a custom resource named after an Apple or DirectML device). A point on
    a remote backend (rented, SSH) needs no accelerator here: its worker only waits on the machine."""
    device = str((backend.model_extra or {}).get("device", "")) if backend.kind == "local" else ""
    res: dict[str, Any] = {"num_cpus": max(1, jobs)}
    if device in ("cuda", "rocm"):
        res["num_gpus"] = 1
    elif device in CUSTOM_DEVICES:
        res["resources"] = {device: 1}
    return res


def _offers(node: Mapping[str, float], res: Mapping[str, Any]) -> bool:
    wanted = {"CPU": res.get("num_cpus", 0), "GPU": res.get("num_gpus", 0), **res.get("resources", {})}
    return all(node.get(k, 0.0) >= v for k, v in wanted.items() if v)


def _needs(res: Mapping[str, Any]) -> str:
    parts = [f"{res['num_cpus']} CPU"] + (["a GPU"] if res.get("num_gpus") else [])
    parts += [f"resource {k!r}" for k in res.get("resources", {})]
    return ", ".join(parts)


def remote_url(remote: RemoteCache | None) -> str:
    """The URL the workers open the remote cache at; exit 2 when there is none they can use."""
    if remote is None:
        raise UserInputError(
            "the ray executor needs a remote cache: each Ray worker builds its point with a cache of its own and "
            "pushes the result there, and this machine takes the point's records and artifact from it",
            hint="pass --remote URL (a bucket or shared folder the workers can write), set KOLM_REMOTE_CACHE, "
                 "or add cache.remote to the kolmfile")
    loc = remote.location
    if loc is None:
        raise UserInputError(f"remote cache {remote.display}: the ray executor needs one opened from a URL "
                             "(the workers open the same URL)")
    if not loc.writable:
        raise UserInputError(f"remote cache {loc.display} is read-only (http): Ray workers could not push to it",
                             hint="use the storage behind it (s3://, sftp://, a shared folder)")
    if display_url(loc.url) != loc.url:
        raise UserInputError(f"remote cache {loc.display}: its URL carries a password or a query string, which "
                             "would be sent to every Ray worker",
                             hint="give the workers credentials through their own storage configuration "
                                  "(AWS environment, SSH keys) and use the URL without them")
    return loc.url


def _check_reachable(address: str) -> None:
    """Fail in seconds, not Ray's minute of retries, when nothing listens at ``address``."""
    if address == "auto":
        return
    hostport = address.removeprefix("ray://")
    host, _, port = hostport.rpartition(":")
    try:
        with socket.create_connection((host.strip("[]"), int(port)), timeout=CONNECT_TIMEOUT_S):
            pass
    except OSError as exc:
        raise UserInputError(f"Ray cluster {address}: cannot connect ({exc.strerror or exc})",
                             hint="is the cluster up (`ray status` on its head)? the address is the one "
                                  "`ray start --head` printed, or ray://HOST:10001 for Ray Client") from None


def _pinned(target: ComposedTarget, overrides: Sequence[str]) -> tuple[str, ...]:
    """The point's overrides plus the group options this machine composed, so a worker whose defaults
    differ (KOLM_BACKEND, `compute use`) builds the same config."""
    keys = {o.strip().lstrip("+~").split("=", 1)[0] for o in overrides}
    pins = [f"{g}={target.choice(g)}" for g in ("backend", "gates") if target.choice(g) and g not in keys]
    return (*overrides, *pins)


def _first_line(exc: BaseException) -> str:
    lines = [ln.strip() for ln in str(exc).splitlines() if ln.strip()]
    return lines[-1] if lines else type(exc).__name__


def _report_error(report: WorkerReport) -> KolmError:
    message = report.message or f"the worker's build ended with status {report.status}"
    return UserInputError(message) if report.exit_code == 2 else BuildFailed(message)


@dataclass
class RaySession:
    """One sweep on the cluster: connected, the workers checked, one :class:`PointJob` per point."""

    executor: RayExecutor
    job: SweepJob
    jobs: dict[int, PointJob] = field(default_factory=dict)
    needs: dict[int, dict[str, Any]] = field(default_factory=dict)
    unplaced: dict[int, KolmError] = field(default_factory=dict)  # points no node of the cluster can run
    cluster: dict[str, float] = field(default_factory=dict)
    node_resources: list[dict[str, float]] = field(default_factory=list)  # per alive node
    nodes: int = 0

    @property
    def kind(self) -> str:
        return self.executor.kind

    def __enter__(self) -> RaySession:
        url = remote_url(self.job.engine.remote)  # no remote: exit 2 before any connection
        _check_reachable(self.executor.address)
        self._connect()
        try:
            self._plan(url)
            self._probe()
        except BaseException:
            ray.shutdown()
            raise
        return self

    def __exit__(self, *exc: object) -> None:
        ray.shutdown()

    def describe(self) -> dict[str, Any]:
        return {"kind": self.kind, "address": self.executor.address, "nodes": self.nodes,
                "cpus": self.cluster.get("CPU", 0.0), "gpus": self.cluster.get("GPU", 0.0),
                "workers": self.nodes, "stage_jobs": self.executor.stage_jobs}

    # ------------------------------------------------------------------ setting up

    def _connect(self) -> None:
        project = self.job.engine.project
        excludes = [*NOT_SHIPPED, *self.executor.excludes]
        try:
            ray.init(address=self.executor.address, namespace="kolmbuild", logging_level=logging.WARNING,
                     log_to_driver=not self.job.quiet,
                     runtime_env={"working_dir": str(project.root), "excludes": excludes})
        except Exception as exc:  # noqa: BLE001  (Ray raises many kinds here; each is said in one line)
            raise UserInputError(f"Ray cluster {self.executor.address}: {_first_line(exc)}",
                                 hint="a Ray of another version, or a project too big to ship (leave files out "
                                      "with executor.excludes or .rayignore)") from None
        alive = [n for n in ray.nodes() if n.get("Alive")]
        self.nodes = len(alive)
        self.cluster = dict(ray.cluster_resources())
        self.node_resources = [dict(n.get("Resources") or {}) for n in alive]

    def _environment(self) -> tuple[tuple[tuple[str, str | None], ...], tuple[tuple[str, str | None], ...]]:
        """The variables the stages read: (non-secret name, value here) and (secret name, digest here)."""
        names = {n for r in self.job.engine.rules.values() for n in r.spec.env}
        names |= {n for t in self.job.targets.values() if isinstance(t, ComposedTarget) for n in t.env_names}
        names.discard(DYNAMIC)
        plain = tuple((n, os.environ.get(n)) for n in sorted(names) if not is_secret_name(n))
        secret = tuple((n, env_fingerprint(n)) for n in sorted(names) if is_secret_name(n))
        return plain, secret

    def _plan(self, url: str) -> None:
        engine = self.job.engine
        assert engine.remote is not None
        project = engine.project
        plain, secret = self._environment()
        trusted = frozenset(engine.remote.trust.keys)
        kolmfile = str(project.kolmfile_path.relative_to(project.root))
        for p in self.job.points:
            target = self.job.targets.get(p.index)
            if not isinstance(target, ComposedTarget):
                continue
            res = resources(target.config.backend, self.executor.stage_jobs)
            if not any(_offers(n, res) for n in self.node_resources):
                self.unplaced[p.index] = UserInputError(
                    f"{p.name}: no node of the Ray cluster offers what backend {target.config.backend.name!r} "
                    f"needs ({_needs(res)})", hint="add such a node (an autoscaling cluster: keep one up), "
                                                   "or sweep another backend")
                continue
            self.needs[p.index] = res
            self.jobs[p.index] = PointJob(p.index, p.name, p.target, _pinned(target, p.overrides), kolmfile, url,
                                          self.executor.stage_jobs, plain, secret, trusted)

    def _probe(self) -> None:
        """One task on a worker, before the sweep writes anything: can it build for this machine?"""
        if not self.jobs:
            return
        index, job = next(iter(self.jobs.items()))
        probe = ray.remote(ray_worker.identity).options(**self.needs[index], max_retries=0)
        try:
            host, _node, issues = ray.get(probe.remote(job), timeout=PROBE_TIMEOUT_S)
        except ray.exceptions.GetTimeoutError:
            raise UserInputError(f"Ray cluster {self.executor.address}: no worker took the first task within "
                                 f"{PROBE_TIMEOUT_S:.0f} s (a busy cluster, or one scaling up)") from None
        except ray.exceptions.RayError as exc:
            raise UserInputError(f"Ray cluster {self.executor.address}: a worker cannot run kolmbuild: "
                                 f"{_first_line(exc)}",
                                 hint=f"install kolmbuild {job.kolmbuild} (with its extras for your stages) "
                                      f"under Python {job.python} on every node") from None
        if issues:
            raise UserInputError(f"the Ray worker on {host} cannot build for this machine: " + "; ".join(issues),
                                 hint="docs/compute.md, 'Sweeps on a Ray cluster': what must be the same on the workers, "
                                      "and trust")

    # ------------------------------------------------------------------ running

    def _settled(self, target: ComposedTarget) -> bool:
        """Nothing to build: every stage is up to date here. (Not asked of the remote cache: the engine
        asks it about a key once, and a point's keys must be asked after its worker pushed them; a point
        the remote already holds costs a worker that pulls everything and runs nothing.)"""
        return all(p.status == "up-to-date" for p in self.job.engine.plan(target))

    def _where(self, ref: Any, point: SweepPoint) -> Where:
        try:
            report: WorkerReport = ray.get(ref)
        except ray.exceptions.RayError as exc:  # the worker died, the node was lost, the task was cancelled
            return Where(self.kind, "?", elsewhere=True,
                         error=BuildFailed(f"{point.name}: its Ray task failed: {_first_line(exc)}",
                                           hint="run the sweep again: the points that finished come from the cache"))
        where = Where(self.kind, report.host, report.node_id, elsewhere=True, ran=report.ran,
                      duration_s=report.duration_s)
        return where if report.ok else replace(where, error=_report_error(report))

    def _cancel(self, pending: dict[Any, SweepPoint]) -> None:
        """Cancel the points' tasks (a cancelled build is interrupted and releases what it rented; a
        queued one never starts) and wait for them to end."""
        for ref in pending:
            ray.cancel(ref)
        if pending:
            ray.wait(list(pending), num_returns=len(pending), timeout=ray_worker.STOP_GRACE_S + 10)

    def run(self, points: Sequence[SweepPoint], build: Callable[[SweepPoint, Where], R],
            done: Callable[[R], None]) -> list[R]:
        results: dict[int, R] = {}
        pending: dict[Any, SweepPoint] = {}
        task = ray.remote(ray_worker.build_point)

        def finish(p: SweepPoint, where: Where) -> None:
            results[p.index] = build(p, where)
            done(results[p.index])

        # SIGINT/SIGTERM are only noted while Ray's calls run (an exception raised inside one leaves its
        # client broken) and acted on between them; a second one cannot cut the cancelling short.
        with signals.shield() as received:
            try:
                for p in points:
                    job, target = self.jobs.get(p.index), self.job.targets.get(p.index)
                    if p.index in self.unplaced:
                        finish(p, Where(self.kind, "?", error=self.unplaced[p.index]))
                    elif job is None or not isinstance(target, ComposedTarget) or self._settled(target):
                        finish(p, Where.here(self.kind))  # not composed (build says why), or built already
                    else:  # max_retries=0: a retried point could rent a second machine; a rerun uses the cache
                        pending[task.options(**self.needs[p.index], max_retries=0, name=f"kolm {p.name}")
                                .remote(job)] = p
                while pending:
                    if received:
                        raise signals.Interrupted(received[0])
                    ready, _ = ray.wait(list(pending), num_returns=1, timeout=0.5)
                    for ref in ready:
                        finish(pending[ref], self._where(ref, pending[ref]))
                        del pending[ref]
            except BaseException as exc:
                told = interrupted(exc)
                self._cancel(pending)
                for p in pending.values():  # recorded as failed; nothing of them is taken from the cache
                    try:
                        done(build(p, Where(self.kind, "?", elsewhere=True, error=told)))
                    except Exception:  # noqa: BLE001  (the interrupt is what the caller must see)
                        pass
                if isinstance(exc, (signals.Interrupted, KeyboardInterrupt)):
                    raise told from None
                raise
        return [results[p.index] for p in points]
