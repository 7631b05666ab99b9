"""``kolmbuild import predibase``, ``kolmbuild compare`` and ``kolmbuild report``."""

from __future__ import annotations

import json
from pathlib import Path

import click

from kolmbuild.cli.state import CliState, pass_state
from kolmbuild.errors import UserInputError


def _echo_json(data: object) -> None:
    click.echo(json.dumps(data, indent=2, ensure_ascii=False, default=str))


# ---------------------------------------------------------------- import


@click.group("import")
def import_() -> None:
    """Import work from another platform into this project."""


@import_.command("predibase")
@click.option(
    "--dataset",
    "dataset",
    required=True,
    type=click.Path(exists=True, path_type=Path),
    help="The exported dataset: a folder of CSV/Parquet files, or one file.",
)
@click.option(
    "--adapter",
    "adapter",
    type=click.Path(exists=True, file_okay=False, path_type=Path),
    help="The downloaded adapter folder (adapter_config.json, config.yaml).",
)
@click.option(
    "--config",
    "config",
    type=click.Path(exists=True, dir_okay=False, path_type=Path),
    help="The Ludwig config.yaml, when it is not in the adapter or dataset folder.",
)
@click.option(
    "--out",
    "out",
    type=click.Path(dir_okay=False, path_type=Path),
    help="Task config to write (default conf/task/NAME.yaml).",
)
@click.option("--name", "name", help="Task name (default: from --out, else the adapter folder).")
@click.option(
    "--data-dir",
    "data_dir",
    type=click.Path(file_okay=False, path_type=Path),
    help="Where train.jsonl/eval.jsonl go (default data/NAME).",
)
@click.option("--force", is_flag=True, help="Replace an existing task config and data files.")
@click.option("--json", "as_json", is_flag=True, help="Print the result as JSON.")
@pass_state
def predibase(state: CliState, dataset: Path, adapter: Path | None, config: Path | None, out: Path | None,
              name: str | None, data_dir: Path | None, force: bool, as_json: bool) -> None:  # fmt: skip
    """Import a Predibase export: dataset CSV/Parquet + Ludwig config + adapter_config.json."""
    from kolmbuild.migrate import import_predibase

    root = state.root
    res = import_predibase(
        dataset, adapter, root=root, out=out, name=name, data_dir=data_dir, config=config, force=force
    )
    if as_json:
        _echo_json(res.to_json())
        return
    rel = _relative(root)
    click.echo(f"imported task {res.name!r} -> {rel(res.task_path)}")
    click.echo(f"  train: {res.written['train']} rows -> {rel(res.train_path)}")
    if res.eval_path is not None:
        click.echo(f"  eval:  {res.written['eval']} rows -> {rel(res.eval_path)}")
    else:
        click.echo("  eval:  none (ingest will hold out task.split.holdout of train)")
    shape = res.task["shape"]
    click.echo(
        f"  shape: {shape['input']} -> {shape['output']}"
        + (f" {shape['labels']}" if "labels" in shape else "")
    )
    if "base" in res.task:
        click.echo(f"  base:  {res.task['base'].get('name', '(default)')}")
    if "train" in res.task:
        click.echo("  train: " + ", ".join(f"{k}={v}" for k, v in res.task["train"].items()))
    click.echo(f"  skipped: {len(res.skipped)} rows")
    for reason, n in res.skipped_by_reason().items():
        click.echo(f"    {n:>5} × {reason}")
    for s in res.skipped[:10]:
        click.echo(f"    {s}")
    if len(res.skipped) > 10:
        click.echo(f"    … {len(res.skipped) - 10} more (--json lists all)")
    for note in res.notes:
        click.echo(f"  note: {note}")
    if res.ignored:
        click.echo("  not carried over (no kolmbuild equivalent): " + ", ".join(res.ignored))


def _relative(root: Path):  # noqa: ANN202
    def rel(p: Path) -> str:
        try:
            return str(Path(p).resolve().relative_to(root))
        except ValueError:
            return str(p)

    return rel


# ---------------------------------------------------------------- compare


@click.command("compare")
@click.argument("a", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.argument("b", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option("--json", "as_json", is_flag=True, help="Print the comparison as JSON.")
@click.option("--show", default=10, show_default=True, help="How many changed cases to list.")
def compare(a: Path, b: Path, as_json: bool, show: int) -> None:
    """Compare two eval records (kolmbuild eval --json): A is the baseline, B the candidate."""
    from kolmbuild.compare import compare_records, load_eval

    cmp = compare_records(load_eval(a), load_eval(b))
    if as_json:
        _echo_json(cmp.to_json())
        return
    from rich.console import Console
    from rich.table import Table

    table = Table(title=f"A = {cmp.a.subject}\nB = {cmp.b.subject}", title_justify="left")
    table.add_column("metric")
    for col in ("A", "B", "Δ (B − A)"):
        table.add_column(col, justify="right")
    for metric, va, vb, d in cmp.metrics():
        if metric == "pass_rate":
            cells = (f"{va:.1%}", f"{vb:.1%}", f"{d * 100:+.1f} pp")
        elif metric.endswith("_ms"):
            cells = (f"{va:.1f}", f"{vb:.1f}", f"{d:+.1f}")
        else:
            cells = (f"{va:g}", f"{vb:g}", f"{d:+g}")
        table.add_row(metric, *cells)
    console = Console(highlight=False, soft_wrap=True)
    console.print(table)
    console.print(
        f"matched {cmp.matched} cases by input: {cmp.both_passed} pass in both, {cmp.both_failed} fail in both, "
        f"{len(cmp.fixed)} fixed (fail → pass), {len(cmp.regressed)} regressed (pass → fail)"
    )
    if cmp.only_a or cmp.only_b:
        console.print(f"unmatched: {len(cmp.only_a)} only in A, {len(cmp.only_b)} only in B")
    for label, changes in (("regressed", cmp.regressed), ("fixed", cmp.fixed)):
        for c in changes[:show]:
            console.print(
                f"  {label}: input={_short(c.input)} expected={_short(c.expected)} "
                f"A={_short(c.a_output)} B={_short(c.b_output)}",
                markup=False,
            )
        if len(changes) > show:
            console.print(f"  … {len(changes) - show} more {label} (--json lists all)")


def _short(v: object, n: int = 60) -> str:
    s = json.dumps(v, ensure_ascii=False)
    return s if len(s) <= n else s[: n - 1] + "…"


# ---------------------------------------------------------------- report


@click.command("report")
@click.argument("sweep", required=False, type=click.Path(file_okay=False, path_type=Path))
@click.option("--json", "as_json", is_flag=True, help="Print the report path as JSON.")
@pass_state
def report(state: CliState, sweep: Path | None, as_json: bool) -> None:
    """Render a sweep's report.html (default: the newest folder under sweeps/)."""
    from kolmbuild.report import newest_sweep, write_sweep_report

    root = state.root
    if sweep is None:
        sweep = newest_sweep(root / "sweeps")
    elif not sweep.is_dir():
        raise UserInputError(f"{sweep}: no such sweep folder")
    path = write_sweep_report(sweep)
    if as_json:
        _echo_json({"sweep": str(sweep), "report": str(path)})
    else:
        click.echo(f"wrote {path}")
