"""Test artifacts for the registry.

Until ``kolmbuild.artifact`` is available, registry logic is exercised with a minimal stand-in
format (a zip holding manifest.json, identified by the CID of its canonical manifest) passed to
:class:`Registry` as ``inspect``/``verify``; the real-format round trip lives in
test_registry_real.py and runs once the artifact package exists.
"""

from __future__ import annotations

import json
import uuid
import zipfile
from pathlib import Path
from typing import Any

import pytest

from kolmbuild.errors import ArtifactError
from kolmbuild.hashing import cid_of_json
from kolmbuild.publish import ArtifactInfo


def make_zip_artifact(path: Path, target: str, version: str, k: float | None, payload: str = "") -> Path:
    manifest = {"format": "test-kolm", "target": target, "version": version, "metrics": {"K": k},
                "payload": payload}  # fmt: skip
    path.parent.mkdir(parents=True, exist_ok=True)
    with zipfile.ZipFile(path, "w") as z:
        z.writestr("manifest.json", json.dumps(manifest))
        z.writestr("recipes.json", json.dumps({"payload": payload}))
    return path


def zip_info(path: Path, **_: Any) -> ArtifactInfo:
    with zipfile.ZipFile(path) as z:
        m = json.loads(z.read("manifest.json"))
    return ArtifactInfo(m["target"], m["version"], str(cid_of_json(m)), m["metrics"]["K"])


def zip_verify(path: Path, **_: Any) -> None:
    try:
        with zipfile.ZipFile(path) as z:
            bad = z.testzip()
    except zipfile.BadZipFile as exc:
        raise ArtifactError(f"{path}: not a zip") from exc
    if bad:
        raise ArtifactError(f"{path}: {bad} is corrupt")


@pytest.fixture
def make_artifact():
    return make_zip_artifact


@pytest.fixture
def fake_api(monkeypatch: pytest.MonkeyPatch) -> None:
    """Make Registry (and so the CLI) read the stand-in format."""
    monkeypatch.setattr("kolmbuild.publish.registry.artifact_info", zip_info)
    monkeypatch.setattr("kolmbuild.publish.registry.verify_file", zip_verify)


@pytest.fixture(params=["folder", "memory"])
def registry_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    if request.param == "folder":
        return str(tmp_path / "registry")
    return f"memory://kolm-test-{uuid.uuid4().hex}"
