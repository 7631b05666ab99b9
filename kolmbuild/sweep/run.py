"""Run a sweep: every (point, target) built on one engine, each artifact kept, then the report.

``sweeps/<UTC timestamp>/`` gets one folder per point holding that point's artifact (see
:mod:`kolmbuild.sweep.points` for the names), ``summary.json`` listing every run with its artifact's
CID, measured time and cost (see :mod:`kolmbuild.sweep.record`), and ``report.html`` beside it. The
default install path (``artifacts/``) is left alone: a sweep installs each point into its folder.
``summary.json`` is rewritten (atomically) as each point finishes, with ``"complete": false`` until
the last one, so an interrupted sweep still says what it built.

Points are composed here, in order (Hydra's state is global, so never from two threads), then built
by a :class:`~kolmbuild.sweep.base.PointExecutor`: serially, up to ``-j N`` at once, or on a Ray
cluster (``--executor ray``: the workers build and push to the remote cache, and each point is then
taken from there into its folder; nothing of it runs here). The engine's lock is held across the
whole sweep, so another kolmbuild waits for all of it.
"""

from __future__ import annotations

import json
import time
from collections.abc import Sequence
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from kolmbuild.atomic import write_text_atomic
from kolmbuild.config.compose import ComposedTarget, Composer
from kolmbuild.config.models import ExecutorSpec
from kolmbuild.engine.build import Engine
from kolmbuild.engine.remote_sync import RemoteSync
from kolmbuild.engine.results import BuildOptions, TargetOutcome, exit_code
from kolmbuild.errors import BuildFailed, KolmError
from kolmbuild.report import write_sweep_report
from kolmbuild.sweep.base import PointExecutor, PointRunner, SweepJob, Where
from kolmbuild.sweep.executor import executor_for
from kolmbuild.sweep.points import SweepPoint, placed, sweep_points
from kolmbuild.sweep.record import point_record
from kolmbuild.sweep.ui import PointLabels

SUMMARY_KIND = "kolm-sweep"
SUMMARY_VERSION = 2  # runs gained "executor" and "worker" (additive: readers of version 2 ignore them)


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


@dataclass(frozen=True)
class PointRun:
    point: SweepPoint
    outcome: TargetOutcome
    record: dict[str, Any]


def new_sweep_folder(sweeps: Path) -> Path:
    """``sweeps/<UTC timestamp>``, made now (a second sweep in the same microsecond gets a suffix)."""
    stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%S%fZ")
    for n in range(100):
        folder = sweeps / (stamp if n == 0 else f"{stamp}-{n}")
        try:
            folder.mkdir(parents=True)
            return folder
        except FileExistsError:
            continue
    raise FileExistsError(f"{sweeps}: cannot make a new sweep folder")


def _summary(points: int, runner: PointRunner, runs: list[dict[str, Any]], started: float, created: str,
             complete: bool) -> dict[str, Any]:
    return {
        "kind": SUMMARY_KIND, "version": SUMMARY_VERSION, "created": created, "complete": complete,
        "executor": runner.describe(),
        "points": points, "wall_s": round(time.perf_counter() - started, 3),
        "spent_usd": round(sum(r.get("spent_usd") or 0.0 for r in runs), 6),
        "runs": sorted(runs, key=lambda r: int(r["point"])),
    }


def _unusable(engine: Engine, target: ComposedTarget) -> list[str]:
    """The stages of a point built elsewhere that neither this machine nor the remote cache can supply
    (they would run here). Asked through a RemoteSync of its own: the engine's asks the remote about
    each key once, and the build that follows must still ask (and adopt) them."""
    if engine.remote is None:
        return [p.stage for p in engine.plan(target) if p.status != "up-to-date"]
    planner = engine.planner(target)
    found = RemoteSync(engine.remote, engine.store, engine.runs).discover([planner])
    return [p.stage for p in planner.plan(found) if p.status != "up-to-date" and not p.remote]


def run_sweep(engine: Engine, targets: Sequence[str], overrides: Sequence[str],
              options: BuildOptions | None = None, composer: Composer | None = None,
              executor: PointExecutor | None = None, placement: ExecutorSpec | None = None) -> SweepResult:
    """Build ``targets`` (all when empty) at every point of the sweep ``overrides`` describe.

    ``options.jobs`` is the number of points built at once (each point's stages then run one at a
    time; a single point keeps ``-j`` for its stages); with ``placement`` a Ray executor, each point's
    stage parallelism on its worker. ``executor`` overrides that choice."""
    options = options or BuildOptions()
    project = engine.project
    names = list(targets) or list(project.kolmfile.targets)
    points = sweep_points(names, overrides)
    composer = composer or Composer(project)
    executor = executor or executor_for(options.jobs, len(points), placement)
    per_point = BuildOptions(executor.stage_jobs, options.keep_going)
    rule = engine.install_rule()
    install = (rule.name, rule.spec.install) if rule is not None and rule.spec.install else None
    started, created = time.perf_counter(), datetime.now(UTC).isoformat()
    labels = PointLabels(engine.ui) if executor.workers > 1 else None
    plain_ui = engine.ui
    with engine.holding_lock():
        composed: dict[int, ComposedTarget | KolmError] = {}
        for p in points:  # Hydra composes in this thread only
            try:
                composed[p.index] = composer.compose(p.target, p.overrides)
            except KolmError as exc:
                composed[p.index] = exc
        # the executor may refuse here (a Ray executor without a remote cache, untrusted workers): nothing written yet
        with executor.session(SweepJob(engine, points, dict(composed), executor.stage_jobs, plain_ui.quiet)) as runner:
            folder = new_sweep_folder(project.root / "sweeps")
            for p in points:  # each point installs into its own folder
                target = composed[p.index]
                if isinstance(target, ComposedTarget):
                    composed[p.index] = placed(target, folder / p.name)
            results = _run_points(engine, runner, points, composed, per_point, install, labels, folder,
                                  started, created)
    summary = _summary(len(points), runner, [r.record for r in results], started, created, True)
    write_text_atomic(folder / "summary.json", json.dumps(summary, indent=2) + "\n")
    report = write_sweep_report(folder)
    return SweepResult(folder, summary, [r.outcome for r in results], report)


def _run_points(engine: Engine, runner: PointRunner, points: list[SweepPoint],
                composed: dict[int, ComposedTarget | KolmError], per_point: BuildOptions,
                install: tuple[str, str] | None, labels: PointLabels | None, folder: Path, started: float,
                created: str) -> list[PointRun]:
    project = engine.project
    plain_ui = engine.ui
    runs: list[dict[str, Any]] = []
    bar = plain_ui.bar_start(f"sweep: {len(points)} point(s), {runner.describe()['kind']}", len(points))

    def build(point: SweepPoint, where: Where) -> PointRun:
        target = composed[point.index]
        if isinstance(target, KolmError):
            failed = TargetOutcome(point.target, point.overrides, "", "", "failed", [], 0.0, error=target)
            return PointRun(point, failed, point_record(point, failed, None, project.root, install, where))
        backend, gates = target.config.backend.name, target.choice("gates")
        error = where.error
        if error is None and where.elsewhere:  # take it from the remote cache: nothing of it may run here
            missing = _unusable(engine, target)
            if missing:
                error = BuildFailed(
                    f"{point.name}: built on {where.host}, but this machine cannot use its run of "
                    f"{', '.join(missing)} from the remote cache",
                    hint="is the worker's key in cache.trust, and did its push succeed? (its output above says)")
        if error is not None:
            failed = TargetOutcome(point.target, point.overrides, backend, gates, "failed", list(where.ran),
                                   where.duration_s, error=error)
            return PointRun(point, failed, point_record(point, failed, target.config.backend, project.root,
                                                        install, where))
        engine.ui.note(f"── {point.name}: {point.label}" + (f" (built on {where.host})" if where.elsewhere else ""))
        try:
            if labels is not None:
                with labels.labelled(f"{point.index:0{point.width}d}"):
                    [outcome] = engine.build([target], per_point)
            else:
                [outcome] = engine.build([target], per_point)
        except KolmError as exc:  # refused before anything ran (an install path it cannot write …)
            outcome = TargetOutcome(point.target, point.overrides, backend, gates, "failed", [], 0.0, error=exc)
        outcome = replace(outcome, overrides=point.overrides)
        if where.elsewhere:  # what ran, ran there; here it was pulled
            outcome = replace(outcome, ran=list(where.ran), pulled=[s for s in outcome.pulled if s not in where.ran],
                              duration_s=where.duration_s + outcome.duration_s)
        return PointRun(point, outcome, point_record(point, outcome, target.config.backend, project.root, install,
                                                     where))

    def done(run: PointRun) -> None:
        runs.append(run.record)
        plain_ui.bar_advance(bar, 1, {"last": f"{run.point.name} {run.record['status']}"})
        if bar is None:
            plain_ui.note(f"sweep: {len(runs)}/{len(points)} done: {run.point.name} {run.record['status']}")
        write_text_atomic(folder / "summary.json",
                          json.dumps(_summary(len(points), runner, runs, started, created, False), indent=2) + "\n")

    if labels is not None:
        engine.ui = labels
    try:
        return runner.run(points, build, done)
    except BaseException:
        if runs:  # interrupted: summary.json says what finished ("complete": false); so does the report
            write_sweep_report(folder)
        raise
    finally:
        engine.ui = plain_ui
        plain_ui.bar_stop(bar)
