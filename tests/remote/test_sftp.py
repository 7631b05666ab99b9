"""The remote stage cache over SFTP: the loopback OpenSSH server the compute tests start."""

from __future__ import annotations

import json
import subprocess

import pytest

from tests.compute.sshd import SSHD, start_sshd
from tests.remote.conftest import ARTIFACT

STAGES = ["count", "echo", "joined", "pack"]


@pytest.fixture(scope="module")
def sshd(tmp_path_factory):
    if SSHD is None:  # never skipped: this area's tests must run wherever the suite runs
        raise RuntimeError("OpenSSH server (sshd) is not installed: apt-get install openssh-server")
    server = start_sshd(tmp_path_factory.mktemp("sshd"))
    yield server
    server.proc.terminate()
    server.proc.wait(timeout=10)


def test_two_checkouts_share_stages_over_sftp(machines, tmp_path, sshd):
    a, b = machines
    folder = tmp_path / "sftp-remote"
    url = f"sftp://{sshd.user}@127.0.0.1:{sshd.port}{folder}"
    for m in (a, b):  # the key is a path, not a secret: the SSH key itself stays where it is
        m.set_cache(storage_options={"key_filename": str(sshd.key), "look_for_keys": False, "allow_agent": False})
    first = a.build("--remote", url, "--push")
    assert sorted(first["pushed"]) == STAGES
    assert len(list((folder / "runs").glob("*.json"))) == 4
    assert not list(folder.rglob(".tmp-*"))  # written under a temp name, renamed into place

    b.trust(a)
    second = b.build("--remote", url)
    assert second["ran"] == [] and sorted(second["pulled"]) == STAGES and b.runs() == []
    assert (b.root / ARTIFACT).read_bytes() == (a.root / ARTIFACT).read_bytes()


def test_refused_key_is_one_warning_and_a_local_build(machines, tmp_path, sshd):
    a, _ = machines
    wrong = tmp_path / "wrong_key"
    subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", str(wrong)], check=True)
    a.set_cache(storage_options={"key_filename": str(wrong), "look_for_keys": False, "allow_agent": False})
    url = f"sftp://{sshd.user}@127.0.0.1:{sshd.port}{tmp_path / 'r'}"
    r = a.invoke("build", "--json", "--remote", url, "--push")
    assert r.exit_code == 0, r.output
    doc = json.loads(r.stdout)[0]
    assert sorted(doc["ran"]) == STAGES and doc["pushed"] == []
    warnings = [ln for ln in r.stderr.splitlines() if "warning" in ln]
    assert len(warnings) == 1 and "Authentication" in warnings[0] and "building locally" in warnings[0], warnings
    assert str(wrong) not in r.output  # the key's path is not echoed either

    r = a.invoke("build", "--remote", url, "--remote-required", "task.eval=data/train.jsonl")
    assert r.exit_code == 2 and "is unavailable" in r.output
