from __future__ import annotations

import json
import re
import subprocess
from pathlib import Path

import pytest
from click.testing import CliRunner

from kolmbuild.errors import UserInputError
from kolmbuild.report import newest_sweep, write_sweep_report
from kolmbuild.report.svg import nice_ticks

CHROMIUM_FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
                  "--disable-component-update", "--no-first-run"]  # fmt: skip


def _cli(*args: str):
    from kolmbuild.cli.main import cli

    return CliRunner().invoke(cli, list(args), catch_exceptions=False)


def test_report_is_self_contained_with_table_and_plots(sweep_dir: Path) -> None:
    out = write_sweep_report(sweep_dir)
    assert out == sweep_dir / "report.html"
    html = out.read_text()
    # offline: no scripts, no external resources of any kind (the SVG namespace is an identifier)
    assert "<script" not in html and "@import" not in html
    assert re.findall(r"""(?:src|href)\s*=""", html) == []
    assert set(re.findall(r"https?://[^\s\"'<>]+", html)) == {"http://www.w3.org/2000/svg"}
    # two scored runs are two points; the refused run is in the table and noted, not plotted
    assert len(re.findall(r'<g class="point[ "]', html)) == 2
    assert "1 run without a K-score not plotted" in html
    assert html.count("<tr class=") == 3 and '<tr class="ok best front">' in html
    assert "#2 runpod K=0.860" in html
    assert "&lt;b&gt;" in html and "<b>\n" not in html  # messages are escaped
    assert "refused, never ran" in html
    # both runs are on the Pareto front: local-cpu is cheaper, runpod has the higher K
    assert html.count('<g class="point front">') == 2 and 'class="front-line"' in html
    assert not list(sweep_dir.glob(".*tmp"))


def test_report_renders_offline_in_headless_chromium(
    sweep_dir: Path, tmp_path: Path, chromium: str, png_reader
) -> None:
    report = write_sweep_report(sweep_dir)
    profile = tmp_path / "profile"
    common = [chromium, *CHROMIUM_FLAGS, f"--user-data-dir={profile}", "--window-size=1400,1000"]
    dom = subprocess.run(
        [*common, "--dump-dom", report.as_uri()], capture_output=True, text=True, timeout=120
    )
    assert dom.returncode == 0, dom.stderr[-2000:]
    assert dom.stdout.count("<circle") >= 2 and "Measured cost vs K-score" in dom.stdout and 'id="runs"' in dom.stdout

    shot = tmp_path / "shot.png"
    r = subprocess.run(
        [*common, f"--screenshot={shot}", report.as_uri()], capture_output=True, text=True, timeout=120
    )
    assert r.returncode == 0 and shot.is_file(), r.stderr[-2000:]
    width, height, rows = png_reader(shot)
    assert (width, height) == (1400, 1000)

    def has_color(rgb: tuple[int, int, int], tol: int = 6) -> bool:
        for row in rows:
            for x in range(0, len(row), 3):
                if all(abs(row[x + k] - rgb[k]) <= tol for k in range(3)):
                    return True
        return False

    # the plot's marks were painted: the two backends' colors (points, legend, bars) are on screen
    assert has_color((0x1F, 0x77, 0xB4)) and has_color((0xFF, 0x7F, 0x0E))


def test_cli_report_defaults_to_newest_sweep(tmp_path: Path, make_sweep, two_runs: list[dict]) -> None:
    old = make_sweep(tmp_path, "20261101T000000Z", two_runs)
    new = make_sweep(tmp_path, "20261124T090000Z", two_runs[:1])
    assert newest_sweep(tmp_path / "sweeps") == new
    r = _cli("-C", str(tmp_path), "report", "--json")
    assert r.exit_code == 0, r.output
    assert json.loads(r.output)["report"] == str(new / "report.html")
    assert (new / "report.html").is_file() and not (old / "report.html").exists()
    r = _cli("report", str(old))
    assert r.exit_code == 0 and (old / "report.html").is_file()


def test_bad_or_missing_sweep_is_exit_2(tmp_path: Path, make_sweep) -> None:
    r = _cli("-C", str(tmp_path), "report")
    assert r.exit_code == 2 and "no sweeps" in r.output
    bad = make_sweep(tmp_path, "x", [{"target": "t", "backend": "b", "status": "maybe"}])
    with pytest.raises(UserInputError, match=r"summary.json: not a sweep summary: runs.0.status"):
        write_sweep_report(bad)
    assert not (bad / "report.html").exists()


def test_single_point_and_all_zero_costs(tmp_path: Path, make_sweep, two_runs: list[dict]) -> None:
    run = dict(two_runs[0], cost_usd=0.0)
    html = write_sweep_report(make_sweep(tmp_path, "one", [run])).read_text()
    assert html.count('<g class="point front">') == 1 and "nan" not in html.lower()
    assert 'class="front-line"' not in html  # one point: no staircase to draw
    html = write_sweep_report(
        make_sweep(tmp_path, "none", [dict(run, status="failed", k_score=None)])
    ).read_text()
    assert "no data" in html and '<g class="point">' not in html


def test_nice_ticks() -> None:
    assert nice_ticks(0, 0.37) == [0.0, 0.1, 0.2, 0.3, 0.4]
    assert nice_ticks(0.76, 0.86)[0] <= 0.76 and nice_ticks(0.76, 0.86)[-1] >= 0.86
    assert nice_ticks(0, 0) == [0.0, 0.2, 0.4, 0.6, 0.8, 1.0]


def test_pareto_front_of_measured_costs(tmp_path: Path, make_sweep, two_runs: list[dict]) -> None:
    """Version 2 rows: a dominated run (dearer and worse) is off the front; a run whose cost is not
    fully known is never on it; measured build time labels each point."""
    base = {k: v for k, v in two_runs[0].items()}
    rows = [
        dict(base, point=1, backend="local-cpu", k_score=0.80, cost_usd=0.002, compute_cost_usd=0.0,
             teacher_cost_usd=0.002, stage_seconds=40.0, backend_seconds=40.0),
        dict(base, point=2, backend="vast", k_score=0.90, cost_usd=0.012, compute_cost_usd=0.01,
             teacher_cost_usd=0.002, stage_seconds=12.0, backend_seconds=9.5),
        dict(base, point=3, backend="lambda", k_score=0.85, cost_usd=0.02, compute_cost_usd=0.018,
             teacher_cost_usd=0.002, stage_seconds=11.0, backend_seconds=8.0),  # dominated by vast
        dict(base, point=4, backend="together", k_score=0.95, cost_usd=0.002, compute_cost_usd=None,
             teacher_cost_usd=0.002, cost_known=False, stage_seconds=30.0),  # unknown cost: not comparable
    ]
    d = tmp_path / "sweeps" / "v2"
    d.mkdir(parents=True)
    (d / "summary.json").write_text(json.dumps({"kind": "kolm-sweep", "version": 2, "created": "x",
                                                "complete": False, "spent_usd": 0.036, "runs": rows}))
    html = write_sweep_report(d).read_text()
    assert html.count('<g class="point front">') == 2 and html.count('<g class="point">') == 2
    assert re.findall(r'<tr class="([^"]*)"', html) == ["ok front", "ok front", "ok", "ok best"]
    assert "#3 · 11.0 s" in html and "built in 12.0 s measured" in html and "9.5 s on vast" in html
    assert "compute $0.0100 + teacher $0.0020" in html and "0.0020 + ?" in html
    assert 'id="spent">$0.0360<' in html and "did not finish" in html
