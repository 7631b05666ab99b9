"""Build stages on the target's backend: a real loopback sshd (remote-ssh) and the vast fake.

The project is shell-free: ``prep`` runs in-process, ``heavy`` (``remote: true``) is a project-local
action that is shipped with the stage bundle and run by ``kolmbuild.compute.stage_runner`` on the
far side. Its runs are appended to ``REMOTE_LOG`` (a rule env, forwarded), naming where they ran.
"""

from __future__ import annotations

import json
import os
import signal
import sys
import tarfile
import time
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest
import yaml
from click.testing import CliRunner

from kolmbuild.compute import stage_runner as wire
from kolmbuild.errors import ComputeError
from tests.compute.conftest import FAST
from tests.compute.fakes import FakeVast
from tests.compute.sshd import SSHD, start_sshd

ACTIONS = '''
import json, os, time
from pathlib import Path

from kolmbuild.engine.stage import StageResult


def _log(ctx, what):
    with open(os.environ["REMOTE_LOG"], "a") as fh:
        fh.write(f"{ctx.stage} {what} {os.environ.get('KOLM_REMOTE_STAGE', 'local')}\\n")


def prep(ctx):
    rows = [json.loads(x) for x in ctx.inputs["task.examples"].read_text().splitlines() if x.strip()]
    ctx.output("rows.jsonl").write_text("".join(json.dumps(r, sort_keys=True) + "\\n" for r in rows))
    return StageResult(metrics={"rows": len(rows)})


def heavy(ctx):
    _log(ctx, "start")
    rows = [json.loads(x) for x in ctx.up("prep", "rows.jsonl").read_text().splitlines()]
    ctx.output("result.txt").write_text("partial\\n")
    mode = ctx.param("task.description")
    if mode == "boom":
        print("about to fail", flush=True)
        raise RuntimeError("boom from the far side")
    if mode == "slow":
        Path(os.environ["REMOTE_LOG"]).with_name("slow.flag").write_text(str(os.getpid()))
        time.sleep(60)
    ctx.progress.start("heavy work", total=len(rows))
    out = []
    for r in rows:
        out.append(r["output"].upper())
        ctx.progress.advance(1)
    ctx.progress.log("heavy: done")
    ctx.output("result.txt").write_text("\\n".join(out) + "\\n")
    ctx.output("extra.bin").write_bytes(bytes(range(256)) * 64 + ctx.inputs["task.examples"].read_bytes())
    return StageResult(metrics={"rows": len(rows), "first": out[0]}, summary=f"{len(rows)} rows")
'''


class StageProject:
    def __init__(self, root: Path, log: Path) -> None:
        self.root, self.log = root, log
        rows = [{"input": f"call me at 555-01{i:02d}", "output": f"row {i} [PHONE]"} for i in range(20)]
        self.put("data/train.jsonl", "".join(json.dumps(r) + "\n" for r in rows))
        self.put("remote_actions.py", ACTIONS)
        self.yaml("kolmfile.yaml", {"version": 1, "pipeline": ["heavy"], "defaults": {"backend": "local-cpu"},
                                    "targets": {"demo": {"task": "demo"}}})
        self.yaml("conf/task/demo.yaml", {"name": "demo", "examples": "data/train.jsonl"})
        self.yaml("rules/prep.yaml", {"name": "prep", "version": 1, "inputs": ["task.examples"],
                                      "outputs": ["rows.jsonl"], "action": "remote_actions:prep"})
        self.yaml("rules/heavy.yaml", {
            "name": "heavy", "version": 1, "after": ["prep"], "reads": ["task.description"],
            "inputs": ["task.examples"], "outputs": ["result.txt", "extra.bin?"], "env": ["REMOTE_LOG"],
            "action": "remote_actions:heavy", "remote": True})
        self.backend("remote-ssh")

    def put(self, rel: str, text: str) -> None:
        p = self.root / rel
        p.parent.mkdir(parents=True, exist_ok=True)
        p.write_text(text)

    def yaml(self, rel: str, doc: Any) -> None:
        self.put(rel, yaml.safe_dump(doc, sort_keys=False))

    def backend(self, name: str, **changes: Any) -> None:
        from kolmbuild.resources import builtin_dir

        base = yaml.safe_load((builtin_dir("conf") / "backend" / f"{name}.yaml").read_text())
        # this interpreter has kolmbuild's dependencies: the bootstrap only ships and installs the wheel
        # of the kolmbuild under test (the far side runs exactly this code)
        self.yaml(f"conf/backend/{name}.yaml", {**base, "python": sys.executable, "bootstrap": {"mode": "wheel", "dir": str(self.root.parent / "far-bootstrap")},
                                                **changes})

    def build(self, *args: str) -> Any:
        from kolmbuild.cli.main import cli

        return CliRunner().invoke(cli, ["-C", str(self.root), "build", "--json", *args], catch_exceptions=False)

    def runs(self) -> list[str]:
        return self.log.read_text().splitlines() if self.log.exists() else []

    def records(self, *overrides: str) -> dict[str, Any]:
        """stage -> (key, outputs {name: CID}, metrics) from the project's cache."""
        from kolmbuild.config.compose import Composer
        from kolmbuild.config.kolmfile import load_project
        from kolmbuild.engine.build import Engine

        project = load_project(str(self.root), None)
        with Engine(project) as engine:
            plans = engine.plan(Composer(project).compose("demo", list(overrides)))
        return {p.stage: (p.key, dict(p.record.outputs), dict(p.record.metrics)) for p in plans if p.record}

    def cache_leftovers(self) -> list[Path]:
        tmp = self.root / "cache" / "tmp"
        return [*tmp.iterdir()] if tmp.is_dir() else []


@pytest.fixture
def log(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    path = tmp_path / "runs" / "remote.log"
    path.parent.mkdir()
    monkeypatch.setenv("REMOTE_LOG", str(path))
    return path


@pytest.fixture
def proj(tmp_path: Path, log: Path) -> StageProject:
    return StageProject(tmp_path / "proj", log)


@pytest.fixture(scope="module")
def sshd(tmp_path_factory):
    if SSHD is None:
        pytest.skip("OpenSSH server (sshd) is not installed: apt-get install openssh-server")
    server = start_sshd(tmp_path_factory.mktemp("sshd"))
    yield server
    server.proc.terminate()
    server.proc.wait(timeout=10)


def _ssh_env(monkeypatch: pytest.MonkeyPatch, sshd: Any) -> None:
    for k, v in sshd.env().items():
        monkeypatch.setenv(k, v)


def _doc(r: Any) -> dict[str, Any]:
    """The build's --json record (the runner mixes progress lines on stderr into the output)."""
    start = r.output.index("[\n") if r.output.startswith("[\n") else r.output.index("\n[\n") + 1
    return json.loads(r.output[start:])[0]


def _ok(r: Any) -> dict[str, Any]:
    assert r.exit_code == 0, r.output
    return _doc(r)


# ------------------------------------------------------------------------------- remote-ssh
def test_remote_ssh_stage_matches_a_local_build_byte_for_byte(proj, tmp_path, log, monkeypatch, sshd):
    _ssh_env(monkeypatch, sshd)
    twin = StageProject(tmp_path / "twin", log)  # the same project, built in-process on local-cpu
    assert _ok(twin.build())["ran"] == ["prep", "heavy"]
    assert twin.runs() == ["heavy start local"]

    first = _ok(proj.build("backend=remote-ssh"))
    assert first["ran"] == ["prep", "heavy"] and first["backend"] == "remote-ssh"
    assert proj.runs() == ["heavy start local", "heavy start remote-ssh"]  # it ran on the far side

    local, remote = twin.records(), proj.records("backend=remote-ssh")
    for stage in ("prep", "heavy"):
        assert remote[stage][0] == local[stage][0]  # same stage keys: the receipt chain is the same
        assert remote[stage][1] == local[stage][1]  # same output CIDs: byte-identical outputs
    assert set(remote["heavy"][1]) == {"result.txt", "extra.bin"}
    metrics = remote["heavy"][2]
    assert {k: metrics[k] for k in ("rows", "first")} == local["heavy"][2] == {"rows": 20, "first": "ROW 0 [PHONE]"}
    assert metrics["compute"] == {"backend": "remote-ssh", "kind": "self-hosted", "ran": "remote",
                                  "host": f"127.0.0.1:{sshd.port}"}
    assert "compute" not in remote["prep"][2]  # prep is not opted in: it ran here

    again = _ok(proj.build("backend=remote-ssh"))
    assert again["ran"] == [] and again["status"] == "up-to-date"
    assert len(proj.runs()) == 2  # the second build ran nothing, remotely or here
    assert proj.cache_leftovers() == []


def test_failing_remote_action_exits_1_naming_the_remote_error(proj, monkeypatch, sshd):
    _ssh_env(monkeypatch, sshd)
    r = proj.build("backend=remote-ssh", "task.description=boom")
    assert r.exit_code == 1, r.output
    doc = _doc(r)
    assert doc["status"] == "failed"
    msg = doc["message"]
    assert "stage 'heavy'" in msg and "failed on remote-ssh" in msg
    assert "RuntimeError: boom from the far side" in msg
    assert "at remote_actions.py:" in msg and " in heavy" in msg  # where it raised, on the far side
    assert "remote output: about to fail" in msg  # the tail of what the far side printed
    # nothing half-written: no heavy run recorded, its partial result.txt never reached the store
    records = proj.records("backend=remote-ssh", "task.description=boom")
    assert set(records) == {"prep"}
    store = [p.read_bytes() for p in (proj.root / "cache" / "objects").rglob("*") if p.is_file()]
    assert b"partial\n" not in store
    assert proj.cache_leftovers() == []


def test_cli_failure_without_json_prints_no_traceback(proj, monkeypatch, sshd):
    _ssh_env(monkeypatch, sshd)
    from kolmbuild.cli.main import cli

    r = CliRunner().invoke(cli, ["-C", str(proj.root), "build", "backend=remote-ssh", "task.description=boom"])
    assert r.exit_code == 1
    assert "boom from the far side" in r.output and "Traceback" not in r.output


def _slow_build(proj: StageProject, log: Path, env: dict[str, str], *args: str) -> tuple[Any, int]:
    """A real `kolmbuild build` subprocess, returned once its remote stage runs (with that stage's pid)."""
    import subprocess

    proc = subprocess.Popen([sys.executable, "-m", "kolmbuild", "-C", str(proj.root), "build", *args,
                             "task.description=slow"], env={**os.environ, **env}, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True)
    flag = log.with_name("slow.flag")
    deadline = time.monotonic() + 60
    while not flag.exists() or not flag.read_text():
        assert proc.poll() is None, proc.communicate()
        assert time.monotonic() < deadline, "the remote stage never started"
        time.sleep(0.05)
    return proc, int(flag.read_text())


def _terminate(proc: Any) -> str:
    proc.send_signal(signal.SIGTERM)
    _, err = proc.communicate(timeout=60)
    assert proc.returncode == 128 + signal.SIGTERM, err
    return str(err)


def _alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except (FileNotFoundError, IndexError):
        return False
    return state != "Z"


def test_killed_build_leaves_nothing_running_on_the_ssh_host(proj, log, sshd):
    """SIGTERM to a real `kolmbuild build`: the far side's stage runner goes when the connection does."""
    proc, remote_pid = _slow_build(proj, log, sshd.env(), "backend=remote-ssh")
    assert _alive(remote_pid)
    _terminate(proc)
    deadline = time.monotonic() + 10
    while _alive(remote_pid):
        assert time.monotonic() < deadline, "the stage kept running on the host after the build was killed"
        time.sleep(0.05)
    assert proj.cache_leftovers() == []


def test_shell_rule_runs_remotely_too(proj, monkeypatch, sshd):
    _ssh_env(monkeypatch, sshd)
    proj.yaml("rules/count.yaml", {
        "name": "count", "version": 1, "after": ["prep"], "outputs": ["count.txt", "where.txt"], "remote": True,
        "shell": 'wc -l < "$KOLM_UP_PREP_ROWS_JSONL" > "$KOLM_OUT/count.txt"; '
                 'echo "$KOLM_REMOTE_STAGE" > "$KOLM_OUT/where.txt"'})
    proj.yaml("kolmfile.yaml", {"version": 1, "pipeline": ["count"], "defaults": {"backend": "local-cpu"},
                                "targets": {"demo": {"task": "demo"}}})
    assert _ok(proj.build("backend=remote-ssh"))["ran"] == ["prep", "count"]
    outputs = proj.records("backend=remote-ssh")["count"][1]
    objects = proj.root / "cache" / "objects"
    assert (objects / outputs["count.txt"][-2:] / outputs["count.txt"]).read_text().strip() == "20"
    assert (objects / outputs["where.txt"][-2:] / outputs["where.txt"]).read_text() == "remote-ssh\n"


@pytest.mark.slow
def test_real_pipeline_runs_train_on_the_host_and_signs_where(project, monkeypatch, sshd):
    """The built-in pipeline over remote-ssh: train (remote: true) goes through the bundle and the far
    side's stage runner, and really trains there (one step); the signed manifest names the host."""
    import zipfile

    _ssh_env(monkeypatch, sshd)
    project.override_backend("remote-ssh", python=sys.executable, bootstrap={"mode": "wheel"})
    r = project.invoke("build", "backend=remote-ssh", "task.train.enabled=always", "task.train.max_steps=1", "--json")
    doc = _ok(r)
    assert doc["status"] == "built" and "train" in doc["ran"], r.output
    with zipfile.ZipFile(project.root / doc["artifact"]) as z:
        manifest = json.loads(z.read("manifest.json"))
    train = next(r for r in manifest["receipts"] if r["stage"] == "train")
    assert train["metrics"]["trained"] is True and train["metrics"]["steps"] == 1
    assert train["metrics"]["compute"] == {"backend": "remote-ssh", "kind": "self-hosted", "ran": "remote",
                                           "host": f"127.0.0.1:{sshd.port}"}
    assert "compute" not in next(r for r in manifest["receipts"] if r["stage"] == "distill")["metrics"]
    assert manifest["compute"]["backend"] == "remote-ssh"
    assert manifest["compute"]["provenance"]["host"] == f"127.0.0.1:{sshd.port}"


def test_missing_remote_host_is_a_user_error_before_anything_runs(proj):
    r = proj.build("backend=remote-ssh")
    assert r.exit_code == 2 and "KOLM_REMOTE_HOST" in r.output
    assert proj.runs() == []


def test_local_backend_ignores_the_opt_in(proj):
    assert _ok(proj.build())["ran"] == ["prep", "heavy"]
    assert proj.runs() == ["heavy start local"]
    assert "compute" not in proj.records()["heavy"][2]


# ------------------------------------------------------------------------------------ vast
def _point_vast(proj: StageProject, fake: FakeVast, sshd: Any | None) -> None:
    transport = {"transport": "ssh", "ssh_user": sshd.user} if sshd else {"transport": "local"}
    proj.backend("vast", base_url=fake.url, **FAST, **transport)


def test_vast_stage_provisions_runs_over_ssh_and_releases(proj, monkeypatch, sshd, _state_dir):
    with FakeVast() as fake:
        fake.ssh_port = sshd.port
        _point_vast(proj, fake, sshd)
        monkeypatch.setenv("KOLM_VAST_TOKEN", fake.token)
        monkeypatch.setenv("KOLM_SSH_KEY", str(sshd.key))
        monkeypatch.setenv("KOLM_REMOTE_KNOWN_HOSTS", str(sshd.known_hosts))
        doc = _ok(proj.build("backend=vast", "--budget", "5"))
        assert doc["ran"] == ["prep", "heavy"]
        assert fake.live() == 0 and len(fake.instances) == 1
        assert proj.runs() == ["heavy start vast"]
        compute = proj.records("backend=vast", "budget.usd=5")["heavy"][2]["compute"]
        iid = next(iter(fake.instances))
        assert compute["instance_id"] == iid and compute["offer_id"] == "5551" and compute["backend"] == "vast"
        rentals = json.loads((_state_dir / "rentals.json").read_text())["rentals"]
        assert [r["state"] for r in rentals.values()] == ["released"]
        assert fake.token not in (proj.root / "cache" / "state.db").read_bytes().decode("latin-1")


def test_vast_stage_crash_releases_the_instance(proj, monkeypatch, _state_dir):
    with FakeVast() as fake:
        _point_vast(proj, fake, None)
        monkeypatch.setenv("KOLM_VAST_TOKEN", fake.token)
        r = proj.build("backend=vast", "--budget", "5", "task.description=boom")
        assert r.exit_code == 1 and "boom from the far side" in r.output
        assert len(fake.instances) == 1 and fake.live() == 0
        rentals = json.loads((_state_dir / "rentals.json").read_text())["rentals"]
        assert [r["state"] for r in rentals.values()] == ["released"]


def test_vast_stage_killed_build_releases_the_instance(proj, monkeypatch, log, _state_dir):
    """SIGTERM to a real `kolmbuild build` while the stage runs on the rented machine."""
    with FakeVast() as fake:
        _point_vast(proj, fake, None)
        proc, _ = _slow_build(proj, log, {"KOLM_VAST_TOKEN": fake.token}, "backend=vast", "--budget", "5")
        assert fake.live() == 1
        err = _terminate(proc)
        assert "released" in err and fake.live() == 0
        assert [r["state"] for r in json.loads((_state_dir / "rentals.json").read_text())["rentals"].values()] \
            == ["released"]


def test_paid_backend_without_a_budget_is_refused_before_any_provider_call(proj, monkeypatch):
    with FakeVast() as fake:
        _point_vast(proj, fake, None)
        monkeypatch.setenv("KOLM_VAST_TOKEN", fake.token)
        r = proj.build("backend=vast")
        assert r.exit_code == 2 and "would rent vast" in r.output and "budget" in r.output
        assert fake.requests == [] and fake.live() == 0


def test_serverless_backend_refuses_a_remote_stage(proj, monkeypatch):
    monkeypatch.setenv("KOLM_TOGETHER_TOKEN", "t0ken-together-123")
    r = proj.build("backend=together", "--budget", "5")
    assert r.exit_code == 1 and "runs its provider's own training jobs" in r.output
    assert proj.runs() == []


# ---------------------------------------------------------------------------- the bundle
def _ctx(tmp_path: Path, inputs: dict[str, Path | None]) -> Any:
    from kolmbuild.engine.stage import StageContext

    out = tmp_path / "out"
    out.mkdir()
    return StageContext(target="t", stage="s", key="k", project_dir=tmp_path, outdir=out, cache_dir=tmp_path,
                        params={"task.description": "x"}, inputs=inputs, upstream={}, receipts={})


def test_bundle_carries_no_secrets_and_forwards_plain_env(tmp_path, monkeypatch):
    from kolmbuild.compute.stage_remote import make_bundle
    from kolmbuild.engine.rules import RuleSpec

    data = tmp_path / "data.jsonl"
    data.write_text('{"input": 1, "output": 2}\n')
    spec = RuleSpec(name="s", version=1, outputs=["o.txt"], action="kolmbuild.stages.train:run",
                    env=["SOURCE_DATE_EPOCH", "KOLM_VAST_TOKEN", "KOLM_SIGNING_KEY"], remote=True)
    environ = {"SOURCE_DATE_EPOCH": "1700000000", "KOLM_VAST_TOKEN": "sekret-token-123",
               "KOLM_SIGNING_KEY": "ed25519-signing-key-material"}
    b = make_bundle(_ctx(tmp_path, {"task.examples": data, "task.corpus": None}), spec, "vast",
                    tmp_path / "b", environ)
    desc = json.loads(b.description.read_text())
    assert desc["env"] == {"SOURCE_DATE_EPOCH": "1700000000"}
    assert desc["inputs"] == {"task.corpus": None, "task.examples": "inputs/task.examples/data.jsonl"}
    blob = b.description.read_bytes() + b.archive.read_bytes()
    assert b"sekret-token-123" not in blob and b"ed25519-signing-key-material" not in blob
    with tarfile.open(b.archive) as tar:
        assert tar.getnames() == ["inputs/task.examples/data.jsonl"]  # kolmbuild's own action is not shipped

    (tmp_path / "l").mkdir()
    leaky = replace(_ctx(tmp_path / "l", {}), params={"task.description": "sekret-token-123"})
    with pytest.raises(ComputeError, match="would carry the value of KOLM_VAST_TOKEN"):
        make_bundle(leaky, spec, "vast", tmp_path / "b2", environ)


def test_runner_refuses_a_tampered_or_unsafe_bundle(tmp_path, capsys):
    from kolmbuild.compute.stage_remote import make_bundle
    from kolmbuild.engine.rules import RuleSpec

    spec = RuleSpec(name="s", version=1, outputs=["o.txt"], shell="true")
    b = make_bundle(_ctx(tmp_path, {}), spec, "vast", tmp_path / "b", {})
    with tarfile.open(b.archive, "w") as tar:  # replaced after the digest was taken, and with a link
        info = tarfile.TarInfo("inputs/evil")
        info.type, info.linkname = tarfile.SYMTYPE, "/etc/passwd"
        tar.addfile(info)
    assert wire.main(["stage_runner", str(b.description)]) == wire.EXIT_BAD_BUNDLE
    assert "sha256 does not match" in json.loads((b.description.parent / wire.RESULT).read_text())["error"]["message"]

    desc = json.loads(b.description.read_text())
    desc["archive"]["sha256"] = wire.sha256_file(b.archive)
    b.description.write_text(json.dumps(desc))
    assert wire.main(["stage_runner", str(b.description)]) == wire.EXIT_BAD_BUNDLE
    assert "refusing member 'inputs/evil'" in capsys.readouterr().err
    assert not (tmp_path / "b" / "work" / "inputs" / "evil").exists()


def test_progress_lines_round_trip(tmp_path):
    import io

    from kolmbuild.compute.stage_remote import RemoteLines

    class Rec:
        def __init__(self) -> None:
            self.calls: list[tuple[Any, ...]] = []

        def start(self, description: str, total: float | None = None) -> None:
            self.calls.append(("start", description, total))

        def advance(self, amount: float = 1.0, **fields: Any) -> None:
            self.calls.append(("advance", amount, fields))

        def log(self, message: str) -> None:
            self.calls.append(("log", message))

    buf = io.StringIO()
    far = wire.LineProgress(buf)
    far.start("train", total=3)
    far.advance(2, loss=0.5)
    far.log("hi")
    rec = Rec()
    lines = RemoteLines(rec)
    for line in [*buf.getvalue().splitlines(), "plain output", wire.PROGRESS_PREFIX + "{not json"]:
        lines(line)
    assert rec.calls == [("start", "train", 3.0), ("advance", 2.0, {"loss": 0.5}), ("log", "hi"),
                         ("log", "plain output"), ("log", wire.PROGRESS_PREFIX + "{not json")]
    assert lines.tail == ["plain output", wire.PROGRESS_PREFIX + "{not json"]


def test_compute_block_carries_where_the_train_stage_ran():
    from kolmbuild.compute import compute_block
    from kolmbuild.engine.stage import StageReceipt
    from kolmbuild.resources import builtin_dir

    spec = yaml.safe_load((builtin_dir("conf") / "backend" / "vast.yaml").read_text())
    record = {"backend": "vast", "kind": "cloud-marketplace", "ran": "remote", "instance_id": "1000",
              "run_id": "kolm-x", "offer_id": "5551", "host": "127.0.0.1"}
    train = StageReceipt(stage="train", version=1, key="k", outputs={}, metrics={"trained": False, "compute": record})
    block = compute_block(spec, {"train": train})
    assert {k: block["provenance"][k] for k in ("instance_id", "run_id", "offer_id", "host")} == {
        "instance_id": "1000", "run_id": "kolm-x", "offer_id": "5551", "host": "127.0.0.1"}
    assert block == compute_block(spec, {"train": train})  # deterministic
