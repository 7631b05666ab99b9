"""``kolmbuild seeds``: check example files before a build (``validate``) or make them (``convert``)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Literal

import click

from kolmbuild.cli.seeds_convert import convert


@click.group("seeds")
def seeds() -> None:
    """Validate or convert example files."""


@seeds.command("validate")
@click.argument("file", type=click.Path(dir_okay=False, path_type=Path))
@click.option("--shape", "shape_name", type=click.Choice(["text", "json", "label"]), default=None,
              help="Output shape to check against (default: inferred from the rows).")
@click.option("--json", "as_json", is_flag=True, help="Print the report as JSON.")
def validate(file: Path, shape_name: Literal["text", "json", "label"] | None, as_json: bool) -> None:
    """Report FILE's row count and shape, or every bad line with its number and why (exit 2)."""
    from kolmbuild.data.validate import validate_examples

    report = validate_examples(file, shape_name)
    if as_json:
        click.echo(json.dumps(report.to_json(), indent=2, ensure_ascii=False))
    elif report.error is not None:
        click.echo(f"{file}: {report.error}", err=True)
    elif report.problems:
        n = len(report.problems)
        click.echo(f"{file}: {n} bad line{'s' if n != 1 else ''}", err=True)
        for p in report.problems:
            click.echo(f"  {file}:{p.line}: {p.reason}", err=True)
    else:
        line = f"{file}: {report.rows} rows, input {report.shape.input}, output {report.shape.output}"
        if report.labels is not None:
            more = " …" if len(report.labels) > 8 else ""
            line += f" ({len(report.labels)} labels: {', '.join(report.labels[:8])}{more})"
        click.echo(line)
    if not report.ok:
        raise click.exceptions.Exit(2)


seeds.add_command(convert)
