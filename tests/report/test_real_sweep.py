"""A real two-point sweep of the root kolmfile: both builds run the real pipeline, the summary
carries their K-scores, and the report is written beside it and renders offline."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
from pathlib import Path

from click.testing import CliRunner

from kolmbuild.cli.main import cli
from tests.conftest import REPO
from tests.report.test_report import CHROMIUM_FLAGS


def test_two_point_sweep_writes_summary_and_offline_report(tmp_path: Path, chromium: str) -> None:
    root = tmp_path / "proj"
    root.mkdir()
    shutil.copy(REPO / "kolmfile.yaml", root / "kolmfile.yaml")
    shutil.copytree(REPO / "examples" / "phi-redactor", root / "examples" / "phi-redactor")
    r = CliRunner().invoke(cli, ["-C", str(root), "-m", "gates=default,strict", "--json"])
    assert r.exit_code == 0, r.output
    summary = json.loads(r.stdout)
    runs = summary["runs"]
    assert [(x["gates"], x["status"]) for x in runs] == [("default", "ok"), ("strict", "ok")]
    assert all(x["k_score"] == 1.0 and x["backend"] == "local-cpu" for x in runs)
    [sweep] = list((root / "sweeps").iterdir())
    assert json.loads((sweep / "summary.json").read_text()) == summary
    report = sweep / "report.html"
    html = report.read_text()
    assert "<script" not in html and len(re.findall(r'<g class="point[ "]', html)) == 2
    # the same K at the same measured cost ($0 on local-cpu): both runs are on the Pareto front
    assert html.count('<g class="point front">') == 2
    assert all(x["cost_usd"] == 0.0 and x["stage_seconds"] > 0 and x["artifact_cid"] for x in runs)
    dom = subprocess.run([chromium, *CHROMIUM_FLAGS, f"--user-data-dir={tmp_path / 'profile'}", "--dump-dom",
                          report.as_uri()], capture_output=True, text=True, timeout=120)
    assert dom.returncode == 0, dom.stderr[-2000:]
    assert dom.stdout.count("<circle") >= 2 and "Measured cost vs K-score" in dom.stdout
