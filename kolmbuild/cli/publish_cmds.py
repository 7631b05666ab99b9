"""``kolmbuild publish FILE.kolm --to URL`` and ``kolmbuild pull NAME[@VERSION] --from URL``."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import click


def _verify_kw(pubkey: Path | None) -> dict[str, Any]:
    return {"pubkey": pubkey} if pubkey is not None else {}


@click.command("publish")
@click.argument("artifact", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option(
    "--to", "url", required=True, help="Registry URL: a folder, memory://, s3://bucket/x, ssh://host/path."
)
@click.option(
    "--pubkey",
    type=click.Path(exists=True, dir_okay=False, path_type=Path),
    help="Public key the artifact's signature must verify against.",
)
@click.option("--json", "as_json", is_flag=True, help="Print the index entry as JSON.")
def publish(artifact: Path, url: str, pubkey: Path | None, as_json: bool) -> None:
    """Copy a verified .kolm file to a registry, keyed by its manifest CID."""
    from kolmbuild.publish import Registry

    res = Registry(url).publish(artifact, **_verify_kw(pubkey))
    e = res.entry
    if as_json:
        click.echo(json.dumps({"created": res.created, "url": url, **e.model_dump()}, indent=2))
        return
    what = "published" if res.created else "already published"
    k = "—" if e.k_score is None else f"{e.k_score:.3f}"
    click.echo(f"{what} {e.name}@{e.version} (K={k}) -> {url.rstrip('/')}/{e.path}")
    click.echo(f"  cid {e.cid}")


@click.command("pull")
@click.argument("spec", metavar="NAME[@VERSION]")
@click.option("--from", "url", required=True, help="Registry URL.")
@click.option(
    "--out",
    "out",
    type=click.Path(dir_okay=False, path_type=Path),
    help="Where to write the file (default NAME-VERSION.kolm).",
)
@click.option(
    "--pubkey",
    type=click.Path(exists=True, dir_okay=False, path_type=Path),
    help="Public key the artifact's signature must verify against.",
)
@click.option("--json", "as_json", is_flag=True, help="Print the result as JSON.")
def pull(spec: str, url: str, out: Path | None, pubkey: Path | None, as_json: bool) -> None:
    """Fetch a .kolm file from a registry and verify it before it lands (newest version by default)."""
    from kolmbuild.publish import Registry

    res = Registry(url).pull(spec, out, **_verify_kw(pubkey))
    e = res.entry
    if as_json:
        click.echo(json.dumps({"path": str(res.path), "verified": True, **e.model_dump()}, indent=2))
        return
    k = "—" if e.k_score is None else f"{e.k_score:.3f}"
    click.echo(f"pulled {e.name}@{e.version} (K={k}) -> {res.path} (verified, cid {e.cid})")
