"""``kolmbuild replay FILE.kolm [--json]``: does the artifact still answer its test rows as built?

Re-runs the artifact's shipped test rows on this machine and compares each output with the hash
the build recorded (:mod:`kolmbuild.evaluate.replay`). Exit 0: every row the same; exit 1: some
row differs (each is named); exit 2: the file cannot be used (unverifiable, no replay hashes).
"""

from __future__ import annotations

import json
from pathlib import Path

import click

from kolmbuild.errors import UserInputError

_FILE = click.Path(dir_okay=False, path_type=Path)
LISTED = 20  # differing rows named in the human report (--json lists all)


@click.command("replay")
@click.argument("artifact", type=_FILE)
@click.option("--pubkey", type=_FILE, default=None, help="Require this signer's public key (PEM).")
@click.option("--json", "as_json", is_flag=True, help="Print the kolm-replay record as JSON.")
def replay(artifact: Path, pubkey: Path | None, as_json: bool) -> None:
    """Re-run ARTIFACT's shipped test rows; exit 1 naming each row whose output changed."""
    from kolmbuild.engine.ui import BuildUI, StageProgress
    from kolmbuild.evaluate.replay import ReplayDiffers, replay_artifact

    for path, what in ((artifact, ".kolm file"), (pubkey, "public key file")):
        if path is not None and not path.is_file():
            raise UserInputError(f"{path}: no such {what}")
    progress = StageProgress(BuildUI(quiet=as_json), "replay")
    try:
        report = replay_artifact(artifact, pubkey=pubkey, progress=progress)
    finally:
        progress.close()
    if as_json:
        click.echo(json.dumps(report.to_json(), indent=2, sort_keys=True, ensure_ascii=False))
    else:
        click.echo(f"{artifact}: {report.same} of {report.rows} test rows answer as built")
        for d in report.differences[:LISTED]:
            route = f" (route {d.expected_route} -> {d.route})" if d.route is not None else ""
            click.echo(f"  row {d.id}: {d.problem} differs{route}" if d.problem == "output" else f"  row {d.id}: {d.problem}")
        if len(report.differences) > LISTED:
            click.echo(f"  … and {len(report.differences) - LISTED} more (--json lists all)")
    if not report.ok:
        ids = ", ".join(str(d.id) for d in report.differences[:LISTED])
        more = " …" if len(report.differences) > LISTED else ""
        raise ReplayDiffers(f"{artifact}: {len(report.differences)} test row(s) differ from the build: {ids}{more}")
