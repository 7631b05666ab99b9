"""A remote rule whose action decides locally that it has nothing to do rents nothing."""

from __future__ import annotations

import shutil
from pathlib import Path

from click.testing import CliRunner

from kolmbuild.cli.main import cli
from tests.conftest import REPO


def test_recipe_only_build_on_a_paid_backend_rents_nothing(tmp_path: Path, monkeypatch) -> None:
    # no vast token and no budget: any attempt to rent would be refused (exit 2)
    monkeypatch.delenv("KOLM_VAST_TOKEN", raising=False)
    monkeypatch.setenv("KOLM_STATE_DIR", str(tmp_path / "state"))
    root = tmp_path / "proj"
    root.mkdir()
    shutil.copy(REPO / "kolmfile.yaml", root / "kolmfile.yaml")
    shutil.copytree(REPO / "examples" / "phi-redactor", root / "examples" / "phi-redactor")
    r = CliRunner().invoke(cli, ["-C", str(root), "backend=vast"])
    assert r.exit_code == 0, r.output
    from kolmbuild.artifact import open_artifact

    with open_artifact(root / "artifacts/phi-redactor-0.1.0.kolm") as a:
        train = next(x for x in a.manifest["receipts"] if x["stage"] == "train")
        assert train["metrics"]["trained"] is False
        assert "compute" not in train["metrics"]  # it ran here, not on a rented machine
        assert a.manifest["compute"]["backend"] == "vast"
