"""Round trip with real .kolm files (kolmbuild.artifact). Skipped until that package is installed."""

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
    manifest = {
        "target": "support",
        "version": version,
        "metrics": {"K": k},
        "task": {"shape": {}},
        "note": note,
    }
    # ARTIFACT's writer; if its signature differs, adapt this one call (the rest is API-pinned).
    artifact_api.write_artifact(
        dest, manifest=manifest, components={"recipes": json.dumps({"note": note}).encode()}
    )
    return dest


def test_real_artifacts_publish_pull_and_refuse(tmp_path: Path) -> None:
    api = pytest.importorskip("kolmbuild.artifact")
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
