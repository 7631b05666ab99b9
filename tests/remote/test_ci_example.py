"""examples/ci/github-actions.yml matches the code: its set-up and its shell steps, run as written.

The workflow's own ``run:`` scripts are executed with bash (``kolmbuild`` on PATH is the package
under test, ``KOLM_REMOTE_CACHE`` a folder, ``runner.temp`` a temp folder): the key made as its
comments say, main's step pushes with it, a pull request's step in another checkout (its own config
folder and key, trusting the committed keys/ci.pub) pulls every stage and runs none, and the report
step reads the build.json they wrote.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import stat
import subprocess
import sys
import tomllib
from pathlib import Path

import yaml

from tests.remote.conftest import ARTIFACT, Machine

REPO = Path(__file__).resolve().parents[2]
WORKFLOW = REPO / "examples" / "ci" / "github-actions.yml"
STAGES = ["count", "echo", "joined", "pack"]


def _steps() -> dict[str, dict]:
    doc = yaml.safe_load(WORKFLOW.read_text())
    [job] = doc["jobs"].values()
    return {s["name"]: s for s in job["steps"] if "name" in s}


def _shim(folder: Path) -> Path:
    """A ``kolmbuild`` executable that runs this checkout's package."""
    folder.mkdir()
    exe = folder / "kolmbuild"
    exe.write_text(f'#!/bin/sh\nPYTHONPATH="{REPO}" exec "{sys.executable}" -m kolmbuild "$@"\n')
    exe.chmod(exe.stat().st_mode | stat.S_IXUSR)
    return folder


def _run(script: str, cwd: Path, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    r = subprocess.run(["bash", "-eo", "pipefail", "-c", script], cwd=cwd, env=env, text=True,
                       capture_output=True, timeout=240)
    assert r.returncode == 0, (script, r.stdout[-2000:], r.stderr[-3000:])
    return r


def _workflow_env(job_env: dict[str, str], temp: Path, **extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("KOLM_")}
    for k, v in job_env.items():
        env[k] = str(v).replace("${{ runner.temp }}", str(temp))
    env.pop("KOLM_TEACHER_TOKEN", None)  # a secret the shell project does not need
    return {**env, **extra}


def test_the_workflow_pushes_on_main_and_pulls_on_pull_requests(machines: tuple[Machine, Machine], tmp_path):
    main, pr = machines
    doc = yaml.safe_load(WORKFLOW.read_text())
    [job] = doc["jobs"].values()
    steps = _steps()
    assert set(doc.get("on", doc.get(True))) == {"pull_request", "push"}  # PyYAML reads the key `on` as True
    remote = tmp_path / "bucket"
    bin_dir = _shim(tmp_path / "bin")
    path = f"{bin_dir}{os.pathsep}{os.environ['PATH']}"

    # set-up 1-3, as the comments say: a CI key pair, its public half committed and trusted
    keys = tmp_path / "ci-key"
    _run("kolmbuild keygen --out ci-key", tmp_path, {**os.environ, "PATH": path})
    for checkout in (main, pr):
        (checkout.root / "keys").mkdir()
        shutil.copy(keys / "kolm-signing.pub", checkout.root / "keys" / "ci.pub")
        checkout.set_cache(trust=["keys/ci.pub"])

    # main: the push step, with the key as the repository secret
    push = steps["Build and push (main)"]
    temp_main = tmp_path / "runner-main"
    temp_main.mkdir()
    env = _workflow_env(job["env"], temp_main, PATH=path, KOLM_REMOTE_CACHE=str(remote),
                        KOLM_CI_SIGNING_KEY=(keys / "kolm-signing.pem").read_text())
    _run(push["run"], main.root, env)
    [built] = json.loads((main.root / "build.json").read_text())
    assert sorted(built["ran"]) == STAGES and sorted(built["pushed"]) == STAGES
    assert len(list((remote / "runs").glob("*.json"))) == 4

    # a pull request, in another checkout on another runner (its own config folder and key)
    pull = steps["Build (pull request, pull only)"]
    temp_pr = tmp_path / "runner-pr"
    temp_pr.mkdir()
    env = _workflow_env(job["env"], temp_pr, PATH=path, KOLM_REMOTE_CACHE=str(remote))
    _run(pull["run"], pr.root, env)
    [pulled] = json.loads((pr.root / "build.json").read_text())
    assert pulled["ran"] == [] and sorted(pulled["pulled"]) == STAGES and pulled["pushed"] == []
    assert pr.runs() == []
    assert (pr.root / ARTIFACT).read_bytes() == (main.root / ARTIFACT).read_bytes()

    # the report step reads what the build wrote
    report = _run(steps["What came from the cache"]["run"], pr.root, env)
    assert "ran nothing" in report.stdout and "pulled [" in report.stdout

    # the install step names extras that exist, the remote one among them
    [extras] = re.findall(r"'kolmbuild\[([a-z,]+)\]'", steps["Install kolmbuild"]["run"])
    declared = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]["optional-dependencies"]
    assert "remote" in extras.split(",") and set(extras.split(",")) <= set(declared)
