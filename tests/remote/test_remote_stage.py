"""Remote stages with a remote cache: the far side (the loopback sshd, as remote-ssh) pulls its inputs
from the cache and pushes its outputs to it; checkpoints it sends back go to the cache too, so a
rebuild on another machine resumes from them.

The cache is S3 (moto on loopback). The far side is a machine of its own: sshd gives its sessions
their own environment (the AWS settings a GPU box would have, and PYTHONPATH naming the kolmbuild
under test), so its credentials never come from the near side.
"""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path
from typing import Any

import boto3
import pytest
import yaml

from tests.compute.sshd import SSHD, start_sshd
from tests.remote.conftest import Machine

REPO = Path(__file__).resolve().parents[2]
URL = "s3://team/kolm"

ACTIONS = '''
import json, os
from kolmbuild.compute.checkpoints import announcer
from kolmbuild.engine.stage import StageResult


def prep(ctx):
    rows = [json.loads(x) for x in ctx.inputs["task.examples"].read_text().splitlines() if x.strip()]
    ctx.output("rows.jsonl").write_text("".join(json.dumps(r, sort_keys=True) + "\\n" for r in rows))


def heavy(ctx):
    ckpt = ctx.cache_dir / "ckpt" / "state.txt"
    resumed = ckpt.read_text() if ckpt.exists() else ""
    with open(os.environ["REMOTE_LOG"], "a") as fh:
        fh.write(f"heavy {os.environ.get('KOLM_REMOTE_STAGE', 'local')} resumed={resumed or '-'}\\n")
    ckpt.parent.mkdir(parents=True, exist_ok=True)
    ckpt.write_text("step-1")
    announce = announcer(ctx.cache_dir)
    if announce is not None:
        announce(ckpt)
    if ctx.param("task.description") == "preempt" and not resumed:
        raise RuntimeError("preempted after its first checkpoint")
    rows = ctx.up("prep", "rows.jsonl").read_text()
    ctx.output("result.txt").write_text(rows.upper())
    return StageResult(metrics={"rows": len(rows.splitlines())})
'''


def _project(root: Path, log: Path, sshd: Any) -> Machine:
    def put(rel: str, doc: Any) -> None:
        p = root / rel
        p.parent.mkdir(parents=True, exist_ok=True)
        p.write_text(doc if isinstance(doc, str) else yaml.safe_dump(doc, sort_keys=False))

    rows = [{"input": f"row {i}", "output": f"label {i}"} for i in range(30)]
    put("data/train.jsonl", "".join(json.dumps(r) + "\n" for r in rows))
    put("remote_actions.py", ACTIONS)
    put("kolmfile.yaml", {"version": 1, "pipeline": ["heavy"], "defaults": {"backend": "remote-ssh"},
                          "targets": {"demo": {"task": "demo"}}})
    put("conf/task/demo.yaml", {"name": "demo", "examples": "data/train.jsonl"})
    put("rules/prep.yaml", {"name": "prep", "version": 1, "inputs": ["task.examples"], "outputs": ["rows.jsonl"],
                            "action": "remote_actions:prep"})
    put("rules/heavy.yaml", {"name": "heavy", "version": 1, "after": ["prep"], "reads": ["task.description"],
                             "outputs": ["result.txt"], "env": ["REMOTE_LOG"], "action": "remote_actions:heavy",
                             "remote": True})
    from kolmbuild.resources import builtin_dir

    base = yaml.safe_load((builtin_dir("conf") / "backend" / "remote-ssh.yaml").read_text())
    # the far side's python imports the kolmbuild under test (PYTHONPATH from sshd): no bootstrap
    put("conf/backend/remote-ssh.yaml", {**base, "python": sys.executable, "bootstrap": {"mode": "off"}})
    return Machine(root, root.parent / f"config-{root.name}")


@pytest.fixture
def far(tmp_path, s3):
    if SSHD is None:  # never skipped: this area's tests must run wherever the suite runs
        raise RuntimeError("OpenSSH server (sshd) is not installed: apt-get install openssh-server")
    server = start_sshd(tmp_path / "sshd", far_env={**s3.env, "PYTHONPATH": str(REPO)})
    yield server
    server.proc.terminate()
    server.proc.wait(timeout=10)


def _env(far: Any, log: Path) -> dict[str, str]:
    assert log == Path(os.environ["REMOTE_LOG"])  # a rule env: part of heavy's key, so set for the whole test
    return far.env()


@pytest.fixture(autouse=True)
def _remote_log(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("REMOTE_LOG", str(tmp_path / "remote.log"))


def _bucket_objects(s3) -> set[str]:
    client = boto3.client("s3", endpoint_url=s3.url, region_name="us-east-1")
    return {o["Key"].rsplit("/", 1)[-1] for o in client.list_objects_v2(Bucket="team", Prefix="kolm/objects/")
            .get("Contents", [])}


def test_far_side_pulls_inputs_from_the_cache_and_pushes_outputs_to_it(tmp_path, s3, far):
    log = tmp_path / "remote.log"
    a = _project(tmp_path / "a", log, far)
    r = a.invoke("build", "--remote", URL, "--push", env=_env(far, log))
    assert r.exit_code == 0, r.output
    assert "demo: prep       ran in" in r.stderr and "demo: heavy      ran in" in r.stderr
    assert log.read_text().splitlines() == ["heavy remote-ssh resumed=-"]
    assert "1 input(s) go by reference" in r.stderr  # rows.jsonl was not shipped: the far side fetched it
    outputs = a.outputs()
    result_cid = outputs["heavy"]["result.txt"]
    assert result_cid in _bucket_objects(s3)  # the far side pushed it ...
    assert result_cid not in a.objects()  # ... and it never travelled back here
    status = json.loads(a.invoke("cache", "status", "--json", "--remote", URL, env=_env(far, log)).stdout)
    assert {s["stage"]: s["where"] for s in status["stages"]} == {"prep": "local", "heavy": "pulled"}

    # the next build here is a no-op, and a second machine gets everything without running anything
    assert a.build("--remote", URL, env=_env(far, log))["status"] == "up-to-date"
    b = _project(tmp_path / "b", log, far)
    b.trust(a)
    out = b.build("--remote", URL, env=_env(far, log))
    assert out["ran"] == [] and sorted(out["pulled"]) == ["heavy", "prep"]
    assert len(log.read_text().splitlines()) == 1
    # reading heavy's output here fetches it from the cache, re-hashed
    r = b.invoke("cache", "pull", "--json", "--remote", URL, env=_env(far, log))
    assert r.exit_code == 0 and json.loads(r.stdout)["objects_downloaded"] == 2
    obj = b.root / "cache" / "objects" / result_cid[-2:] / result_cid
    assert obj.read_text().splitlines()[0] == '{"INPUT": "ROW 0", "OUTPUT": "LABEL 0"}'



def test_pull_only_build_still_fetches_inputs_on_the_far_side(tmp_path, s3, far):
    log = tmp_path / "remote.log"
    a = _project(tmp_path / "a", log, far)
    assert a.build("--remote", URL, "--push", env=_env(far, log))["pushed"] == ["prep", "heavy"]
    b = _project(tmp_path / "b", log, far)
    b.trust(a)
    r = b.invoke("build", "--remote", URL, "task.description=again", env=_env(far, log))
    assert r.exit_code == 0, r.output
    assert "1 input(s) go by reference" in r.stderr
    doc = b.build("--remote", URL, "task.description=again", env=_env(far, log))
    assert doc["status"] == "up-to-date"
    # pull-only: the far side pushed nothing, its output came back here (the same bytes as a's)
    assert a.outputs()["heavy"]["result.txt"] in b.objects()


def test_checkpoints_go_to_the_cache_and_another_machine_resumes(tmp_path, s3, far):
    log = tmp_path / "remote.log"
    a = _project(tmp_path / "a", log, far)
    r = a.invoke("build", "--remote", URL, "--push", "task.description=preempt", env=_env(far, log))
    assert r.exit_code == 1 and "preempted after its first checkpoint" in r.output
    assert "checkpoint ckpt/state.txt is in the remote cache" in r.stderr
    client = boto3.client("s3", endpoint_url=s3.url, region_name="us-east-1")
    index = [o["Key"] for o in client.list_objects_v2(Bucket="team", Prefix="kolm/checkpoints/")["Contents"]]
    assert len(index) == 1 and index[0].startswith("kolm/checkpoints/heavy-")

    b = _project(tmp_path / "b", log, far)  # a new machine: its cache has never seen the checkpoint
    b.trust(a)
    r = b.invoke("build", "--json", "--remote", URL, "task.description=preempt", env=_env(far, log))
    assert r.exit_code == 0, r.output
    assert json.loads(r.stdout)[0]["ran"] == ["heavy"]  # prep came from a's push
    assert log.read_text().splitlines() == ["heavy remote-ssh resumed=-", "heavy remote-ssh resumed=step-1"]
