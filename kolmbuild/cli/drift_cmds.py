"""``kolmbuild drift list|accept|clear [TARGET]``: what ``run`` and ``serve`` logged comes back.

    kolmbuild drift list [TARGET] [--json]          distinct logged inputs: id, count, first/last seen
    kolmbuild drift accept [TARGET] (--id ID… | --all)   into the task's unlabelled set (task.unlabeled)
    kolmbuild drift clear [TARGET] [--id ID…]       off the log (all of it without --id)

Without TARGET: ``list`` shows every target of the kolmfile (every log on this machine outside a
project); ``accept`` and ``clear`` need the kolmfile to have a single target. An accepted input is
appended to the file ``task.unlabeled`` names, an input of the ingest stage: ``status`` and ``-n``
then show the stages it makes stale, and the next build has the teacher label it. Nothing leaves
this machine unless the task has a teacher and the input was accepted.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

import click

from kolmbuild.cli.state import CliState, pass_state
from kolmbuild.errors import UserInputError

if TYPE_CHECKING:
    from kolmbuild.config.kolmfile import Project

PREVIEW = 60  # characters of an input shown in the list


def _project(state: CliState) -> Project | None:
    """The project; outside one (no kolmfile here, and neither -C nor -f given), None."""
    return state.project() if state.directory or state.kolmfile else state.project_or_none()


def _when(ts: int) -> str:
    return datetime.fromtimestamp(ts, UTC).strftime("%Y-%m-%d %H:%M:%SZ") if ts else "?"


def _preview(value: Any) -> str:
    text = value if isinstance(value, str) else json.dumps(value, ensure_ascii=False, sort_keys=True)
    text = " ".join(text.split())
    text = "".join(c if c.isprintable() else "?" for c in text)  # never control characters to the terminal
    return text if len(text) <= PREVIEW else text[: PREVIEW - 1] + "…"


@click.group("drift")
def drift() -> None:
    """Inputs run/serve logged that no recipe covered: list, accept for the next compile, clear."""


@drift.command("list")
@click.argument("target", required=False)
@click.option("--json", "as_json", is_flag=True, help="JSON on stdout: {target: [entries]}.")
@pass_state
def list_(state: CliState, target: str | None, as_json: bool) -> None:
    """List what was logged for TARGET (default: every target of the kolmfile)."""
    from kolmbuild.runtime.drift import list_drift, logged_targets

    if target is not None:
        targets = [target]
    else:
        project = _project(state)
        targets = sorted(project.kolmfile.targets) if project is not None else logged_targets()
    found = {t: list_drift(t) for t in targets}
    if as_json:
        click.echo(json.dumps({t: [e.to_json() for e in es] for t, es in found.items()}, indent=2, sort_keys=True,
                              ensure_ascii=False))
        return
    for t, entries in found.items():
        total = sum(e.count for e in entries)
        click.echo(f"{t}: {len(entries)} distinct input(s), {total} logged")
        for e in entries:
            routes = ",".join(sorted(e.routes))
            click.echo(f"  {e.id}  x{e.count:<4} {_when(e.first_seen)} .. {_when(e.last_seen)}  [{routes}]  {_preview(e.input)}")
    if any(found.values()):
        click.echo("accept with: kolmbuild drift accept TARGET --id ID (or --all)")


@drift.command("accept")
@click.argument("target", required=False)
@click.option("--id", "ids", multiple=True, metavar="ID", help="A logged input's id (from drift list); repeatable.")
@click.option("--all", "all_", is_flag=True, help="Accept every logged input of TARGET.")
@pass_state
def accept_(state: CliState, target: str | None, ids: tuple[str, ...], all_: bool) -> None:
    """Append logged inputs to TARGET's unlabelled set (task.unlabeled), for the next compile."""
    from kolmbuild.runtime.drift import accept_for_task
    from kolmbuild.wiring import composer

    if bool(ids) == all_:
        raise UserInputError("say which inputs: --id ID (repeatable) or --all")
    project = state.project()
    name = project.one_target(target)
    task = composer(project).compose(name).config.task
    done = accept_for_task(name, task, project.root, None if all_ else list(ids))
    click.echo(f"accepted {len(done.accepted)} input(s) into {task.unlabeled} (task.unlabeled)"
               + (f"; {len(done.already)} were there already" if done.already else ""))
    for e in done.wrong_shape:
        click.echo(f"  skipped {e.id}: not a {task.shape.input} input for this task (left in the log)")
    if done.accepted:
        if task.teacher is None:
            click.echo("note: the task has no teacher, so the next build cannot label them (set task.teacher)")
        else:
            click.echo(f"the next build sends them to the teacher ({task.teacher.model}); "
                       "kolmbuild status shows the stages they make stale")


@drift.command("clear")
@click.argument("target", required=False)
@click.option("--id", "ids", multiple=True, metavar="ID", help="Clear only this logged input; repeatable.")
@pass_state
def clear_(state: CliState, target: str | None, ids: tuple[str, ...]) -> None:
    """Take logged inputs off TARGET's drift log (all of them without --id)."""
    from kolmbuild.runtime.drift import clear

    name = target if target is not None else state.project().one_target()
    removed = clear(name, list(ids) if ids else None)
    click.echo(f"cleared {removed} logged line(s) of {name}")
