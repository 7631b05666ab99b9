"""``kolmbuild run`` with networking disabled for real: a child process in a new network namespace
(``unshare -n``: no interface but a downed loopback), plus an audit hook in that child that records
every socket connect / DNS lookup, so a swallowed network attempt is caught too."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from runtime_helpers import MakeArtifact

CHILD = r"""
import json, sys
attempts = []
def hook(event, args):
    if event in ("socket.connect", "socket.getaddrinfo", "socket.sendto", "socket.sendmsg"):
        attempts.append(event)
        raise OSError("network use at run time: " + event)
sys.addaudithook(hook)
from kolmbuild.cli.main import main
code = main(sys.argv[1:-1])  # the last argument names the marker file
with open(sys.argv[-1] + ".net.json", "w") as f:
    json.dump(attempts, f)
sys.exit(code)
"""


def _unshare_works() -> bool:
    exe = shutil.which("unshare")
    if exe is None:
        return False
    return subprocess.run([exe, "-rn", "true"], capture_output=True).returncode == 0


@pytest.mark.skipif(not _unshare_works(), reason="unshare -n is not permitted here (the audit-hook test below still runs)")
def test_run_answers_in_a_network_namespace(make_artifact: MakeArtifact, smollm2_sha: str, tmp_path: Path) -> None:
    art = make_artifact(base={"name": "smollm2", "sha256": smollm2_sha})
    inputs = tmp_path / "in.jsonl"
    inputs.write_text(json.dumps({"input": "I loved every minute of it."}) + "\n")
    probe = subprocess.run(["unshare", "-rn", sys.executable, "-c",
                            "import socket; socket.create_connection(('1.1.1.1', 53), timeout=2)"],
                           capture_output=True, text=True)
    assert probe.returncode != 0  # the namespace really has no network
    env = dict(os.environ, HF_HUB_OFFLINE="0", TRANSFORMERS_OFFLINE="0")  # offline by design, not by flag
    marker = tmp_path / "marker"
    res = subprocess.run(["unshare", "-rn", sys.executable, "-c", CHILD, "run", str(art), "--file", str(inputs),
                          "--json", "--threads", "1", str(marker)], capture_output=True, text=True, env=env, timeout=300)
    assert res.returncode == 0, res.stderr
    row = json.loads(res.stdout.splitlines()[0])
    assert row["route"] == "model" and row["output"] in ("positive", "negative")
    assert json.loads(Path(str(marker) + ".net.json").read_text()) == []


def test_run_makes_no_network_attempt(make_artifact: MakeArtifact, smollm2_sha: str, tmp_path: Path) -> None:
    art = make_artifact(base={"name": "smollm2", "sha256": smollm2_sha})
    marker = tmp_path / "m"
    res = subprocess.run([sys.executable, "-c", CHILD, "run", str(art), "What a dull, tiring film.", "--threads", "1",
                          str(marker)], capture_output=True, text=True, timeout=300)
    assert res.returncode == 0, res.stderr
    assert res.stdout.strip() in ("positive", "negative")
    assert json.loads(Path(str(marker) + ".net.json").read_text()) == []
