"""Build one sweep point with a cache of its own and push it to the remote cache: the far end of the Ray executor.

:mod:`kolmbuild.sweep.ray_worker` (in the Ray task) checks :func:`problems`, copies the project and
runs ``python -m kolmbuild.sweep.worker_build JOB.json RESULT.json`` (:func:`main`) in it: the same
library calls as ``kolmbuild build --remote URL --push --remote-required`` (:func:`build_here`), in a
process of its own (a clean Hydra, its own signals and environment), its build lines on stderr.

:func:`problems` is what would make the result useless to the coordinator, which adopts a run only
when its stage key matches its own and its signer is one it trusts:

* the same kolmbuild release and Python (stage keys of built-in actions carry the release);
* a signing key already configured on this node (``KOLM_SIGNING_KEY_FILE``, or ``keys/kolm-signing.pem``
  in the kolmbuild config folder), whose fingerprint is among the keys the coordinator trusts. The
  worker never creates one: a new key would sign records nobody trusts;
* the secret environment variables the stages read (``*_KEY``, ``*_TOKEN`` …), which never travel:
  they must already agree, compared by the digests the stage keys use. (The non-secret ones travel in
  the job and are set, or removed, in the build's environment.)
"""

from __future__ import annotations

import json
import os
import signal
import sys
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from kolmbuild import __version__
from kolmbuild.artifact.keys import existing_signing_key
from kolmbuild.config.compose import Composer
from kolmbuild.config.kolmfile import load_project
from kolmbuild.engine.build import Engine
from kolmbuild.engine.plan import env_fingerprint
from kolmbuild.engine.results import BuildOptions, exit_code
from kolmbuild.engine.ui import BuildUI
from kolmbuild.errors import KolmError
from kolmbuild.remote.settings import open_remote, remote_settings
from kolmbuild.sweep.points import placed
from kolmbuild.wiring import engine_hooks

PYTHON = f"{sys.version_info.major}.{sys.version_info.minor}"


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

    def to_json(self) -> dict[str, Any]:
        return {**asdict(self), "trusted": sorted(self.trusted)}

    @classmethod
    def from_json(cls, doc: Mapping[str, Any]) -> PointJob:
        pairs = {k: tuple((str(n), v) for n, v in doc[k]) for k in ("env", "secrets")}
        return cls(**{**doc, **pairs, "overrides": tuple(doc["overrides"]), "trusted": frozenset(doc["trusted"])})


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


def build_here(job: PointJob, root: Path, ui: BuildUI) -> dict[str, Any]:
    """Build the point in the project at ``root`` with its own cache, pulling from and pushing to the
    remote cache (as ``kolmbuild build --remote URL --push --remote-required`` does); its outcome as
    ``kolmbuild build --json`` prints it, with the exit status."""
    project = load_project(root, job.kolmfile)
    settings = remote_settings(project, url=job.remote, push=True, required=True)
    remote = open_remote(settings, warn=ui.warn, log=ui.note)
    with Engine(project, ui, hooks=engine_hooks(), remote=remote) as engine:
        target = placed(Composer(project).compose(job.target, job.overrides), root.parent / "out")
        [outcome] = engine.build([target], BuildOptions(job.jobs))
    return {**outcome.to_json(project.root), "exit_code": exit_code([outcome])}


def main(argv: Sequence[str] | None = None) -> int:
    """``python -m kolmbuild.sweep.worker_build JOB.json RESULT.json`` (run by :func:`build_point`)."""
    job_file, result_file = (sys.argv[1:] if argv is None else argv)
    # a Ray worker blocks SIGINT, and its children inherit the mask: the build must stop on one (a cancelled point)
    signal.pthread_sigmask(signal.SIG_UNBLOCK, {signal.SIGINT, signal.SIGTERM})
    signal.signal(signal.SIGINT, signal.default_int_handler)
    job = PointJob.from_json(json.loads(Path(job_file).read_text()))
    ui = BuildUI()
    try:
        result = build_here(job, Path.cwd(), ui)
    except KolmError as exc:  # refused before building: bad input, a remote that is down
        ui.warn(str(exc))
        result = {"status": "failed", "message": str(exc), "exit_code": exc.exit_code}
    except KeyboardInterrupt:  # the coordinator cancelled the point: what it rented was released on the way
        result = {"status": "failed", "message": "interrupted", "exit_code": 130}
    Path(result_file).write_text(json.dumps(result))
    return int(result["exit_code"])


if __name__ == "__main__":
    sys.exit(main())
