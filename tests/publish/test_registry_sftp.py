"""A registry over SFTP against a real OpenSSH server on loopback (the compute tests' sshd)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from kolmbuild.errors import UserInputError
from tests.compute.sshd import SSHD, start_sshd

pytestmark = pytest.mark.skipif(SSHD is None, reason="OpenSSH server (sshd) is not installed: apt-get install "
                                                      "openssh-server")


def _artifact(dest: Path, note: str) -> Path:
    from kolmbuild.artifact import write_artifact

    write_artifact(dest, target="support", version="1.0.0", task={"shape": {}, "note": note},
                   components={"recipes": json.dumps({"note": note}).encode()}, metrics={"K": 0.9},
                   created="2026-01-01T00:00:00Z")
    return dest


def test_publish_and_pull_over_sftp(tmp_path: Path) -> None:
    from kolmbuild.artifact import verify_artifact
    from kolmbuild.publish import Registry

    server = start_sshd(tmp_path / "sshd")
    try:
        remote = tmp_path / "remote-registry"
        url = f"ssh://{server.user}@127.0.0.1:{server.port}{remote}"
        reg = Registry(url, storage_options={"key_filename": str(server.key)})
        a = _artifact(tmp_path / "a.kolm", "a")
        first = reg.publish(a)
        assert first.created and (remote / "index.json").is_file()  # it landed on the SSH host's disk
        assert not reg.publish(a).created  # the same artifact again: a no-op
        with pytest.raises(UserInputError, match="refusing to overwrite"):
            reg.publish(_artifact(tmp_path / "b.kolm", "b"))  # same name and version, other bytes
        out = tmp_path / "pulled.kolm"
        reg.pull("support@1.0.0", out)
        assert out.read_bytes() == a.read_bytes() and verify_artifact(out).ok
    finally:
        server.proc.terminate()
        server.proc.wait(timeout=10)
