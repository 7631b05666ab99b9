"""Build verbs: build (the default), status, dag, clean, gc. Multirun sweeps live here too."""

from __future__ import annotations

import json
import os
from collections.abc import Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import click

from kolmbuild.config.compose import ComposedTarget, Composer, is_override, split_sweeps
from kolmbuild.config.interp import DYNAMIC
from kolmbuild.config.kolmfile import Project, load_project
from kolmbuild.engine import stamp
from kolmbuild.engine.build import BuildOptions, Engine, TargetOutcome
from kolmbuild.engine.lock import CacheLock
from kolmbuild.engine.plan import StagePlan
from kolmbuild.engine.ui import BuildUI
from kolmbuild.errors import ConfigError, KolmError

_PROJECT_ARGS = click.argument("args", nargs=-1)


def _project(ctx: click.Context) -> Project:
    obj = ctx.find_root().obj or {}
    return load_project(obj.get("directory"), obj.get("kolmfile"))


def _split_args(project: Project, args: Sequence[str]) -> tuple[list[str], list[str]]:
    targets, overrides = [], []
    for a in args:
        (overrides if is_override(a) else targets).append(a)
    for t in targets:
        if t not in project.kolmfile.targets:
            raise ConfigError(
                f"{project.kolmfile_path.name}: no target named {t!r}",
                hint="targets: " + ", ".join(sorted(project.kolmfile.targets)),
            )
    return targets, overrides


def _compose(project: Project, targets: Sequence[str], overrides: Sequence[str]) -> list[ComposedTarget]:
    composer = Composer(project)
    names = list(targets) or list(project.kolmfile.targets)
    return [composer.compose(t, overrides) for t in names]


def _ui(json_out: bool) -> BuildUI:
    return BuildUI(quiet=json_out)


def _stamp_args(ctx: click.Context) -> list[str] | None:
    argv = (ctx.find_root().obj or {}).get("argv")
    return None if argv is None else stamp.normalize_args(argv)


def _write_stamp(ctx: click.Context, engine: Engine, composed: Sequence[ComposedTarget], message: str,
                 status_lines: Sequence[str]) -> None:
    args = _stamp_args(ctx)
    if args is None:
        return
    from kolmbuild.config.compose import conf_dirs
    from kolmbuild.engine.rules import rule_files
    from kolmbuild.userconfig import config_dir

    project = engine.project
    files: set[Path] = {project.kolmfile_path, *engine.watched.files}
    dirs = set(engine.watched.dirs)
    for d in conf_dirs(project):
        for group in ("task", "backend", "gates"):
            g = d / group
            if g.is_dir():
                files.add(g)
                files.update(g.glob("*.yaml"))
    for d in engine.rule_dirs:
        files.add(d)
        files.update(rule_files([d]))
    files.add(project.conf_dir)
    files.add(project.rules_dir)
    cfg_dir = config_dir()
    files.add(cfg_dir)
    if cfg_dir.is_dir():
        files.update(p for p in cfg_dir.iterdir() if p.is_file())
    objects: set[Path] = set()
    for t in composed:
        out = engine.out_path(t)
        files.add(out)
        for p in engine.plan(t):
            if p.record is not None:
                objects.update(engine.store.path_of(c) for c in p.record.outputs.values())
    env_names = [v for r in engine.rules.values() for v in r.spec.env]
    env_names += [n for t in composed for n in t.env_names]  # ${oc.env:…} in the config
    if DYNAMIC in env_names:  # ${oc.env:${x}}: no fixed variable to watch, so no fast path
        return
    stamp.write_stamp(
        project.cache_dir, stamp.stamp_key(os.getcwd(), args), files=files, dirs=dirs, objects=objects,
        env_names=env_names, build_message=message, status_lines=status_lines,
    )


def _exit_code(outcomes: Sequence[TargetOutcome]) -> int:
    codes = [o.error.exit_code for o in outcomes if o.error is not None]
    if not codes:
        return 0
    return 2 if 2 in codes else max(codes)


def _outcome_json(o: TargetOutcome, root: Path) -> dict[str, Any]:
    return {
        "target": o.target,
        "overrides": list(o.overrides),
        "backend": o.backend,
        "gates": o.gates,
        "status": o.status,
        "ran": o.ran,
        "duration_s": round(o.duration_s, 3),
        "cost_usd": round(o.cost_usd, 6),
        "k_score": o.k_score,
        "artifact": os.path.relpath(o.artifact, root) if o.artifact else None,
        "message": str(o.error) if o.error else "",
    }


# ---------------------------------------------------------------------------- build


@click.command("build", context_settings={"ignore_unknown_options": False})
@_PROJECT_ARGS
@click.option("-n", "--dry-run", is_flag=True, help="Say what would run and why; run nothing.")
@click.option("-m", "--multirun", is_flag=True, help="Sweep: one build per combination of override values.")
@click.option("-j", "--jobs", type=click.IntRange(1, 64), default=1, show_default=True, help="Stages run in parallel.")
@click.option("-k", "--keep-going", is_flag=True, help="Keep building other targets after one fails.")
@click.option("--cfg", "show_cfg", is_flag=True, help="Print the composed, validated config and exit.")
@click.option("--json", "json_out", is_flag=True, help="Print a JSON record of the outcome on stdout.")
@click.option("--budget", type=click.FloatRange(min=0), default=None,
              help="USD cap: refuse (exit 2) a build whose quote exceeds it, before any provider call.")
@click.option("--out", "out", type=click.Path(dir_okay=False), default=None,
              help="Where the package stage installs the .kolm (one target; default artifacts/<target>-<version>.kolm).")
@click.pass_context
def build(ctx: click.Context, args: tuple[str, ...], dry_run: bool, multirun: bool, jobs: int,
          keep_going: bool, show_cfg: bool, json_out: bool, budget: float | None, out: str | None) -> None:
    """Build every stale target (or the TARGETs named), applying Hydra OVERRIDEs.

    \b
    kolmbuild                                  build all targets
    kolmbuild phi-redactor gates=strict        one target, another gates option
    kolmbuild task.train.rank=32 +x=1 ~y       Hydra override grammar
    kolmbuild -m backend=local-cpu,vast        sweep: one build per value
    """
    project = _project(ctx)
    targets, overrides = _split_args(project, args)
    if budget is not None:  # same as the override budget.usd=USD (and the kolmfile's budget.usd)
        overrides.append(f"budget.usd={budget}")
    if out is not None:  # same as the override out=PATH; the artifact's bytes do not depend on it
        if len(targets or project.kolmfile.targets) != 1:
            raise ConfigError("--out names one file: build one target with it (kolmbuild TARGET --out FILE)")
        quoted = os.path.abspath(out).replace("\\", "\\\\").replace("'", "\\'")
        overrides.append(f"out='{quoted}'")
    if multirun:
        ctx.exit(_multirun(ctx, project, targets, overrides, BuildOptions(jobs, keep_going), json_out))
    composed = _compose(project, targets, overrides)
    if show_cfg:
        import yaml

        docs = {t.name: t.dump() for t in composed}
        if json_out:
            click.echo(json.dumps(docs, indent=2, sort_keys=True))
        else:
            click.echo(yaml.safe_dump(docs, sort_keys=False).rstrip())
        return
    ui = _ui(json_out)
    with CacheLock(project.cache_dir, on_wait=lambda: ui.note("waiting for another kolmbuild on this cache…")):
        with Engine(project, ui) as engine:
            if dry_run:
                _print_plans(engine, composed, json_out, dry_run=True)
                return
            outcomes = engine.build(composed, BuildOptions(jobs, keep_going))
            code = _exit_code(outcomes)
            for o in outcomes:
                if o.error is not None:
                    click.echo(f"kolmbuild: error: {o.error}", err=True)
            if json_out:
                click.echo(json.dumps([_outcome_json(o, project.root) for o in outcomes], indent=2))
            if code == 0:
                fresh = [o for o in outcomes if o.status == "up-to-date"]
                message = f"kolmbuild: nothing to do: {len(outcomes)} target(s) up to date"
                if len(fresh) == len(outcomes):
                    ui.note(message)
                lines = _status_lines(engine, composed)
                _write_stamp(ctx, engine, composed, message, lines)
    ctx.exit(code)


def _multirun(ctx: click.Context, project: Project, targets: list[str], overrides: list[str],
              options: BuildOptions, json_out: bool) -> int:
    points = split_sweeps(overrides)
    ui = _ui(json_out)
    runs: list[dict[str, Any]] = []
    outcomes: list[TargetOutcome] = []
    composer = Composer(project)
    names = targets or list(project.kolmfile.targets)
    with CacheLock(project.cache_dir), Engine(project, ui) as engine:
        for point in points:
            for name in names:
                ui.note(f"── {name} {' '.join(point)}")
                try:
                    composed = composer.compose(name, point)
                except KolmError as exc:
                    runs.append({"target": name, "overrides": point, "backend": "", "gates": "", "status": "failed",
                                 "duration_s": 0.0, "cost_usd": 0.0, "k_score": None, "artifact": None,
                                 "message": str(exc)})
                    outcomes.append(TargetOutcome(name, tuple(point), "", "", "failed", [], 0.0, error=exc))
                    if not options.keep_going:
                        break
                    continue
                [o] = engine.build([composed], options)
                outcomes.append(o)
                rec = _outcome_json(o, project.root)
                rec["status"] = "ok" if o.status in ("built", "up-to-date") else o.status
                runs.append(rec)
    sweep_dir = project.root / "sweeps" / datetime.now(UTC).strftime("%Y%m%dT%H%M%S%fZ")
    sweep_dir.mkdir(parents=True)
    summary = {"kind": "kolm-sweep", "version": 1, "created": datetime.now(UTC).isoformat(), "runs": runs}
    (sweep_dir / "summary.json").write_text(json.dumps(summary, indent=2) + "\n")
    report = None
    try:
        from kolmbuild.report import write_sweep_report

        report = write_sweep_report(sweep_dir)
    except ImportError:
        pass
    if json_out:
        click.echo(json.dumps(summary, indent=2))
    else:
        _print_summary(runs)
        ui.note(f"sweep record: {os.path.relpath(sweep_dir / 'summary.json', project.root)}"
                + (f"; report: {os.path.relpath(report, project.root)}" if report else ""))
    return _exit_code(outcomes)


def _print_summary(runs: list[dict[str, Any]]) -> None:
    from rich.console import Console
    from rich.table import Table

    table = Table(title="sweep summary")
    for col in ("target", "overrides", "status", "duration", "cost", "K"):
        table.add_column(col)
    for r in runs:
        k = r.get("k_score")
        table.add_row(r["target"], " ".join(r["overrides"]), r["status"], f"{r['duration_s']:.2f} s",
                      f"${r['cost_usd']:.2f}", f"{k:.3f}" if isinstance(k, float) else "-")
    Console(stderr=True).print(table)


# ---------------------------------------------------------------------------- status / dry run


def _status_lines(engine: Engine, composed: Sequence[ComposedTarget]) -> list[str]:
    lines = []
    for t in composed:
        for p in engine.plan(t):
            lines.append(_plan_line(p))
    return lines


def _plan_line(p: StagePlan, dry_run: bool = False) -> str:
    label = {"up-to-date": "up to date", "stale": "would run" if dry_run else "stale",
             "waiting": "would run" if dry_run else "stale"}[p.status]
    why = f"  ({'; '.join(p.reasons)})" if p.reasons else ""
    key = f"  {p.key}" if p.key and p.status == "up-to-date" else ""
    return f"{p.target}: {p.stage:<10} {label}{why}{key}"


def _plan_json(p: StagePlan) -> dict[str, Any]:
    return {"target": p.target, "stage": p.stage, "status": p.status, "key": p.key, "reasons": p.reasons,
            "outputs": dict(p.record.outputs) if p.record else None}


def _print_plans(engine: Engine, composed: Sequence[ComposedTarget], json_out: bool, dry_run: bool) -> bool:
    plans = [p for t in composed for p in engine.plan(t)]
    if json_out:
        click.echo(json.dumps([_plan_json(p) for p in plans], indent=2))
    else:
        for p in plans:
            click.echo(_plan_line(p, dry_run))
    return all(p.status == "up-to-date" for p in plans)


@click.command("status")
@_PROJECT_ARGS
@click.option("--json", "json_out", is_flag=True, help="JSON on stdout.")
@click.pass_context
def status(ctx: click.Context, args: tuple[str, ...], json_out: bool) -> None:
    """Each stage of each target: up to date, or stale and which input changed."""
    project = _project(ctx)
    targets, overrides = _split_args(project, args)
    composed = _compose(project, targets, overrides)
    with CacheLock(project.cache_dir), Engine(project) as engine:
        fresh = _print_plans(engine, composed, json_out, dry_run=False)
        if fresh and not json_out:
            msg = f"kolmbuild: nothing to do: {len(composed)} target(s) up to date"
            _write_stamp(ctx, engine, composed, msg, _status_lines(engine, composed))


# ---------------------------------------------------------------------------- dag


@click.command("dag")
@click.option("--dot", is_flag=True, help="Graphviz dot.")
@click.option("--json", "json_out", is_flag=True, help="JSON on stdout.")
@click.pass_context
def dag(ctx: click.Context, dot: bool, json_out: bool) -> None:
    """The stage graph."""
    project = _project(ctx)
    from kolmbuild.engine.rules import load_rules, rule_dirs

    rules = load_rules(rule_dirs(project.rules_dir), project.kolmfile.pipeline)
    if json_out:
        click.echo(json.dumps({"stages": [
            {"name": r.name, "version": r.spec.version, "after": r.spec.after, "reads": r.spec.reads,
             "inputs": r.spec.inputs, "outputs": r.spec.outputs, "doc": r.spec.doc}
            for r in rules.values()]}, indent=2))
    elif dot:
        click.echo("digraph kolmbuild {\n  rankdir=LR;")
        for r in rules.values():
            click.echo(f'  "{r.name}" [shape=box];')
            for d in r.spec.after:
                click.echo(f'  "{d}" -> "{r.name}";')
        click.echo("}")
    else:
        for r in rules.values():
            after = f" <- {', '.join(r.spec.after)}" if r.spec.after else ""
            click.echo(f"{r.name} (v{r.spec.version}){after}")
            click.echo(f"    outputs: {', '.join(r.spec.outputs)}")


# ---------------------------------------------------------------------------- clean / gc


@click.command("clean")
@_PROJECT_ARGS
@click.pass_context
def clean(ctx: click.Context, args: tuple[str, ...]) -> None:
    """Remove the built artifacts of the targets (the cache stays; see gc)."""
    project = _project(ctx)
    targets, overrides = _split_args(project, args)
    composed = _compose(project, targets, overrides)
    with CacheLock(project.cache_dir), Engine(project) as engine:
        for t in composed:
            out = engine.out_path(t)
            if out.exists():
                out.unlink()
                click.echo(f"removed {os.path.relpath(out, project.root)}")
        stamp.invalidate(project.cache_dir)


@click.command("gc")
@click.option("--json", "json_out", is_flag=True, help="JSON on stdout.")
@click.pass_context
def gc(ctx: click.Context, json_out: bool) -> None:
    """Drop cache entries that no target's current stages reference."""
    project = _project(ctx)
    with CacheLock(project.cache_dir), Engine(project) as engine:
        keep_keys: set[str] = set()
        for t in _compose(project, [], []):
            keep_keys.update(p.key for p in engine.plan(t) if p.key and p.record)
        keep_cids = engine.runs.referenced_cids(keep_keys)
        removed_runs = engine.runs.drop_runs_except(keep_keys)
        removed, freed = 0, 0
        for obj in engine.store.iter_objects():
            if obj.name not in keep_cids:
                freed += obj.stat().st_size
                obj.unlink()
                removed += 1
        swept = engine.store.sweep_tmp(older_than_s=0)  # we hold the lock: no build is mid-stage
        stamp.invalidate(project.cache_dir)
    rec = {"objects_removed": removed, "bytes_freed": freed, "runs_removed": removed_runs, "temp_removed": swept}
    if json_out:
        click.echo(json.dumps(rec))
    else:
        click.echo(f"gc: removed {removed} object(s), {freed} bytes; {removed_runs} run record(s); {swept} temp")
