"""Receipts against components: a manifest whose receipt chain disagrees with its components is
never sealed by the writer, and `verify` refuses one made some other way."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from click.testing import CliRunner

from kolmbuild.artifact import verify_artifact, writer
from kolmbuild.artifact.receipts import receipt_mismatches
from kolmbuild.cli.main import cli
from kolmbuild.errors import ArtifactError
from kolmbuild.hashing.cid import cid_of_bytes

from .conftest import sample_components, write_sample


def _receipts(recipes_cid: str) -> list[dict]:
    comps = sample_components()
    return [
        {"stage": "ingest", "version": 1, "key": "bk1", "metrics": {},
         "outputs": {"heldout.jsonl": str(cid_of_bytes(comps["heldout"])), "train.jsonl": "bafkreiother"}},
        {"stage": "decompose", "version": 4, "key": "bk2", "metrics": {}, "outputs": {"recipes.json": recipes_cid}},
    ]  # fmt: skip


def test_agreeing_receipts_seal_and_verify(key, tmp_path: Path) -> None:
    good = str(cid_of_bytes(sample_components()["recipes"]))
    written = write_sample(tmp_path / "a.kolm", receipts=_receipts(good))
    report = verify_artifact(written.path)
    assert report.ok, report.failure_text()
    [check] = [c for c in report.checks if c.name == "receipts"]
    assert check.ok and "2 receipt(s)" in check.detail


def test_the_writer_refuses_to_seal_a_component_its_receipt_disagrees_with(key, tmp_path: Path) -> None:
    wrong = str(cid_of_bytes(b"the recipes decompose really made"))
    with pytest.raises(ArtifactError, match="component 'recipes' is .* but the decompose receipt's recipes.json is"):
        write_sample(tmp_path / "a.kolm", receipts=_receipts(wrong))
    assert not (tmp_path / "a.kolm").exists()


def test_verify_refuses_a_signed_manifest_whose_receipts_disagree(key, tmp_path: Path, monkeypatch) -> None:
    """Made by a writer without the check (an older kolmbuild, or by hand): every signature is
    valid, yet verify fails it on the receipts and exits 2."""
    wrong = str(cid_of_bytes(b"the recipes decompose really made"))
    with monkeypatch.context() as m:
        m.setattr(writer, "receipt_mismatches", lambda doc: [])
        written = write_sample(tmp_path / "a.kolm", receipts=_receipts(wrong))
    report = verify_artifact(written.path)
    assert not report.ok
    failed = {c.name: c.detail for c in report.checks if not c.ok}
    assert list(failed) == ["receipts"]  # the signatures themselves are fine
    assert "recipes" in failed["receipts"] and wrong in failed["receipts"]
    r = CliRunner().invoke(cli, ["verify", str(written.path), "--json"])
    assert r.exit_code == 2
    assert {c["name"]: c["ok"] for c in json.loads(r.stdout)["checks"]}["receipts"] is False


def test_a_receipt_output_whose_component_is_missing_is_a_mismatch() -> None:
    doc = {"components": {}, "receipts": [{"stage": "decompose", "outputs": {"recipes.json": "bafkreix"}}]}
    assert receipt_mismatches(doc) == [
        "the decompose receipt lists recipes.json (bafkreix) but component 'recipes' is absent"]
    assert receipt_mismatches({"components": {}, "receipts": [{"stage": 3}]}) == [
        "receipt 0 is not a {stage, outputs} record"]
