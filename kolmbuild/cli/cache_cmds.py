"""``kolmbuild cache verify``: re-hash the local store, drop what fails, report."""

from __future__ import annotations

import json

import click

from kolmbuild.cli.build_cmds import _engine, _project
from kolmbuild.engine.ui import StageProgress


@click.group("cache")
def cache() -> None:
    """The local build cache (cache/ beside the kolmfile)."""


@cache.command("verify")
@click.option("--json", "json_out", is_flag=True, help="JSON on stdout.")
@click.pass_context
def verify(ctx: click.Context, json_out: bool) -> None:
    """Re-hash every stored object; remove the damaged ones and the run records that name them.

    Exit 0 when every object was intact, 1 when something was removed (the next build makes it
    again).
    """
    project = _project(ctx)
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
    ctx.exit(0 if report.ok else 1)
