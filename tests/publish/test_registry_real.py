"""Round trip with real .kolm files written and verified by kolmbuild.artifact."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from click.testing import CliRunner

from kolmbuild.errors import ArtifactError


def _cli(*args: str):
    from kolmbuild.cli.main import cli

    return CliRunner().invoke(cli, list(args), catch_exceptions=False)


def _make(artifact_api, dest: Path, version: str, k: float, note: str) -> Path:
    artifact_api.write_artifact(
        dest,
        target="support",
        version=version,
        task={"shape": {}, "note": note},
        components={"recipes": json.dumps({"note": note}).encode()},
        metrics={"K": k},
        created="2026-01-01T00:00:00Z",
    )
    return dest


def test_real_artifacts_publish_pull_and_refuse(tmp_path: Path) -> None:
    import kolmbuild.artifact as api

    a = _make(api, tmp_path / "a.kolm", "0.1.0", 0.81, "a")
    b = _make(api, tmp_path / "b.kolm", "0.1.0", 0.9, "b")
    url = f"{tmp_path / 'registry'}"
    r = _cli("publish", str(a), "--to", url, "--json")
    assert r.exit_code == 0, r.output
    with api.open_artifact(a) as art:
        assert json.loads(r.output)["cid"] == art.manifest_cid
    r = _cli("publish", str(b), "--to", url)
    assert r.exit_code == 2 and "refusing to overwrite" in r.output
    out = tmp_path / "pulled.kolm"
    r = _cli("pull", "support", "--from", url, "--out", str(out))
    assert r.exit_code == 0, r.output
    assert api.verify_artifact(out).ok and out.read_bytes() == a.read_bytes()


def test_a_failed_verification_names_each_failed_check(tmp_path: Path) -> None:
    """verify_file reads the real VerifyReport/Check types (it used to duck-type a ``passed`` field
    Check does not have, and a ``message`` it does not have either)."""
    from cryptography.hazmat.primitives.asymmetric import ec

    import kolmbuild.artifact as api
    from kolmbuild.publish.registry import verify_file

    a = _make(api, tmp_path / "a.kolm", "0.1.0", 0.81, "a")
    verify_file(a)  # intact: no error
    stranger = ec.generate_private_key(ec.SECP256R1()).public_key()
    report = api.verify_artifact(a, pubkey=stranger)
    failed = [c for c in report.checks if not c.ok]
    assert not report.ok and failed
    with pytest.raises(ArtifactError) as err:
        verify_file(a, pubkey=stranger)
    assert str(err.value) == f"{a}: verification failed: " + "; ".join(f"{c.name}: {c.detail}" for c in failed)
