"""The worker side of the Ray executor: build one sweep point on a Ray worker, push it to the remote cache.

:func:`build_point` runs as a Ray task (:mod:`kolmbuild.sweep.ray_executor` submits it). The project
arrives as Ray's ``working_dir`` (the task's current folder, shared by the tasks on this node with
the same runtime environment); each point is built in a private copy of it, so points on one node do
not queue on one cache lock, with a local cache of its own that starts empty (what the remote cache
holds is pulled, not rebuilt). The build is the real CLI in a child process (a clean Hydra, its own
signals): ``kolmbuild build --json --remote URL --push --remote-required``, so every run it makes is
pushed, signed with this node's key, and a remote that is down fails the point at once.

Before building, :func:`problems` checks what would make the result useless to the coordinator,
which adopts a run only when its stage key matches its own and its signer is one it trusts:

* the same kolmbuild release and Python (stage keys of built-in actions carry the release);
* a signing key already configured on this node (``KOLM_SIGNING_KEY_FILE``, or ``keys/kolm-signing.pem``
  in the kolmbuild config folder), whose fingerprint is among the keys the coordinator trusts. The
  worker never creates one: a new key would sign records nobody trusts;
* the environment variables the stages read: the non-secret ones are set to the coordinator's
  values (or removed where the coordinator has none) in the build's environment; secret ones
  (``*_KEY``, ``*_TOKEN`` …) never travel, and must already agree, compared by the same digests the
  stage keys use.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
from collections import deque
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any

import ray

from kolmbuild import __version__
from kolmbuild.artifact.keys import existing_signing_key
from kolmbuild.engine.plan import env_fingerprint
from kolmbuild.errors import KolmError

PYTHON = f"{sys.version_info.major}.{sys.version_info.minor}"
STOP_GRACE_S = 120.0  # a cancelled point's build gets this long to release what it rented
TAIL_LINES = 40


@dataclass(frozen=True)
class PointJob:
    """One point as the coordinator sends it (plain values: Ray pickles it)."""

    index: int
    name: str  # the point's folder name, for messages and the temp folder
    target: str
    overrides: tuple[str, ...]
    kolmfile: str  # relative to the project folder
    remote: str  # the remote cache's URL (never one with a password in it)
    jobs: int
    env: tuple[tuple[str, str | None], ...]  # non-secret variables the stages read: the coordinator's values
    secrets: tuple[tuple[str, str | None], ...]  # secret variables the stages read: their digests there
    trusted: frozenset[str]  # fingerprints of the keys the coordinator trusts
    kolmbuild: str = __version__
    python: str = PYTHON


@dataclass(frozen=True)
class WorkerReport:
    """What came back from the worker: who built the point, and how it went."""

    index: int
    host: str
    node_id: str | None
    status: str  # built | up-to-date | failed | refused | refused before building
    ran: tuple[str, ...] = ()
    pulled: tuple[str, ...] = ()
    pushed: tuple[str, ...] = ()
    duration_s: float = 0.0
    exit_code: int = 0
    message: str = ""

    @property
    def ok(self) -> bool:
        return self.exit_code == 0 and self.status in ("built", "up-to-date")


def _node_id() -> str | None:
    if not ray.is_initialized():  # called outside a Ray task
        return None
    return str(ray.get_runtime_context().get_node_id())


def problems(job: PointJob) -> list[str]:
    """Why this worker must not build ``job`` (empty: it may)."""
    found: list[str] = []
    if job.kolmbuild != __version__:
        found.append(f"kolmbuild {__version__} is installed here, {job.kolmbuild} on the coordinator")
    if job.python != PYTHON:
        found.append(f"Python {PYTHON} here, {job.python} on the coordinator")
    try:
        key = existing_signing_key()
    except KolmError as exc:
        found.append(f"its signing key cannot be used: {exc.message}")
    else:
        if key is None:
            found.append("no signing key is configured here (KOLM_SIGNING_KEY_FILE, or keys/kolm-signing.pem in "
                         "the kolmbuild config folder); a worker never makes one, nobody would trust it")
        elif key.fingerprint not in job.trusted:
            found.append(f"it signs with key {key.fingerprint[:16]}…, which the coordinator does not trust "
                         "(add that key's .pub to cache.trust)")
    for name, digest in job.secrets:
        if env_fingerprint(name) != digest:
            here = "set" if os.environ.get(name) is not None else "unset"
            there = "set" if digest is not None else "unset"
            found.append(f"${name} differs from the coordinator's ({here} here, {there} there, or another value): "
                         "a stage reads it, so the stage keys would differ")
    return found


def identity(job: PointJob) -> tuple[str, str | None, list[str]]:
    """(host, Ray node id, problems): the coordinator's check before a sweep starts."""
    return socket.gethostname(), _node_id(), problems(job)


def _environment(job: PointJob) -> dict[str, str]:
    env = dict(os.environ)
    for name, value in job.env:
        if value is None:
            env.pop(name, None)
        else:
            env[name] = value
    env.pop("KOLM_REMOTE_CACHE", None)  # the flags name the remote and push; the environment cannot change them
    env.pop("KOLM_CACHE_PUSH", None)
    return env


def _relay(stream: IO[str], tail: deque[str]) -> None:
    """Copy the build's stderr to ours (Ray shows it on the coordinator) and keep its last lines."""
    for line in stream:
        tail.append(line.rstrip("\n"))
        sys.stderr.write(line)
        sys.stderr.flush()


def _command(job: PointJob, project: Path, out: Path) -> list[str]:
    return [sys.executable, "-m", "kolmbuild", "-C", str(project), "-f", job.kolmfile, "build", "--json",
            "-j", str(job.jobs), "--remote", job.remote, "--push", "--remote-required", "--out", str(out),
            job.target, *job.overrides]


def _copy_project(src: Path, dest: Path) -> None:
    # the working_dir comes without cache/ and the rest; a cache/ made there by hand is not ours
    shutil.copytree(src, dest, symlinks=True, ignore=shutil.ignore_patterns("cache", "__pycache__"))


def _error_line(lines: Iterable[str]) -> str:
    lines = [ln for ln in lines if ln.strip()]
    errors = [ln for ln in lines if ln.startswith("kolmbuild: error:")]
    return (errors[-1].removeprefix("kolmbuild: error: ") if errors else "\n".join(lines[-5:])) or "no output"


def _run(cmd: list[str], env: dict[str, str], cwd: Path) -> tuple[int, str, deque[str]]:
    tail: deque[str] = deque(maxlen=TAIL_LINES)
    child = subprocess.Popen(cmd, env=env, cwd=cwd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    assert child.stdout is not None and child.stderr is not None
    relay = threading.Thread(target=_relay, args=(child.stderr, tail), daemon=True)
    relay.start()
    try:
        out = child.stdout.read()
        rc = child.wait()
    except BaseException:  # cancelled (ray.cancel raises KeyboardInterrupt here): stop the build, let it release
        child.send_signal(signal.SIGINT)
        try:
            child.wait(timeout=STOP_GRACE_S)
        except subprocess.TimeoutExpired:
            child.kill()
            child.wait()
        raise
    finally:
        relay.join(timeout=5)
    return rc, out, tail


def build_point(job: PointJob) -> WorkerReport:
    """Build ``job`` here and push it to the remote cache (the Ray task)."""
    started = time.perf_counter()
    host, node = socket.gethostname(), _node_id()
    issues = problems(job)
    if issues:
        return WorkerReport(job.index, host, node, "refused", exit_code=2,
                            message=f"the Ray worker on {host} refused to build it: " + "; ".join(issues))
    with tempfile.TemporaryDirectory(prefix="kolm-point-") as tmp:
        project = Path(tmp) / "project"
        _copy_project(Path.cwd(), project)
        rc, out, tail = _run(_command(job, project, Path(tmp) / "artifact.kolm"), _environment(job), project)
    elapsed = time.perf_counter() - started
    try:
        outcome: dict[str, Any] = json.loads(out)[0]
    except (ValueError, IndexError, KeyError, TypeError):  # refused before building (bad input, a down remote)
        return WorkerReport(job.index, host, node, "failed", duration_s=elapsed, exit_code=rc or 1,
                            message=f"on {host}: {_error_line(tail)}")
    status = str(outcome.get("status", "failed"))
    return WorkerReport(
        job.index, host, node, status, tuple(outcome.get("ran") or ()), tuple(outcome.get("pulled") or ()),
        tuple(outcome.get("pushed") or ()), elapsed, rc,
        f"on {host}: {outcome['message']}" if outcome.get("message") else "")
