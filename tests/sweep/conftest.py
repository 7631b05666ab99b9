"""Sweep fixtures: an isolated state dir (rental ledger), projects whose paid backends are local fakes
that bill (tests/compute/fakes.py), and the real PHI pipeline with a train stage that rents.

Rented machines use ``transport: local``: the fake provider's lifecycle (create, poll, terminate,
metering) is real HTTP on 127.0.0.1 and the stage really runs in a far-side process
(``python -m kolmbuild.compute.stage_runner``), only not over SSH (tests/compute covers SSH).
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml

from kolmbuild.resources import builtin_dir
from tests.compute.conftest import FAST
from tests.conftest import REPO
from tests.report.conftest import chromium, png_reader  # noqa: F401  (fixtures: headless Chromium, PNG reader)

TOKENS = ("KOLM_VAST_TOKEN", "KOLM_LAMBDA_TOKEN", "KOLM_RUNPOD_TOKEN", "KOLM_TOGETHER_TOKEN",
          "KOLM_REPLICATE_TOKEN", "KOLM_FAL_TOKEN", "KOLM_REMOTE_HOST", "VAST_URL", "SOURCE_DATE_EPOCH")

# a remote stage that waits (a GPU job) and a local one before it
ACTIONS = '''
import os, time
from kolmbuild.engine.stage import StageResult


def prep(ctx):
    ctx.output("rows.txt").write_text(ctx.inputs["task.examples"].read_text())
    return StageResult(metrics={"rows": 1})


def heavy(ctx):
    if os.environ.get("SWEEP_MARK"):  # say that the far side is running, and as which process
        with open(os.path.join(os.environ["SWEEP_MARK"], ctx.param("task.description")), "w") as fh:
            fh.write(str(os.getpid()))
    time.sleep(float(os.environ.get("SWEEP_SLEEP", "0")))
    text = ctx.param("task.description") + "\\n" + ctx.up("prep", "rows.txt").read_text()
    ctx.output("result.txt").write_text(text)
    return StageResult(metrics={"where": os.environ.get("KOLM_REMOTE_STAGE", "local")})


def train(ctx):
    """Stands in for the train stage on a rented GPU: waits, then says it did not train (the PHI
    task is recipe-only), so the real package stage signs the real recipes with this compute record."""
    time.sleep(float(os.environ.get("SWEEP_SLEEP", "0")))
    import json
    record = {"trained": False, "reason": "recipes cover the task", "base": {"name": "smollm2", "sha256": None},
              "device": "cuda"}
    ctx.output("train.json").write_text(json.dumps(record, sort_keys=True) + "\\n")
    return StageResult(metrics=record)
'''


@pytest.fixture(autouse=True)
def _state_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    state = tmp_path / "state"
    monkeypatch.setenv("KOLM_STATE_DIR", str(state))
    for var in TOKENS:
        monkeypatch.delenv(var, raising=False)
    return state


def write_yaml(path: Path, doc: Any) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(yaml.safe_dump(doc, sort_keys=False))
    return path


def rented(root: Path, name: str, url: str, rate_usd: float, **more: Any) -> None:
    """The project's own conf/backend/NAME.yaml: the built-in one pointed at a fake, run locally."""
    base = yaml.safe_load((builtin_dir("conf") / "backend" / f"{name}.yaml").read_text())
    write_yaml(root / "conf" / "backend" / f"{name}.yaml", {
        **base, "base_url": url, "transport": "local", "python": sys.executable, "bootstrap": {"mode": "off"},
        "pricing": {"basis": "per-hour", "rate_usd": rate_usd}, "cost_per_hour_usd": rate_usd, **FAST, **more})


def kolmbuild(root: Path, *args: str, env: dict[str, str] | None = None, timeout: float = 600
              ) -> subprocess.CompletedProcess[str]:
    """The real CLI in a child process (as a user runs it)."""
    full = {**os.environ, "PYTHONPATH": os.pathsep.join([str(REPO), os.environ.get("PYTHONPATH", "")]), **(env or {})}
    return subprocess.run([sys.executable, "-m", "kolmbuild", "-C", str(root), *args], capture_output=True,
                          text=True, env=full, timeout=timeout)


def summary_of(r: subprocess.CompletedProcess[str]) -> dict[str, Any]:
    assert r.returncode == 0, r.stderr[-3000:]
    return json.loads(r.stdout)


class WaitProject:
    """prep (here) → heavy (``remote: true``, sleeps ``$SWEEP_SLEEP`` s): only heavy reads
    ``task.description``, so sweeping it gives points that differ in the remote stage alone."""

    def __init__(self, root: Path) -> None:
        self.root = root
        (root / "data").mkdir(parents=True)
        (root / "data/train.jsonl").write_text("".join(json.dumps({"input": f"x{i}", "output": f"y{i}"}) + "\n"
                                                       for i in range(10)))
        (root / "remote_actions.py").write_text(ACTIONS)
        write_yaml(root / "kolmfile.yaml", {"version": 1, "pipeline": ["heavy"], "defaults": {"backend": "local-cpu"},
                                            "targets": {"demo": {"task": "demo"}}})
        write_yaml(root / "conf/task/demo.yaml", {"name": "demo", "examples": "data/train.jsonl"})
        write_yaml(root / "rules/prep.yaml", {"name": "prep", "version": 1, "inputs": ["task.examples"],
                                              "outputs": ["rows.txt"], "action": "remote_actions:prep"})
        write_yaml(root / "rules/heavy.yaml", {
            "name": "heavy", "version": 1, "after": ["prep"], "reads": ["task.description"],
            "outputs": ["result.txt"], "env": ["SWEEP_SLEEP", "SWEEP_MARK"], "action": "remote_actions:heavy",
            "remote": True})


@pytest.fixture
def wait_project(tmp_path: Path) -> WaitProject:
    return WaitProject(tmp_path / "proj")


def phi_project(root: Path, remote_train: bool) -> Path:
    """The repository's PHI redactor (the real pipeline); ``remote_train`` replaces the train rule with
    a project-local one that runs on the backend (see ``ACTIONS.train``)."""
    (root / "examples").mkdir(parents=True)
    shutil.copy(REPO / "kolmfile.yaml", root / "kolmfile.yaml")
    shutil.copytree(REPO / "examples" / "phi-redactor", root / "examples" / "phi-redactor")
    if remote_train:
        (root / "remote_actions.py").write_text(ACTIONS)
        builtin = yaml.safe_load((builtin_dir("rules") / "train.yaml").read_text())
        write_yaml(root / "rules" / "train.yaml", {
            **builtin, "version": 100, "outputs": ["train.json"], "env": ["SWEEP_SLEEP"],
            "action": "remote_actions:train", "remote": True})
    return root
