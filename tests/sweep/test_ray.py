"""Sweep points on a real Ray cluster: `ray start --head --num-cpus 2`, in namespaces of the test's own.

The head, its workers and the sweep run in a network namespace whose only interface is loopback (see
tests/sweep/raycluster.py); the remote cache is a folder both sides reach. The workers have their own
kolmbuild config folder with a signing key made for the test (the "cluster key"); the coordinator has
another, and trusts the cluster key through the project's cache.trust. The project is the real PHI
pipeline (ingest … package, a signed .kolm).

Proven here: a 2-point sweep built on Ray leaves 2 artifacts byte-identical to the same points built
locally (with the cluster's key, as signatures are part of the bytes), the coordinator runs no stage
(its cache holds nothing but the two artifacts it pulled), and summary.json names the executor and
the worker node; an untrusted cluster key, or no remote cache, is refused with exit 2 before anything
is written.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import yaml

from kolmbuild.artifact import verify_artifact
from kolmbuild.artifact.keys import generate_keypair
from kolmbuild.hashing.files import file_cid
from tests.conftest import REPO
from tests.sweep.conftest import TOKENS, WaitProject, kolmbuild, phi_project
from tests.sweep.raycluster import RayCluster, missing_tools

pytestmark = pytest.mark.timeout(900)  # the module's Ray head starts in the first test (20-60 s here)

EPOCH = "1700000000"  # SOURCE_DATE_EPOCH: bit-for-bit builds (measured times left out of the manifest)
SWEEP = ("-m", "gates=default,strict")
POINTS = ["01-phi-redactor-gates-default", "02-phi-redactor-gates-strict"]
ARTIFACT = "phi-redactor-0.1.0.kolm"


def _base_env() -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k not in TOKENS and not k.startswith(("KOLM_", "RAY_"))}
    env["PYTHONPATH"] = os.pathsep.join([str(REPO), os.environ.get("PYTHONPATH", "")])
    return env


@dataclass
class Cluster:
    ray: RayCluster
    worker_config: Path  # the workers' kolmbuild config folder: keys/kolm-signing.pem is the cluster key

    @property
    def public_key(self) -> Path:
        return self.worker_config / "keys" / "kolm-signing.pub"

    def sweep_command(self, root: Path, *args: str) -> list[str]:
        return [sys.executable, "-m", "kolmbuild", "-C", str(root), "--executor", "ray", "--ray-address",
                self.ray.address, "--json", *args]

    def sweep(self, root: Path, config: Path, *args: str) -> subprocess.CompletedProcess[str]:
        """``kolmbuild -m …`` on this cluster, run inside its namespace as the coordinator."""
        return self.ray.run(self.sweep_command(root, *SWEEP, *args), _coordinator_env(config))


def _coordinator_env(config: Path, **more: str) -> dict[str, str]:
    return {**_base_env(), "KOLM_CONFIG_DIR": str(config), "KOLM_STATE_DIR": str(config / "state"),
            "SOURCE_DATE_EPOCH": EPOCH, **more}


@pytest.fixture(scope="module")
def cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Cluster]:
    gone = missing_tools()
    if gone:  # under CI=true tests/conftest.py turns this skip into a failure
        pytest.skip(f"a namespaced Ray cluster needs {', '.join(gone)} (util-linux, iproute2, `pip install ray`)")
    base = tmp_path_factory.mktemp("ray-cluster")
    worker_config = base / "worker-config"
    generate_keypair(worker_config / "keys")  # the cluster key, made for this test
    env = {**_base_env(), "KOLM_CONFIG_DIR": str(worker_config), "KOLM_STATE_DIR": str(base / "worker-state")}
    with RayCluster(env, num_cpus=2) as ray:
        yield Cluster(ray, worker_config)


def _project(root: Path, trust: Path | None) -> Path:
    phi_project(root, remote_train=False)
    if trust is not None:
        _trust(root, trust)
    return root


def _trust(root: Path, trust: Path) -> None:
    """The repository commits the cluster's public key and lists it in cache.trust."""
    (root / "keys").mkdir()
    shutil.copy(trust, root / "keys" / "cluster.pub")
    kf = root / "kolmfile.yaml"
    doc = yaml.safe_load(kf.read_text())
    doc["cache"] = {"trust": ["keys/cluster.pub"]}
    kf.write_text(yaml.safe_dump(doc, sort_keys=False))


def _summary(r: subprocess.CompletedProcess[str]) -> dict[str, Any]:
    assert r.returncode == 0, r.stderr[-4000:] + r.stdout[-4000:]
    return json.loads(r.stdout)


def _artifacts(root: Path) -> dict[str, bytes]:
    [sweep] = (root / "sweeps").iterdir()
    return {p.parent.name: p.read_bytes() for p in sorted(sweep.glob(f"*/{ARTIFACT}"))}


def test_two_points_on_ray_land_here_byte_identical_to_local_builds(cluster: Cluster, tmp_path: Path) -> None:
    root = _project(tmp_path / "proj", trust=cluster.public_key)
    remote = tmp_path / "remote"
    summary = _summary(cluster.sweep(root, tmp_path / "coordinator-config", "--remote", str(remote)))

    assert summary["executor"]["kind"] == "ray" and summary["executor"]["nodes"] == 1
    assert summary["executor"]["cpus"] == 2.0
    runs = summary["runs"]
    assert [r["name"] for r in runs] == POINTS and [r["status"] for r in runs] == ["ok", "ok"]
    for r in runs:  # built on the Ray worker: its node, the stages it ran
        assert r["executor"] == "ray"
        assert r["worker"]["host"] and len(r["worker"]["node_id"]) == 56, r["worker"]
        assert "package" in r["ran"] and "evaluate" in r["ran"], r
        assert r["k_score"] == 1.0
    assert len({r["worker"]["node_id"] for r in runs}) == 1  # one node: the test's head

    # the coordinator built nothing: its cache holds the two artifacts it took from the remote, no other object
    objects = {p.name for p in (root / "cache" / "objects").rglob("*") if p.is_file() and not p.name.startswith(".")}
    assert objects == {r["artifact_cid"] for r in runs}
    got = _artifacts(root)
    assert sorted(got) == POINTS and got[POINTS[0]] != got[POINTS[1]]
    for r in runs:
        art = root / r["artifact"]
        assert str(file_cid(art)) == r["artifact_cid"]
        assert verify_artifact(art, pubkey=cluster.public_key).ok  # signed by the worker, with the cluster key
    assert not (root / "artifacts").exists()  # a sweep leaves the default install path alone

    # the same points built locally (no Ray, no remote), signed with the cluster's key: the same bytes
    ref = _project(tmp_path / "reference", trust=None)
    ref_config = tmp_path / "reference-config"
    shutil.copytree(cluster.worker_config, ref_config)
    local = kolmbuild(ref, *SWEEP, "--json", env={"KOLM_CONFIG_DIR": str(ref_config), "SOURCE_DATE_EPOCH": EPOCH,
                                                  "KOLM_STATE_DIR": str(ref_config / "state")})
    assert [r["executor"] for r in _summary(local)["runs"]] == ["serial", "serial"]
    assert _artifacts(ref) == got


def test_workers_whose_key_is_not_trusted_are_refused_before_anything_is_written(cluster: Cluster,
                                                                                    tmp_path: Path) -> None:
    root = _project(tmp_path / "proj", trust=None)  # the coordinator does not trust the cluster key
    remote = tmp_path / "remote"
    r = cluster.sweep(root, tmp_path / "coordinator-config", "--remote", str(remote))
    assert r.returncode == 2, r.stderr[-3000:]
    fingerprint = subprocess.run(  # the message names the key, so the user knows which .pub to add
        [sys.executable, "-c", "import sys; from kolmbuild.artifact.keys import load_public_key, fingerprint; "
                               "print(fingerprint(load_public_key(__import__('pathlib').Path(sys.argv[1]))))",
         str(cluster.public_key)], capture_output=True, text=True, env=_base_env(), check=True).stdout.strip()
    assert "does not trust" in r.stderr and fingerprint[:16] in r.stderr, r.stderr[-3000:]
    assert "Traceback" not in r.stderr
    assert not (root / "sweeps").exists() and not (remote / "runs").exists()


def _child(pid: int, timeout_s: float = 30.0) -> int:
    """The process ``nsenter`` forked into the namespaces (the coordinator), as this machine numbers it."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        kids = Path(f"/proc/{pid}/task/{pid}/children").read_text().split()
        if kids and Path(f"/proc/{kids[0]}/cmdline").read_bytes().startswith(sys.executable.encode()):
            return int(kids[0])  # the fork has exec'd the coordinator
        time.sleep(0.05)
    raise AssertionError("nsenter started no coordinator")


def test_ctrl_c_cancels_the_points_on_the_workers_and_starts_no_further_one(cluster: Cluster, tmp_path: Path) -> None:
    """Two points build on the two CPUs (their stage sleeps), a third waits for one. SIGINT on the
    coordinator cancels their tasks: the workers' builds are interrupted (and would release what they
    rented), the third never starts, the sweep exits 130 with a summary that says it did not finish."""
    wait = WaitProject(tmp_path / "proj")
    _trust(wait.root, cluster.public_key)
    marks = tmp_path / "marks"
    marks.mkdir()
    env = _coordinator_env(tmp_path / "coordinator-config", SWEEP_SLEEP="300", SWEEP_MARK=str(marks))
    cmd = cluster.sweep_command(wait.root, "-m", "task.description=a,b,c", "--remote", str(tmp_path / "remote"))
    proc = subprocess.Popen(cluster.ray.command(cmd), env=env, text=True, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE)
    try:
        coordinator = _child(proc.pid)
        deadline = time.monotonic() + 180
        while len(list(marks.iterdir())) < 2:  # two far builds are sleeping in their stage
            assert proc.poll() is None and time.monotonic() < deadline, proc.communicate()
            time.sleep(0.2)
        os.kill(coordinator, signal.SIGINT)
        _, err = proc.communicate(timeout=120)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == 130, err[-3000:]
    assert "the sweep was stopped" in err and "Traceback" not in err, err[-3000:]
    assert sorted(m.name for m in marks.iterdir()) == ["a", "b"]  # c never started
    for mark in marks.iterdir():  # the builds were stopped (their pids are the namespace's)
        alive = cluster.ray.run(["kill", "-0", mark.read_text()], env=_base_env())
        assert alive.returncode != 0, f"the build of point {mark.name} still runs"
    [summary_path] = (wait.root / "sweeps").glob("*/summary.json")
    summary = json.loads(summary_path.read_text())
    assert summary["complete"] is False and summary["executor"]["kind"] == "ray"
    assert [r["status"] for r in summary["runs"]] == ["failed"] * 3


def test_without_a_remote_cache_the_ray_executor_is_refused(tmp_path: Path) -> None:
    root = _project(tmp_path / "proj", trust=None)
    # nothing listens at port 9: the refusal comes before any connection is tried
    r = kolmbuild(root, *SWEEP, "--executor", "ray", "--ray-address", "127.0.0.1:9")
    assert r.returncode == 2
    assert "the ray executor needs a remote cache" in r.stderr and "--remote URL" in r.stderr, r.stderr
    assert "Traceback" not in r.stderr and not (root / "sweeps").exists()


@pytest.mark.parametrize(("executor", "args", "says"), [
    ({"kind": "rya"}, (), "executor.kind: Input should be 'local' or 'ray'"),
    ({"kind": "ray", "address": "local"}, (), "executor.address: Value error, expected HOST:PORT, ray://HOST:PORT "
                                              "or auto (got 'local')"),
    ({"kind": "ray", "adress": "h:1"}, (), "executor.adress: unknown key"),
    ({"kind": "ray"}, (), "the ray executor needs the address of a running Ray cluster"),
    ({}, ("--ray-address", "nowhere"), "--ray-address: expected HOST:PORT, ray://HOST:PORT or auto (got 'nowhere')"),
    ({}, ("--ray-address", "h:70000"), "--ray-address: expected HOST:PORT"),
    ({}, ("--executor", "local", "--ray-address", "h:1"), "goes with --executor ray"),
])
def test_bad_executor_settings_exit_2_naming_them(tmp_path: Path, executor: dict[str, Any], args: tuple[str, ...],
                                                 says: str) -> None:
    root = _project(tmp_path / "proj", trust=None)
    if executor:
        kf = root / "kolmfile.yaml"
        kf.write_text(kf.read_text() + yaml.safe_dump({"executor": executor}))
    r = kolmbuild(root, *SWEEP, *args)
    assert r.returncode == 2 and says in r.stderr, r.stderr
    assert "Traceback" not in r.stderr and not (root / "sweeps").exists()


def test_ray_flags_without_a_sweep_are_refused(tmp_path: Path) -> None:
    root = _project(tmp_path / "proj", trust=None)
    r = kolmbuild(root, "--executor", "ray", "--ray-address", "127.0.0.1:9")
    assert r.returncode == 2 and "use them with -m" in r.stderr, r.stderr


def test_the_kolmfile_executor_takes_its_address_from_ray_address(tmp_path: Path) -> None:
    root = _project(tmp_path / "proj", trust=None)
    kf = root / "kolmfile.yaml"
    kf.write_text(kf.read_text() + yaml.safe_dump({"executor": {"kind": "ray"}}))
    bad = kolmbuild(root, *SWEEP, env={"RAY_ADDRESS": "nowhere"})
    assert bad.returncode == 2 and "RAY_ADDRESS: expected HOST:PORT" in bad.stderr, bad.stderr
    ok = kolmbuild(root, *SWEEP, env={"RAY_ADDRESS": "127.0.0.1:9"})  # accepted; then the missing remote is said
    assert ok.returncode == 2 and "the ray executor needs a remote cache" in ok.stderr, ok.stderr
    local = kolmbuild(root, *SWEEP, "--executor", "local", "--json", env={"RAY_ADDRESS": "nowhere"})
    assert [r["executor"] for r in _summary(local)["runs"]] == ["serial", "serial"]  # the flag wins


def _backend(name: str) -> Any:
    from kolmbuild.config.models import BackendSpec
    from kolmbuild.resources import builtin_dir

    return BackendSpec.model_validate(yaml.safe_load((builtin_dir("conf") / "backend" / f"{name}.yaml").read_text()))


def test_each_point_asks_ray_for_what_its_backend_needs() -> None:
    from kolmbuild.sweep.ray_executor import _offers, resources

    assert resources(_backend("local-cpu"), 1) == {"num_cpus": 1}
    assert resources(_backend("local-cpu"), 4) == {"num_cpus": 4}  # -j: the point's stage threads
    assert resources(_backend("local-cuda"), 1) == {"num_cpus": 1, "num_gpus": 1}
    assert resources(_backend("local-rocm"), 1) == {"num_cpus": 1, "num_gpus": 1}
    assert resources(_backend("local-mps"), 1) == {"num_cpus": 1, "resources": {"mps": 1}}
    assert resources(_backend("vast"), 1) == {"num_cpus": 1}  # the GPU is rented; the worker only waits
    assert resources(_backend("remote-ssh"), 2) == {"num_cpus": 2}
    cpu_node, gpu_node = {"CPU": 2.0, "memory": 1e9}, {"CPU": 8.0, "GPU": 1.0}
    assert _offers(cpu_node, resources(_backend("local-cpu"), 2))
    assert not _offers(cpu_node, resources(_backend("local-cpu"), 4))
    assert not _offers(cpu_node, resources(_backend("local-cuda"), 1)) and _offers(gpu_node, {"num_cpus": 1, "num_gpus": 1})
    assert not _offers(gpu_node, resources(_backend("local-mps"), 1))


def test_a_point_no_node_can_run_fails_at_once_and_the_others_build(cluster: Cluster, tmp_path: Path) -> None:
    """The test's head has no GPU: the local-cuda point fails without waiting for one; local-cpu builds."""
    root = _project(tmp_path / "proj", trust=cluster.public_key)
    env = _coordinator_env(tmp_path / "coordinator-config")
    r = cluster.ray.run(cluster.sweep_command(root, "-m", "backend=local-cpu,local-cuda", "--remote",
                                              str(tmp_path / "remote")), env, timeout_s=300)
    assert r.returncode == 2, r.stderr[-3000:]  # the setup is the user's to change
    runs = json.loads(r.stdout)["runs"]
    assert [x["status"] for x in runs] == ["ok", "failed"]
    assert runs[0]["worker"]["node_id"] and "package" in runs[0]["ran"]
    assert "no node of the Ray cluster offers what backend 'local-cuda' needs (1 CPU, a GPU)" in runs[1]["message"]
    assert runs[1]["ran"] == [] and runs[1]["artifact"] is None
