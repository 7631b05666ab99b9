"""``kolmbuild compute``: list, detect, pick, use, info, status, test, quote, rent (all with --json)."""

from __future__ import annotations

import json
import sys
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

import click

from kolmbuild.cli.state import CliState, pass_state
from kolmbuild.errors import KolmError

if TYPE_CHECKING:
    from kolmbuild.compute.rent import Ask
    from kolmbuild.compute.workspace import Workspace

JSON_OPT = click.option("--json", "json_out", is_flag=True, help="JSON on stdout.")


class USD(click.ParamType):
    """A budget: a finite number of USD >= 0 (``inf``, ``nan``, ``1e309`` and negatives are refused)."""

    name = "usd"

    def convert(self, value: Any, param: Any, ctx: Any) -> float:
        from kolmbuild.compute.rent import check_budget_value
        from kolmbuild.errors import UserInputError

        try:
            number = float(value)
            return float(check_budget_value(number, f"--{param.name if param else 'budget'}") or 0.0)
        except (ValueError, UserInputError) as exc:
            self.fail(f"{value!r}: a budget must be a finite number of USD >= 0 ({exc})", param, ctx)


def _workspace(state: CliState) -> Workspace:
    from kolmbuild.wiring import compute_workspace

    return compute_workspace(state.root, state.project_or_none())


def _emit(data: Any) -> None:
    click.echo(json.dumps(data, indent=2, sort_keys=False))


def _ask() -> Ask | None:
    """The confirm gate's question on a TTY, or None when there is nobody to ask."""
    if not _stdin_is_tty():
        return None
    return lambda question: click.confirm(question, default=False, err=True)


@click.group("compute")
def compute() -> None:
    """Compute backends: see them, pick one, quote a build everywhere, rent with a budget cap."""


# ---------------------------------------------------------------------------------------- list
@compute.command("list")
@JSON_OPT
@pass_state
def list_(state: CliState, json_out: bool) -> None:
    """Every backend, grouped LOCAL / CLOUD / SELF-HOSTED: tier, what enables it, price, runtime."""
    from kolmbuild.compute.quote import pricing_label
    from kolmbuild.compute.registry import KIND_GROUP

    c = _workspace(state)
    rows = [{"name": s.name, "group": KIND_GROUP[s.kind], "kind": s.kind, "tier": s.tier,
             "enables": s.enables or (", ".join(s.auth) if s.auth else "always available"),
             "price": pricing_label(s), "cold_start_seconds": s.cold_start_seconds, "runtime": s.runtime,
             "train": s.train, "infer": s.infer, "source": str(c.registry.sources[s.name])}
            for s in c.registry]
    if json_out:
        _emit({"registry": c.registry.version(), "backends": rows})
        return
    click.echo(f"registry {c.registry.version()}: {len(rows)} backends")
    for group in ("LOCAL", "CLOUD", "SELF-HOSTED"):
        members = [r for r in rows if r["group"] == group]
        if not members:
            continue
        click.echo(f"\n{group}")
        for r in members:
            role = "train+infer" if r["train"] and r["infer"] else ("infer only" if r["infer"] else "train only")
            click.echo(f"  {r['name']:<15} {r['tier']:<12} {r['price']:<16} {role:<12} {r['enables']}")
            if r["runtime"]:
                click.echo(f"  {'':<15} runtime: {r['runtime']}")


# -------------------------------------------------------------------------------------- detect
@compute.command("detect")
@click.argument("names", nargs=-1)
@JSON_OPT
@pass_state
def detect_(state: CliState, names: tuple[str, ...], json_out: bool) -> None:
    """Per backend: ok / not detected / no token (and how to enable it)."""
    from kolmbuild.compute.picker import detect_all

    c = _workspace(state)
    for n in names:
        c.registry.get(n)
    found = detect_all(c.registry, only=names or None)
    if json_out:
        _emit([d.to_json() for d in found.values()])
        return
    for d in found.values():
        click.echo(f"{d.backend:<15} {d.status:<13} {d.detail}")


# ---------------------------------------------------------------------------------------- pick
@compute.command("pick")
@click.argument("target", required=False)
@click.option("--spec", type=click.Path(dir_okay=False), help="A job spec or task YAML to pick for.")
@click.option("--airgap", is_flag=True, help="Only backends that run with no network.")
@click.option("--budget", type=USD(), help="USD cap: per hour, or for the job when given.")
@click.option("--min-vram", type=click.FloatRange(min=0), help="Minimum accelerator memory, GB.")
@click.option("--train/--infer", "train", default=True, help="The role the backend must serve.")
@JSON_OPT
@pass_state
def pick_(state: CliState, target: str | None, spec: str | None, airgap: bool, budget: float | None,
          min_vram: float | None, train: bool, json_out: bool) -> None:
    """Score every backend that passes the filters; print the pick, runners-up and what was removed."""
    c = _workspace(state)
    res = c.pick(spec=spec, target=target, airgap=airgap, budget_usd=budget, min_vram_gb=min_vram,
                 role="train" if train else "infer")
    if json_out:
        _emit(res.to_json())
        if res.picked is None:
            raise click.exceptions.Exit(1)
        return
    p = res.picked
    if p is None:
        click.echo("picked: none (every backend was filtered out)")
    else:
        click.echo(f"picked:  {p.backend}")
        click.echo(f"device:  {p.device}")
        click.echo(f"score:   {p.score:.3f}")
        click.echo(f"reason:  {res.reason()}")
        if res.runners_up:
            click.echo("runners-up:")
            for s in res.runners_up:
                click.echo(f"  {s.backend:<15} {s.score:.3f}")
    if res.filtered:
        click.echo("filtered:")
        for f in res.filtered:
            click.echo(f"  {f}")
    for note in res.notes:
        click.echo(f"job: {note}")
    click.echo(f"picker: {res.version}")
    if p is None:
        raise click.exceptions.Exit(1)


# ----------------------------------------------------------------------------------------- use
@compute.command("use")
@click.argument("name")
@JSON_OPT
@pass_state
def use(state: CliState, name: str, json_out: bool) -> None:
    """Make NAME the default backend (user config). KOLM_BACKEND and the kolmfile override it."""
    path = _workspace(state).use(name)
    if json_out:
        _emit({"backend": name, "config": str(path)})
    else:
        click.echo(f"default backend: {name} (written to {path})")


# ---------------------------------------------------------------------------------------- info
@compute.command("info")
@click.argument("name")
@JSON_OPT
@pass_state
def info(state: CliState, name: str, json_out: bool) -> None:
    """Everything the registry knows about NAME, its detection, and a quote of the reference job."""
    doc = _workspace(state).info(name)
    if json_out:
        _emit(doc)
        return
    for k, v in doc["backend"].items():
        click.echo(f"{k:<20} {json.dumps(v) if isinstance(v, (dict, list)) else v}")
    click.echo(f"{'source':<20} {doc['source']}")
    d = doc["detect"]
    click.echo(f"{'detect':<20} {d['status']} ({d['detail']})")
    q = doc["reference_quote"]
    click.echo(f"{'reference quote':<20} {q['duration_s']:.0f} s, ${q['cost_usd']:.2f}  [{q['basis'] or q['reason']}]")


# -------------------------------------------------------------------------------------- status
@compute.command("status")
@click.option("--all", "show_all", is_flag=True, help="Also rentals already released.")
@click.option("--no-remote", is_flag=True, help="Do not ask providers for orphans (ledger only).")
@JSON_OPT
@pass_state
def status(state: CliState, show_all: bool, no_remote: bool, json_out: bool) -> None:
    """Live rentals this machine started (the ledger) and orphans (provider instances it does not know)."""
    from kolmbuild.compute.status import rental_status

    c = _workspace(state)
    report = rental_status(c.registry, include_released=show_all, ask_providers=not no_remote)
    if json_out:
        _emit(report)
        return
    rentals = report["rentals"]
    if not rentals:
        click.echo("no live rentals")
    for r in rentals:
        iid = r["instance_id"] or "-"
        click.echo(f"{r['run_id']}  {r['backend']:<10} {r['state']:<15} {iid:<14} est ${r['estimate_usd']:.2f}"
                   + (f"  ({r['note']})" if r["note"] else ""))
    for o in report["orphans"]:
        click.echo(f"ORPHAN {o['backend']} instance {o['instance_id']} ({o['label']}, {o['status']}): "
                   "not released by this machine's ledger")
    for e in report["errors"]:
        click.echo(f"could not list {e['backend']}: {e['error']}")


# ---------------------------------------------------------------------------------------- test
@compute.command("test")
@click.argument("name")
@click.option("--confirm", is_flag=True, help="Rent the (paid) test machine without asking.")
@JSON_OPT
@pass_state
def test_(state: CliState, name: str, confirm: bool, json_out: bool) -> None:
    """Four steps on NAME: auth check, container provision, trainer dry run (no weights), receipt round-trip."""
    from kolmbuild.compute.selftest import self_test

    c = _workspace(state)
    spec = c.registry.get(name)
    steps = self_test(spec, c.root, echo=(lambda s: None) if json_out else (lambda s: click.echo(f"  {s}", err=True)),
                      confirm=confirm, ask=_ask())
    ok = all(s["ok"] for s in steps)
    if json_out:
        _emit({"backend": name, "passed": ok, "steps": steps})
    else:
        for s in steps:
            click.echo(f"{'PASS' if s['ok'] else 'FAIL'}  {s['step']:<20} {s['detail']}")
        click.echo(f"{name}: {'PASS' if ok else 'FAIL'}")
    if not ok:
        raise click.exceptions.Exit(1)


# --------------------------------------------------------------------------------------- quote
@compute.command("quote")
@click.argument("target", required=False)
@click.option("--spec", type=click.Path(dir_okay=False), help="A job spec or task YAML to quote.")
@JSON_OPT
@pass_state
def quote_(state: CliState, target: str | None, spec: str | None, json_out: bool) -> None:
    """BACKEND DURATION COST BASIS for every eligible backend. Runs no code; costs nothing."""
    c = _workspace(state)
    table = c.quote_all(spec=spec, target=target)
    job, teacher = table.job, table.teacher_usd
    if json_out:
        _emit(table.to_json())
        return
    click.echo(f"job: {job.name}: {job.origin}")
    click.echo(f"{'BACKEND':<15} {'DURATION':>10} {'COST':>10}  BASIS")
    for q in sorted(table.eligible, key=lambda q: (q.cost_usd, q.duration_s)):
        cost = f"${q.cost_usd:.2f}"
        click.echo(f"{q.backend:<15} {_dur(q.duration_s):>10} {cost:>10}  {q.basis}")
    for q in table.ineligible:
        click.echo(f"{q.backend:<15} {'-':>10} {'-':>10}  not eligible: {q.reason}")
    if teacher is not None:
        click.echo(f"teacher: ${teacher:.2f} estimated (added to every backend's cost for the budget)")
    click.echo(f"registry {table.registry_version}; no code ran, nothing was spent")


def _stdin_is_tty() -> bool:
    return sys.stdin.isatty()


def _dur(seconds: float) -> str:
    if seconds < 120:
        return f"{seconds:.0f} s"
    if seconds < 7200:
        return f"{seconds / 60:.1f} min"
    return f"{seconds / 3600:.1f} h"


# ---------------------------------------------------------------------------------------- rent
@compute.command("rent")
@click.argument("target", required=False)
@click.option("--backend", "backend_name", required=True, help="The backend to rent.")
@click.option("--spec", type=click.Path(dir_okay=False), help="A job spec or task YAML (its work is quoted).")
@click.option("--budget", type=USD(), help="USD cap; default: the kolmfile's budget.usd.")
@click.option("--confirm", is_flag=True, help="Rent without asking (required without a TTY).")
@click.option("--data", type=click.Path(dir_okay=False, exists=True), help="A JSONL file to ship with the job.")
@click.option("--command", "command", multiple=True,
              help="Run this command on the machine instead of the trainer dry run (repeat per argument).")
@JSON_OPT
@pass_state
def rent(state: CliState, target: str | None, backend_name: str, spec: str | None, budget: float | None,
         confirm: bool, data: str | None, command: tuple[str, ...], json_out: bool) -> None:
    """Quote, check the budget (before any provider call), confirm, run, and always release."""
    from kolmbuild.compute.ledger import new_run_id

    c = _workspace(state)
    run_id = new_run_id()
    progress: list[_RentProgress] = []

    def started(q: Any) -> None:
        if not json_out:
            click.echo(f"renting {backend_name}: estimate ${q.cost_usd:.2f}, {_dur(q.duration_s)} ({q.basis}); "
                       f"run id {run_id}", err=True)
        progress.append(_RentProgress("rent", json_out, q.duration_s))

    try:
        rented = c.rent(backend_name, target=target, spec=spec, budget_usd=budget, confirm=confirm,
                        data=Path(data) if data else None, command=command, run_id=run_id,
                        on_progress=lambda line: progress[0].line(line), ask=_ask(), on_quote=started)
    finally:
        for p in progress:
            p.close()
    q, result = rented.quote, rented.result
    if json_out:
        _emit({**result.to_json(), "quote": q.to_json()})
    else:
        cost = "" if result.actual_usd is None else f", actual ${result.actual_usd:.4f}"
        click.echo(f"{backend_name}: exit {result.exit_code} in {result.duration_s:.1f} s (estimate "
                   f"${result.estimate_usd:.2f}{cost}); released")
        for out in result.outputs:
            click.echo(f"  output: {out}")
    if result.exit_code != 0:
        raise KolmError(f"{backend_name}: the job exited with status {result.exit_code}; the machine was released")


# ---------------------------------------------------------------------------------------- reap
@compute.command("reap")
@click.option("--yes", is_flag=True, help="Terminate every orphan without asking.")
@JSON_OPT
@pass_state
def reap_(state: CliState, yes: bool, json_out: bool) -> None:
    """End orphaned rentals: ledger rows whose kolmbuild is gone, and labelled instances the ledger lacks."""
    from kolmbuild.compute.status import reap

    c = _workspace(state)
    done = reap(c.registry, ask=_ask(), yes=yes, on_line=lambda s: click.echo(s, err=True))
    if json_out:
        _emit({"reaped": done})
    else:
        if not done:
            click.echo("no orphaned rentals")
        for d in done:
            click.echo(f"{d['action']:<10} {d['backend']:<10} {d['instance_id'] or '-':<14} {d['run_id']}")
    if any(d["action"] == "failed" for d in done):
        raise click.exceptions.Exit(1)


class _RentProgress:
    """The rental's progress through the engine's Progress protocol (a rich bar on a TTY, lines otherwise)."""

    def __init__(self, label: str, quiet: bool, expected_s: float) -> None:
        from kolmbuild.engine.ui import BuildUI, StageProgress

        self.progress = StageProgress(BuildUI(quiet=quiet), label)
        self.progress.start("provision -> run -> release", total=max(1.0, round(expected_s)))
        self.last = time.monotonic()

    def line(self, text: str) -> None:
        now = time.monotonic()
        self.progress.advance(now - self.last)
        self.last = now
        self.progress.log(text)

    def close(self) -> None:
        self.progress.close()
