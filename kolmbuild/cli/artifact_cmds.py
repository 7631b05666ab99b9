"""Verbs on .kolm files: ``verify``, ``inspect``, ``keygen``, ``sign``.

``verify`` exits 0 only when every check holds; a malformed, unsafe, tampered or wrongly signed
file exits 2 and names what failed. ``--json`` output is stable: no clocks, no absolute paths.
"""

from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path
from typing import Any

import click

from kolmbuild.errors import UserInputError, printable

_FILE = click.Path(dir_okay=False, path_type=Path)


def _echo_json(doc: Any) -> None:
    click.echo(json.dumps(doc, indent=2, sort_keys=True, ensure_ascii=False))


def _hmac_key(env_var: str | None) -> bytes | None:
    """The HMAC key: from ``$env_var`` when named (it must be set), else the configured one if any."""
    from kolmbuild.artifact.keys import resolve_hmac_key

    if env_var is None:
        return resolve_hmac_key()
    value = os.environ.get(env_var)
    if not value:
        raise UserInputError(f"--hmac-key-env {env_var}: ${env_var} is not set or empty")
    return value.encode()


def _pubkey(path: Path | None) -> Any:
    if path is None:
        return None
    from kolmbuild.artifact.keys import load_public_key

    return load_public_key(path)


def _sha256_file(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        while block := f.read(1 << 20):
            h.update(block)
    return h.hexdigest()


# ----------------------------------------------------------------------------------------- verify


@click.command("verify")
@click.argument("file", type=_FILE)
@click.option("--pubkey", type=_FILE, default=None, help="The signer's public key (PEM). Default: your trusted keys.")
@click.option("--hmac-key-env", metavar="VAR", default=None, help="Check hmac.json with the key in $VAR.")
@click.option(
    "--trust-embedded-key",
    is_flag=True,
    help="Accept the key the manifest names even if you do not know it (integrity only).",
)
@click.option("--trusted-root", type=_FILE, default=None, help="Sigstore trusted root (JSON) for sigstore.sig, offline.")
@click.option("--sigstore-identity", default=None, help="Require this signer identity on sigstore.sig.")
@click.option("--sigstore-issuer", default=None, help="…issued by this OIDC issuer.")
@click.option("--json", "as_json", is_flag=True, help="Print the report as JSON.")
@click.pass_context
def verify(
    ctx: click.Context,
    file: Path,
    pubkey: Path | None,
    hmac_key_env: str | None,
    trust_embedded_key: bool,
    trusted_root: Path | None,
    sigstore_identity: str | None,
    sigstore_issuer: str | None,
    as_json: bool,
) -> None:
    """Verify FILE offline: zip structure, every component CID, the manifest, every signature."""
    from kolmbuild.artifact.verify import verify_file

    if bool(sigstore_identity) != bool(sigstore_issuer):
        raise UserInputError("--sigstore-identity and --sigstore-issuer go together")
    if not file.is_file():
        raise UserInputError(f"{file}: no such file")
    report = verify_file(
        file,
        pubkey=_pubkey(pubkey),
        hmac_key=_hmac_key(hmac_key_env),
        trust_embedded_key=trust_embedded_key,
        trusted_root=trusted_root,
        sigstore_identity=sigstore_identity,
        sigstore_issuer=sigstore_issuer,
    )
    if as_json:
        _echo_json(report.to_json())
    else:
        for c in report.checks:
            mark = "skip" if c.skipped else ("ok" if c.ok else "FAIL")
            click.echo(f"{mark:>4}  {c.name:<24} {printable(c.detail)}")  # details quote the file's bytes
        if report.ok:
            click.echo(f"{file}: verified ({report.manifest_cid})")
    if not report.ok:
        click.echo(f"kolmbuild: error: {file}: verification failed: {printable(report.failure_text())}", err=True)
        ctx.exit(2)


# ---------------------------------------------------------------------------------------- inspect


@click.command("inspect")
@click.argument("file", type=_FILE)
@click.option("--json", "as_json", is_flag=True, help="Print the full manifest (and file identity) as JSON.")
def inspect_(file: Path, as_json: bool) -> None:
    """Summarize FILE: target, K-score and its terms, components, compute, toolchain.

    This reads the manifest of a well-formed file; it does not check signatures (use verify).
    """
    from kolmbuild.artifact.reader import load_artifact

    if not file.is_file():
        raise UserInputError(f"{file}: no such file")
    with load_artifact(file) as art:
        if as_json:
            _echo_json(
                {
                    "file": {"name": file.name, "size": file.stat().st_size, "sha256": _sha256_file(file)},
                    "manifest_cid": art.manifest_cid,
                    "members": art.member_names,
                    "manifest": art.manifest,
                }
            )
            return
        from rich.console import Console

        from kolmbuild.artifact.inspect import render, summary

        render(summary(art), Console(highlight=False, soft_wrap=True))
        click.echo("(not verified here: run `kolmbuild verify` to check CIDs and signatures)")


# ----------------------------------------------------------------------------------------- keygen


@click.command("keygen")
@click.option(
    "--out",
    "out_dir",
    type=click.Path(file_okay=False, path_type=Path),
    default=None,
    help="Folder for the key pair. Default: your keys folder (the key builds sign with).",
)
@click.option("--name", default="kolm-signing", show_default=True, help="File name stem: NAME.pem and NAME.pub.")
@click.option("--force", is_flag=True, help="Replace an existing key pair.")
@click.option("--json", "as_json", is_flag=True, help="Print paths and fingerprint as JSON.")
def keygen(out_dir: Path | None, name: str, force: bool, as_json: bool) -> None:
    """Write an EC P-256 signing key pair (private key mode 0600)."""
    from kolmbuild.artifact.keys import fingerprint, generate_keypair, load_public_key

    if not name or "/" in name or name.startswith("."):
        raise UserInputError(f"--name {name!r}: expected a plain file name stem")
    priv, pub = generate_keypair(out_dir, name=name, force=force)
    fp = fingerprint(load_public_key(pub))
    if as_json:
        _echo_json({"private_key": str(priv), "public_key": str(pub), "fingerprint": fp})
    else:
        click.echo(f"private key  {priv}  (mode 0600: keep it secret)")
        click.echo(f"public key   {pub}  (give it to whoever verifies)")
        click.echo(f"fingerprint  {fp}")


# ------------------------------------------------------------------------------------------- sign


@click.command("sign")
@click.argument("file", type=_FILE)
@click.option("--out", type=_FILE, default=None, help="Write the signed file here instead of in place.")
@click.option("--key", "key_path", type=_FILE, default=None, help="EC P-256 private key (PEM). Default: your key.")
@click.option("--hmac-key-env", metavar="VAR", default=None, help="Add hmac.json with the key in $VAR.")
@click.option("--sigstore", "use_sigstore", is_flag=True, help="Add a Sigstore keyless signature (needs network).")
@click.option("--sigstore-staging", is_flag=True, help="Use Sigstore's staging instance.")
@click.option("--pubkey", type=_FILE, default=None, help="The current signer's public key, if it is not one of your trusted keys.")
@click.option("--json", "as_json", is_flag=True, help="Print the result as JSON.")
def sign(
    file: Path,
    out: Path | None,
    key_path: Path | None,
    hmac_key_env: str | None,
    use_sigstore: bool,
    sigstore_staging: bool,
    pubkey: Path | None,
    as_json: bool,
) -> None:
    """Verify FILE, then add signatures (HMAC, Sigstore) or re-sign it with another key."""
    from kolmbuild.artifact import signing
    from kolmbuild.artifact.keys import load_private_key
    from kolmbuild.artifact.sign import sign_artifact

    if not file.is_file():
        raise UserInputError(f"{file}: no such file")
    if not (key_path or hmac_key_env or use_sigstore):
        raise UserInputError("nothing to do: give --key, --hmac-key-env VAR or --sigstore")
    hmac_key = _hmac_key(hmac_key_env) if hmac_key_env else None

    def keyless(payload: bytes) -> bytes:
        return signing.sigstore_sign(payload, staging=sigstore_staging)

    written = sign_artifact(
        file,
        out,
        signing_key=load_private_key(key_path) if key_path else None,
        hmac_key=hmac_key,
        sigstore=keyless if use_sigstore else None,
        log=lambda m: click.echo(f"kolmbuild: {m}", err=True),
        pubkey=_pubkey(pubkey),
    )
    members = sorted(n for n in _members(written.path) if n.startswith("signatures/"))
    if as_json:
        _echo_json({"manifest_cid": written.manifest_cid, "sha256": written.sha256, "signatures": members})
    else:
        click.echo(f"{written.path}: signed ({', '.join(m.rsplit('/', 1)[-1] for m in members)})")
        click.echo(f"manifest {written.manifest_cid}")


def _members(path: Path) -> list[str]:
    from kolmbuild.artifact.reader import load_artifact

    with load_artifact(path) as art:
        return art.member_names
