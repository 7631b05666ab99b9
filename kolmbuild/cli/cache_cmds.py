"""``kolmbuild cache status|push|pull|verify``: the local cache and the remote stage cache.

Each verb parses, makes one call into the engine library (Engine.cache_status / push / pull /
verify_cache) and prints.
"""

from __future__ import annotations

import json

import click

from kolmbuild.cli.build_cmds import _compose, _engine, _remote, _split_args, remote_options
from kolmbuild.cli.state import CliState, exit_with, pass_state
from kolmbuild.engine.ui import StageProgress

_TARGETS = click.argument("args", nargs=-1)


@click.group("cache")
def cache() -> None:
    """The local build cache (cache/ beside the kolmfile) and the remote stage cache."""


@cache.command("status")
@_TARGETS
@click.option("--json", "json_out", is_flag=True, help="JSON on stdout.")
@remote_options(push=False)
@pass_state
def status(state: CliState, args: tuple[str, ...], json_out: bool, remote: str | None,
           remote_required: bool) -> None:
    """Per stage: local (here), pulled (recorded here, outputs on the remote), remote (only the
    remote has it), missing (it would run)."""
    project = state.project()
    targets, overrides = _split_args(project, args)
    composed = _compose(project, targets, overrides)
    with _engine(project, quiet=True, remote=_remote(project, remote, False, remote_required)) as engine:
        rows = engine.cache_status(composed)
        display = engine.remote.display if engine.remote is not None else ""
    if json_out:
        click.echo(json.dumps({"remote": display, "stages": [r.to_json() for r in rows]}, indent=2))
        return
    click.echo(f"remote cache: {display}")
    for r in rows:
        click.echo(f"{r.target}: {r.stage:<10} {r.where:<8} {r.key or ''}".rstrip())


@cache.command("push")
@_TARGETS
@click.option("--json", "json_out", is_flag=True, help="JSON on stdout.")
@remote_options(push=False)
@pass_state
def push(state: CliState, args: tuple[str, ...], json_out: bool, remote: str | None,
         remote_required: bool) -> None:
    """Push every up-to-date stage of the TARGETs (default: all) to the remote cache: the objects it
    lacks first, then the signed run records."""
    project = state.project()
    targets, overrides = _split_args(project, args)
    composed = _compose(project, targets, overrides)
    with _engine(project, quiet=json_out, remote=_remote(project, remote, True, remote_required)) as engine:
        report = engine.push(composed)
    if json_out:
        click.echo(json.dumps(report.to_json(), indent=2))
    else:
        for stage, why in report.skipped:
            click.echo(f"not pushed: {stage}: {why}", err=True)
        click.echo(f"cache push: {len(report.runs)} run(s) pushed, {report.objects} object(s) uploaded")
    exit_with(1 if report.skipped else 0)


@cache.command("pull")
@_TARGETS
@click.option("--json", "json_out", is_flag=True, help="JSON on stdout.")
@remote_options(push=False)
@pass_state
def pull(state: CliState, args: tuple[str, ...], json_out: bool, remote: str | None,
         remote_required: bool) -> None:
    """Take the remote's runs for the stale stages of the TARGETs and download every output, so the
    next build needs no network. Exit 1 when some stage is neither here nor on the remote."""
    project = state.project()
    targets, overrides = _split_args(project, args)
    composed = _compose(project, targets, overrides)
    with _engine(project, quiet=json_out, remote=_remote(project, remote, False, remote_required)) as engine:
        progress = StageProgress(engine.ui, "cache pull")
        try:
            report = engine.pull(composed, progress)
        finally:
            progress.close()
    if json_out:
        click.echo(json.dumps(report.to_json(), indent=2))
    else:
        for name in report.missing:
            click.echo(f"missing: {name} (neither here nor on the remote: a build runs it)", err=True)
        click.echo(f"cache pull: {len(report.pulled)} run(s) pulled, {report.objects} object(s) "
                   f"({report.bytes} bytes) downloaded")
    exit_with(1 if report.missing else 0)


@cache.command("verify")
@click.option("--json", "json_out", is_flag=True, help="JSON on stdout.")
@pass_state
def verify(state: CliState, json_out: bool) -> None:
    """Re-hash every stored object; remove the damaged ones and the run records that name them.

    Exit 0 when every object was intact, 1 when something was removed (the next build makes it
    again).
    """
    project = state.project()
    with _engine(project, quiet=json_out) as engine:
        progress = StageProgress(engine.ui, "cache")
        try:
            report = engine.verify_cache(progress)
        finally:
            progress.close()
    if json_out:
        click.echo(json.dumps(report.to_json(), indent=2))
    else:
        for bad in report.bad:
            click.echo(f"removed objects/{bad.name}: {bad.problem}")
        click.echo(f"cache verify: {report.objects_checked} object(s), {report.bytes_checked} bytes re-hashed in "
                   f"{report.seconds:.2f} s; {len(report.bad)} removed, {report.runs_dropped} run record(s) dropped")
    exit_with(0 if report.ok else 1)
