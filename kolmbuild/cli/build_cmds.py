"""Build verbs: build (the default), status, dag, clean, gc. Each parses its arguments, makes one
call into the engine library (kolmbuild.engine.build.Engine, kolmbuild.sweep.run_sweep), prints."""

from __future__ import annotations

import json
import os
from collections.abc import Sequence
from typing import Any

import click

from kolmbuild.cli.state import CliState, exit_with, pass_state
from kolmbuild.config.compose import ComposedTarget, is_override
from kolmbuild.config.kolmfile import Project
from kolmbuild.engine.build import Engine
from kolmbuild.engine.plan import StagePlan
from kolmbuild.engine.results import BuildOptions, exit_code
from kolmbuild.engine.ui import BuildUI
from kolmbuild.errors import ConfigError
from kolmbuild.remote.settings import RemoteSettings, open_remote, remote_settings
from kolmbuild.wiring import composer as project_composer
from kolmbuild.wiring import engine_hooks

_PROJECT_ARGS = click.argument("args", nargs=-1)


def remote_options(*, push: bool) -> Any:
    """``--remote URL``, ``--remote-required`` (and for verbs that write, ``--push``): the remote stage
    cache (docs/engine.md)."""

    def add(fn: Any) -> Any:
        fn = click.option("--remote-required", "remote_required", is_flag=True,
                          help="A remote cache that is down is an error (exit 2), not a warning.")(fn)
        if push:
            fn = click.option("--push", "push", is_flag=True, default=None,
                              help="Push what ran to the remote cache (also KOLM_CACHE_PUSH=1, cache.push).")(fn)
        return click.option("--remote", "remote", metavar="URL", default=None,
                            help="Remote stage cache, any fsspec URL (also KOLM_REMOTE_CACHE, cache.remote).")(fn)

    return add


def _split_args(project: Project, args: Sequence[str]) -> tuple[list[str], list[str]]:
    targets: list[str] = []
    overrides: list[str] = []
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
    composer = project_composer(project)
    names = list(targets) or list(project.kolmfile.targets)
    return [composer.compose(t, overrides) for t in names]


def _engine(project: Project, quiet: bool = False, remote: RemoteSettings | None = None) -> Engine:
    """The engine with the standard hooks and, when ``remote`` names one, the remote cache (opened
    lazily: a build whose stages are all up to date here makes no network call)."""
    ui = BuildUI(quiet=quiet)
    cache = open_remote(remote, warn=ui.warn, log=ui.note) if remote is not None else None
    return Engine(project, ui, hooks=engine_hooks(), remote=cache)


def _remote(project: Project, url: str | None, push: bool | None, required: bool) -> RemoteSettings:
    """``push``: True (--push), False (a verb that never pushes), None (the environment and kolmfile decide)."""
    return remote_settings(project, url=url, push=push, required=required)


# ---------------------------------------------------------------------------- build


@click.command("build", context_settings={"ignore_unknown_options": False})
@_PROJECT_ARGS
@click.option("-n", "--dry-run", is_flag=True, help="Say what would run and why; run nothing.")
@click.option("-m", "--multirun", is_flag=True, help="Sweep: one build per combination of override values.")
@click.option("-j", "--jobs", type=click.IntRange(1, 64), default=1, show_default=True,
              help="Stages run in parallel (with -m: sweep points built at once).")
@click.option("-k", "--keep-going", is_flag=True, help="Keep building other targets after one fails.")
@click.option("--cfg", "show_cfg", is_flag=True, help="Print the composed, validated config and exit.")
@click.option("--json", "json_out", is_flag=True, help="Print a JSON record of the outcome on stdout.")
@click.option("--budget", type=click.FloatRange(min=0), default=None,
              help="USD cap: refuse (exit 2) a build whose quote exceeds it, before any provider call.")
@click.option("--out", "out", type=click.Path(dir_okay=False), default=None,
              help="Where the package stage installs the .kolm (one target; default artifacts/<target>-<version>.kolm).")
@click.option("--executor", "executor", type=click.Choice(["local", "ray"]), default=None,
              help="Where sweep points (-m) are built: here (local) or as tasks on a Ray cluster (ray; needs a "
                   "remote cache). Default: the kolmfile's executor.kind, else local.")
@click.option("--ray-address", "ray_address", metavar="HOST:PORT", default=None,
              help="The Ray cluster for --executor ray: HOST:PORT, ray://HOST:PORT or auto (also executor.address, "
                   "RAY_ADDRESS).")
@remote_options(push=True)
@pass_state
def build(state: CliState, args: tuple[str, ...], dry_run: bool, multirun: bool, jobs: int,
          keep_going: bool, show_cfg: bool, json_out: bool, budget: float | None, out: str | None,
          executor: str | None, ray_address: str | None, remote: str | None, push: bool | None,
          remote_required: bool) -> None:
    """Build every stale target (or the TARGETs named), applying Hydra OVERRIDEs.

    \b
    kolmbuild                                  build all targets
    kolmbuild phi-redactor gates=strict        one target, another gates option
    kolmbuild task.train.rank=32 +x=1 ~y       Hydra override grammar
    kolmbuild -m backend=local-cpu,vast        sweep: one build per value
    kolmbuild --remote s3://bucket/kolm --push reuse a shared cache, push what ran
    kolmbuild -m gates=default,strict --executor ray --ray-address 10.0.0.5:6379 --remote s3://bucket/kolm
    """
    project = state.project()
    settings = _remote(project, remote, push or None, remote_required)
    if (executor == "ray" or ray_address is not None) and not multirun:
        raise ConfigError("--executor ray and --ray-address place sweep points: use them with -m")
    targets, overrides = _split_args(project, args)
    if budget is not None:  # same as the override budget.usd=USD (and the kolmfile's budget.usd)
        overrides.append(f"budget.usd={budget}")
    if out is not None:  # same as the override out=PATH; the artifact's bytes do not depend on it
        if multirun:
            raise ConfigError("--out names one file: a sweep (-m) keeps each point's artifact in its own "
                              "folder under sweeps/<timestamp>/")
        if len(targets or project.kolmfile.targets) != 1:
            raise ConfigError("--out names one file: build one target with it (kolmbuild TARGET --out FILE)")
        quoted = os.path.abspath(out).replace("\\", "\\\\").replace("'", "\\'")
        overrides.append(f"out='{quoted}'")
    options = BuildOptions(jobs, keep_going)
    if multirun:
        exit_with(_multirun(project, targets, overrides, options, json_out, settings, executor, ray_address))
    composed = _compose(project, targets, overrides)
    if show_cfg:
        import yaml

        docs = {t.name: t.dump() for t in composed}
        if json_out:
            click.echo(json.dumps(docs, indent=2, sort_keys=True))
        else:
            click.echo(yaml.safe_dump(docs, sort_keys=False).rstrip())
        return
    with _engine(project, quiet=json_out, remote=settings) as engine:
        if dry_run:
            _print_plans(engine.status(composed), json_out, dry_run=True)
            return
        outcomes = engine.build(composed, options, stamp_for=state.stamp_request())
    for o in outcomes:
        if o.error is not None:
            click.echo(f"kolmbuild: error: {o.error}", err=True)
    if json_out:
        click.echo(json.dumps([o.to_json(project.root) for o in outcomes], indent=2))
    exit_with(exit_code(outcomes))


def _multirun(project: Project, targets: list[str], overrides: list[str], options: BuildOptions,
              json_out: bool, remote: RemoteSettings, executor: str | None, ray_address: str | None) -> int:
    from kolmbuild.sweep import executor_spec, run_sweep

    placement = executor_spec(project.kolmfile.executor, kind=executor, address=ray_address)
    with _engine(project, quiet=json_out, remote=remote) as engine:
        result = run_sweep(engine, targets, overrides, options, composer=project_composer(project),
                           placement=placement)
        if json_out:
            click.echo(json.dumps(result.summary, indent=2))
        else:
            _print_summary(result.summary["runs"])
            report = f"; report: {os.path.relpath(result.report, project.root)}" if result.report else ""
            engine.ui.note(f"sweep record: {os.path.relpath(result.summary_path, project.root)}{report}")
    return result.exit_code


def _print_summary(runs: list[dict[str, Any]]) -> None:
    from rich.console import Console
    from rich.table import Table

    table = Table(title="sweep summary (artifacts in the sweep folder, one folder per point)")
    for col in ("point", "status", "time", "cost", "K"):
        table.add_column(col)
    for r in runs:
        k = r.get("k_score")
        cost = f"${r['cost_usd']:.4f}" + ("" if r.get("cost_known", True) else "+?")
        table.add_row(r.get("name") or f"{r['target']} {' '.join(r['overrides'])}", r["status"],
                      f"{r['duration_s']:.2f} s", cost, f"{k:.3f}" if isinstance(k, float) else "-")
    Console(stderr=True).print(table)


# ---------------------------------------------------------------------------- status / dry run


def _print_plans(plans: Sequence[StagePlan], json_out: bool, dry_run: bool) -> None:
    if json_out:
        click.echo(json.dumps([p.to_json() for p in plans], indent=2))
    else:
        for p in plans:
            click.echo(p.line(dry_run))


@click.command("status")
@_PROJECT_ARGS
@click.option("--json", "json_out", is_flag=True, help="JSON on stdout.")
@remote_options(push=False)
@pass_state
def status(state: CliState, args: tuple[str, ...], json_out: bool, remote: str | None,
           remote_required: bool) -> None:
    """Each stage of each target: up to date, or stale and which input changed (and, with a remote
    cache, whether the remote can supply it)."""
    project = state.project()
    targets, overrides = _split_args(project, args)
    composed = _compose(project, targets, overrides)
    with _engine(project, quiet=True, remote=_remote(project, remote, False, remote_required)) as engine:
        plans = engine.status(composed, stamp_for=None if json_out else state.stamp_request())
    _print_plans(plans, json_out, dry_run=False)


# ---------------------------------------------------------------------------- dag


@click.command("dag")
@click.option("--dot", is_flag=True, help="Graphviz dot.")
@click.option("--json", "json_out", is_flag=True, help="JSON on stdout.")
@pass_state
def dag(state: CliState, dot: bool, json_out: bool) -> None:
    """The stage graph."""
    project = state.project()
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
@pass_state
def clean(state: CliState, args: tuple[str, ...]) -> None:
    """Remove the built artifacts of the targets (the cache stays; see gc)."""
    project = state.project()
    targets, overrides = _split_args(project, args)
    composed = _compose(project, targets, overrides)
    with _engine(project, quiet=True) as engine:
        removed = engine.clean(composed)
    for out in removed:
        click.echo(f"removed {os.path.relpath(out, project.root)}")


@click.command("gc")
@click.option("--json", "json_out", is_flag=True, help="JSON on stdout.")
@pass_state
def gc(state: CliState, json_out: bool) -> None:
    """Drop cache entries that no target's current stages reference."""
    project = state.project()
    composed = _compose(project, [], [])
    with _engine(project, quiet=True) as engine:
        rec = engine.gc(composed)
    if json_out:
        click.echo(json.dumps(rec.to_json()))
    else:
        click.echo(f"gc: removed {rec.objects_removed} object(s), {rec.bytes_freed} bytes; "
                   f"{rec.runs_removed} run record(s); {rec.temp_removed} temp")
