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


def test_without_artifact_package_the_error_is_clear(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import sys

    from kolmbuild.errors import KolmError
    from kolmbuild.publish import Registry

    monkeypatch.setitem(sys.modules, "kolmbuild.artifact", None)  # import fails like a missing module
    f = tmp_path / "x.kolm"
    f.write_bytes(b"PK\x05\x06" + b"\0" * 18)
    with pytest.raises((KolmError, ArtifactError), match="kolmbuild.artifact"):
        Registry(str(tmp_path / "r")).publish(f)
