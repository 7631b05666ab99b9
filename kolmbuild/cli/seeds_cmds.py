"""``kolmbuild seeds``: check example files before a build (``validate``) or make them (``convert``)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import click

from kolmbuild.cli.seeds_convert import convert


@click.group("seeds")
def seeds() -> None:
    """Validate or convert example files."""


def validate_file(path: Path, shape_name: str | None) -> dict[str, Any]:
    """{"file","rows","shape","labels"?,"problems":[{"line","reason"}]} for an examples file."""
    from kolmbuild.config.models import ShapeSpec
    from kolmbuild.data.examples import check_rows, infer_shape, parse_file

    rows, problems = parse_file(path)
    inferred = infer_shape(rows)
    if shape_name is None:
        shape = inferred
    elif shape_name == "label":
        shape = ShapeSpec(input=inferred.input, output="label")
    else:
        shape = ShapeSpec(input=inferred.input, output=shape_name)  # type: ignore[arg-type]
    examples, more = check_rows(rows, shape)
    problems = sorted([*problems, *more], key=lambda p: p.line)
    report: dict[str, Any] = {
        "file": str(path),
        "rows": len(examples),
        "shape": {"input": shape.input, "output": shape.output},
        "problems": [{"line": p.line, "reason": p.reason} for p in problems],
    }
    if shape.output == "label":
        report["labels"] = sorted({str(e.output) for e in examples})
    if not examples and not problems:
        report["error"] = "no examples (the file is empty)"
    return report


@seeds.command("validate")
@click.argument("file", type=click.Path(dir_okay=False, path_type=Path))
@click.option("--shape", "shape_name", type=click.Choice(["text", "json", "label"]), default=None,
              help="Output shape to check against (default: inferred from the rows).")
@click.option("--json", "as_json", is_flag=True, help="Print the report as JSON.")
@click.pass_context
def validate(ctx: click.Context, file: Path, shape_name: str | None, as_json: bool) -> None:
    """Report FILE's row count and shape, or every bad line with its number and why (exit 2)."""
    report = validate_file(file, shape_name)
    bad = report["problems"]
    if as_json:
        click.echo(json.dumps(report, indent=2, ensure_ascii=False))
    elif "error" in report:
        click.echo(f"{file}: {report['error']}", err=True)
    elif bad:
        click.echo(f"{file}: {len(bad)} bad line{'s' if len(bad) != 1 else ''}", err=True)
        for p in bad:
            click.echo(f"  {file}:{p['line']}: {p['reason']}", err=True)
    else:
        shape = report["shape"]
        line = f"{file}: {report['rows']} rows, input {shape['input']}, output {shape['output']}"
        if "labels" in report:
            line += f" ({len(report['labels'])} labels: {', '.join(report['labels'][:8])}{' …' if len(report['labels']) > 8 else ''})"
        click.echo(line)
    if bad or "error" in report:
        ctx.exit(2)


seeds.add_command(convert)
