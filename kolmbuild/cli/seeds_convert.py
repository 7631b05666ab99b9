"""``kolmbuild seeds convert``: a CSV or Parquet table → an examples JSONL file (the lead attaches it to ``seeds``)."""

from __future__ import annotations

import json
from pathlib import Path

import click


@click.command("convert")
@click.argument("table", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option(
    "--input",
    "inputs",
    multiple=True,
    required=True,
    help="Input column (repeat for several: the input becomes an object).",
)
@click.option(
    "--output",
    "outputs",
    multiple=True,
    required=True,
    help="Output column (repeat for several: the output becomes an object).",
)
@click.option(
    "--out",
    "out",
    type=click.Path(dir_okay=False, path_type=Path),
    help="JSONL file to write (default: TABLE with .jsonl).",
)
@click.option("--json", "as_json", is_flag=True, help="Print the result as JSON.")
def convert(
    table: Path, inputs: tuple[str, ...], outputs: tuple[str, ...], out: Path | None, as_json: bool
) -> None:
    """Convert FILE.csv or FILE.parquet into {"input","output"} JSONL; empty rows are skipped and listed."""
    from kolmbuild.migrate import convert_table

    dest, conv = convert_table(table, inputs, outputs, out)
    if as_json:
        click.echo(json.dumps({
            "out": str(dest),
            "written": len(conv.examples),
            "skipped": [{"line": s.line, "reason": s.reason} for s in conv.skipped],
        }, indent=2))  # fmt: skip
        return
    click.echo(f"wrote {len(conv.examples)} examples -> {dest}; skipped {len(conv.skipped)}")
    for s in conv.skipped[:10]:
        click.echo(f"  {s}")
    if len(conv.skipped) > 10:
        click.echo(f"  … {len(conv.skipped) - 10} more (--json lists all)")
