"""The real pipelines, built twice in two fresh folders, give byte-identical artifacts.

Nothing is stubbed: ingest, recall, distill, decompose, train, evaluate and package all run. The
two folders differ in their absolute paths and build at different times, so an artifact that
depended on either (or on anything else but its inputs) would differ. Both builds sign with the
same key (the test's user config) under $SOURCE_DATE_EPOCH, the reproducible-builds convention this
project follows: it fixes `created` and leaves the compute block's measured times out (they differ
from run to run). Without it, the two manifests differ in those measured values only.
"""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
from click.testing import CliRunner

from kolmbuild.artifact import open_artifact, verify_artifact
from kolmbuild.cli.main import cli
from tests.conftest import REPO


def _build(root: Path) -> Path:
    r = CliRunner().invoke(cli, ["-C", str(root)], catch_exceptions=False)
    assert r.exit_code == 0, r.output
    [artifact] = (root / "artifacts").glob("*.kolm")
    report = verify_artifact(artifact)
    assert report.ok, report.failure_text()
    return artifact


def _phi(root: Path) -> Path:
    (root / "examples").mkdir(parents=True)
    shutil.copy(REPO / "kolmfile.yaml", root / "kolmfile.yaml")
    shutil.copytree(REPO / "examples" / "phi-redactor", root / "examples" / "phi-redactor")
    return root


def _support_router(root: Path) -> Path:
    shutil.copytree(REPO / "examples" / "support-router", root)
    return root


def _same_bytes(a: Path, b: Path) -> None:
    assert a.name == b.name
    if a.read_bytes() != b.read_bytes():  # say which member differs, not just "the bytes differ"
        with open_artifact(a) as x, open_artifact(b) as y:
            assert x.manifest == y.manifest
            for name in x.components:
                assert x.read(name) == y.read(name), f"component {name} differs"
        raise AssertionError(f"{a} and {b} differ outside the manifest and components")


EPOCH = "1764547200"  # 2025-12-01T00:00:00Z


def test_the_phi_redactor_builds_to_the_same_bytes_in_two_fresh_folders(tmp_path: Path, monkeypatch) -> None:
    monkeypatch.setenv("SOURCE_DATE_EPOCH", EPOCH)
    first = _build(_phi(tmp_path / "one"))
    second = _build(_phi(tmp_path / "elsewhere" / "two"))
    _same_bytes(first, second)
    with open_artifact(first) as art:
        assert [r["stage"] for r in art.manifest["receipts"]] == [
            "ingest", "recall", "distill", "decompose", "train", "evaluate"]


def test_without_source_date_epoch_only_the_measured_values_differ(tmp_path: Path, monkeypatch) -> None:
    monkeypatch.delenv("SOURCE_DATE_EPOCH", raising=False)
    first = _build(_phi(tmp_path / "one"))
    second = _build(_phi(tmp_path / "elsewhere" / "two"))
    with open_artifact(first) as x, open_artifact(second) as y:
        a, b = x.manifest, y.manifest
        for name in x.components:
            assert x.read(name) == y.read(name), f"component {name} differs"
    assert a["created"] == b["created"] == "1980-01-01T00:00:00Z"
    measured = [m["compute"].pop("actual") for m in (a, b)]
    assert a == b  # everything but the measured times
    assert all(m["duration_seconds"] > 0 and m["cost_usd"] == 0.0 for m in measured)


@pytest.mark.slow
@pytest.mark.timeout(1200)  # two LoRA trainings on CPU: about 90 s each on a quiet 2-core machine, far more on a busy one
def test_the_support_router_trains_to_the_same_bytes_in_two_fresh_folders(tmp_path: Path, monkeypatch) -> None:
    monkeypatch.setenv("SOURCE_DATE_EPOCH", EPOCH)
    first = _build(_support_router(tmp_path / "one"))
    second = _build(_support_router(tmp_path / "elsewhere" / "two"))
    _same_bytes(first, second)
    with open_artifact(first) as art:
        train = next(r for r in art.manifest["receipts"] if r["stage"] == "train")
        assert train["metrics"].get("trained") is True, train["metrics"]  # a real LoRA, not a skip
        assert {"adapter", "adapter_gguf"} <= set(art.components)
