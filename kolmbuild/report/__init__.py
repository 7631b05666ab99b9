"""Sweep reports: ``sweeps/<timestamp>/summary.json`` → a self-contained ``report.html`` beside it."""

from __future__ import annotations

from pathlib import Path

from kolmbuild.atomic import write_text_atomic
from kolmbuild.errors import UserInputError
from kolmbuild.report.html import render_html
from kolmbuild.report.model import SweepRecord, SweepRun, load_sweep

SUMMARY = "summary.json"
REPORT = "report.html"


def write_sweep_report(sweep_dir: Path) -> Path:
    """Render ``sweep_dir/summary.json`` into ``sweep_dir/report.html`` (atomically); return its path."""
    sweep_dir = Path(sweep_dir)
    summary = sweep_dir / SUMMARY
    if not summary.is_file():
        raise UserInputError(f"{sweep_dir}: no {SUMMARY} (not a sweep folder)")
    record = load_sweep(summary)
    html = render_html(record, title=f"kolmbuild sweep {sweep_dir.name}")
    return write_text_atomic(sweep_dir / REPORT, html)


def newest_sweep(sweeps_root: Path) -> Path:
    """The newest sweep folder under ``sweeps_root`` (timestamps sort; mtime breaks ties)."""
    root = Path(sweeps_root)
    found = [d for d in root.iterdir() if (d / SUMMARY).is_file()] if root.is_dir() else []
    if not found:
        raise UserInputError(f"{root}: no sweeps (run one with: kolmbuild -m backend=a,b)")
    return max(found, key=lambda d: (d.name, (d / SUMMARY).stat().st_mtime))


__all__ = ["SweepRecord", "SweepRun", "load_sweep", "newest_sweep", "render_html", "write_sweep_report"]
