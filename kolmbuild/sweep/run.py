"""Run a sweep: every (point, target) built in turn on one engine, then the summary written.

``sweeps/<UTC timestamp>/summary.json`` lists each run (target, overrides, backend, gates,
status, duration, cost, K-score, artifact); the HTML report is rendered beside it. The engine's
lock is held across the whole sweep, so another kolmbuild waits for all of it, not between points.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from kolmbuild.atomic import write_text_atomic
from kolmbuild.config.compose import Composer, split_sweeps
from kolmbuild.engine.build import Engine
from kolmbuild.engine.results import BuildOptions, TargetOutcome, exit_code
from kolmbuild.errors import KolmError

SUMMARY_KIND = "kolm-sweep"


@dataclass(frozen=True)
class SweepResult:
    folder: Path
    summary: dict[str, Any]
    outcomes: list[TargetOutcome]
    report: Path | None

    @property
    def summary_path(self) -> Path:
        return self.folder / "summary.json"

    @property
    def exit_code(self) -> int:
        return exit_code(self.outcomes)


def run_sweep(engine: Engine, targets: Sequence[str], overrides: Sequence[str],
              options: BuildOptions | None = None, composer: Composer | None = None) -> SweepResult:
    """Build ``targets`` (all when empty) at every point of the sweep ``overrides`` describe."""
    options = options or BuildOptions()
    project = engine.project
    points = split_sweeps(list(overrides))
    composer = composer or Composer(project)
    names = list(targets) or list(project.kolmfile.targets)
    runs: list[dict[str, Any]] = []
    outcomes: list[TargetOutcome] = []
    with engine.holding_lock():
        for point in points:
            for name in names:
                engine.ui.note(f"── {name} {' '.join(point)}")
                try:
                    composed = composer.compose(name, point)
                except KolmError as exc:
                    failed = TargetOutcome(name, tuple(point), "", "", "failed", [], 0.0, error=exc)
                    runs.append(failed.to_json(project.root))
                    outcomes.append(failed)
                    if not options.keep_going:
                        break
                    continue
                [o] = engine.build([composed], options)
                outcomes.append(o)
                rec = o.to_json(project.root)
                rec["status"] = "ok" if o.ok else o.status
                runs.append(rec)
    folder = project.root / "sweeps" / datetime.now(UTC).strftime("%Y%m%dT%H%M%S%fZ")
    folder.mkdir(parents=True)
    summary = {"kind": SUMMARY_KIND, "version": 1, "created": datetime.now(UTC).isoformat(), "runs": runs}
    write_text_atomic(folder / "summary.json", json.dumps(summary, indent=2) + "\n")
    report = None
    try:
        from kolmbuild.report import write_sweep_report
    except ImportError:
        pass
    else:
        report = write_sweep_report(folder)
    return SweepResult(folder, summary, outcomes, report)
