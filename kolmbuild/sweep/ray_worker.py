"""The Ray task of the Ray executor: build one sweep point on a worker node, push it to the remote cache.

:func:`build_point` runs as a Ray task (:mod:`kolmbuild.sweep.ray_executor` submits it). The project
arrives as Ray's ``working_dir`` (the task's current folder, shared by the tasks on this node with
the same runtime environment); each point is built in a private copy of it, so points on one node do
not queue on one cache lock, with a local cache of its own that starts empty (what the remote cache
holds is pulled, not rebuilt). Before anything is copied, :func:`~kolmbuild.sweep.worker_build.problems`
says whether this node may build for the coordinator (same release, a trusted key, the same secrets);
the build itself runs in a child process (:mod:`kolmbuild.sweep.worker_build`) whose stderr is
copied to the task's, which Ray shows on the coordinator's console. A cancelled task (Ctrl+C on the
coordinator) interrupts the build, which releases what it rented.
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

from kolmbuild.sweep.worker_build import PointJob, problems

STOP_GRACE_S = 120.0  # a cancelled point's build gets this long to release what it rented
TAIL_LINES = 40


@dataclass(frozen=True)
class WorkerReport:
    """What came back from the worker: who built the point, and how it went."""

    index: int
    host: str
    node_id: str | None
    status: str  # built | up-to-date | failed | refused (it did not build: see problems())
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


def identity(job: PointJob) -> tuple[str, str | None, list[str]]:
    """(host, Ray node id, problems): the coordinator's check before a sweep starts."""
    return socket.gethostname(), _node_id(), problems(job)


def _environment(job: PointJob) -> dict[str, str]:
    """This node's environment with the coordinator's values of the non-secret variables stages read."""
    env = dict(os.environ)
    for name, value in job.env:
        if value is None:
            env.pop(name, None)
        else:
            env[name] = value
    return env


def _relay(stream: IO[str], tail: deque[str]) -> None:
    """Copy the build's stderr to ours (Ray shows it on the coordinator) and keep its last lines."""
    for line in stream:
        tail.append(line.rstrip("\n"))
        sys.stderr.write(line)
        sys.stderr.flush()


def _copy_project(src: Path, dest: Path) -> None:
    # the working_dir comes without cache/ and the rest; a cache/ made there by hand is not ours
    shutil.copytree(src, dest, symlinks=True, ignore=shutil.ignore_patterns("cache", "__pycache__"))


def _error_line(lines: Iterable[str]) -> str:
    kept = [ln for ln in lines if ln.strip()]
    return "\n".join(kept[-5:]) or "no output"


def _run(cmd: list[str], env: dict[str, str], cwd: Path) -> tuple[int, deque[str]]:
    tail: deque[str] = deque(maxlen=TAIL_LINES)
    child = subprocess.Popen(cmd, env=env, cwd=cwd, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                             stderr=subprocess.PIPE, text=True)
    assert child.stderr is not None
    relay = threading.Thread(target=_relay, args=(child.stderr, tail), daemon=True)
    relay.start()
    try:
        while True:  # a timed wait: Ray's cancel sets a KeyboardInterrupt that only Python code notices
            try:
                rc = child.wait(timeout=0.5)
                break
            except subprocess.TimeoutExpired:
                continue
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
    return rc, tail


def build_point(job: PointJob) -> WorkerReport:
    """Build ``job`` here and push it to the remote cache (the Ray task)."""
    started = time.perf_counter()
    host, node = socket.gethostname(), _node_id()
    issues = problems(job)
    if issues:
        return WorkerReport(job.index, host, node, "refused", exit_code=2,
                            message=f"the Ray worker on {host} refused to build it: " + "; ".join(issues))
    with tempfile.TemporaryDirectory(prefix="kolm-point-") as tmp:
        work = Path(tmp)
        project = work / "project"
        _copy_project(Path.cwd(), project)
        (work / "job.json").write_text(json.dumps(job.to_json()))
        cmd = [sys.executable, "-m", "kolmbuild.sweep.worker_build", str(work / "job.json"), str(work / "result.json")]
        rc, tail = _run(cmd, _environment(job), project)
        try:
            result: dict[str, Any] = json.loads((work / "result.json").read_text())
        except (OSError, ValueError):  # the child died before it could say (killed, out of memory)
            result = {}
    elapsed = time.perf_counter() - started
    if not isinstance(result, dict) or "status" not in result:
        return WorkerReport(job.index, host, node, "failed", duration_s=elapsed, exit_code=rc or 1,
                            message=f"on {host}: the build ended with exit status {rc}: {_error_line(tail)}")
    return WorkerReport(
        job.index, host, node, str(result["status"]), tuple(result.get("ran") or ()),
        tuple(result.get("pulled") or ()), tuple(result.get("pushed") or ()), elapsed, int(result.get("exit_code", rc)),
        f"on {host}: {result['message']}" if result.get("message") else "")
