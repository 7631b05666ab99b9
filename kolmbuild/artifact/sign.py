"""Add or replace signatures on an existing .kolm file (``kolmbuild sign``).

The file is verified first (so nothing tampered is ever re-signed), then rewritten with the same
components and, unless the signing key changes, the same manifest:

* same key: ``model.sig`` and ``zip.json`` are made again (byte-identical), ``--hmac`` adds or
  replaces ``hmac.json``, ``--sigstore`` adds ``sigstore.sig``; other signatures are kept;
* another key: the manifest's ``signer`` changes, so its CID changes; signatures over the old
  manifest (HMAC, Sigstore) no longer apply and are dropped unless made again.
"""

from __future__ import annotations

import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

from kolmbuild.artifact.format import SIG_HMAC, SIG_SIGSTORE
from kolmbuild.artifact.keys import SigningKey, resolve_signing_key
from kolmbuild.artifact.signing import make_hmac
from kolmbuild.artifact.verify import open_artifact
from kolmbuild.artifact.writer import WrittenArtifact, seal, signer_block
from kolmbuild.errors import UserInputError
from kolmbuild.hashing import cid_of_json

MAX_SIGSTORE = 16 * 1024**2


def sign_artifact(
    src: Path,
    dest: Path | None = None,
    *,
    signing_key: SigningKey | None = None,
    hmac_key: bytes | None = None,
    sigstore: Callable[[bytes], bytes] | None = None,
    log: Callable[[str], None] | None = None,
    **verify_kw: Any,
) -> WrittenArtifact:
    """Verify ``src`` (``verify_kw`` as for ``open_artifact``) and write it signed to ``dest`` (default: in place)."""
    src = Path(src)
    dest = Path(dest) if dest is not None else src
    with open_artifact(src, verify=True, **verify_kw) as art:
        key = signing_key or resolve_signing_key(log)
        doc = dict(art.manifest)
        same_signer = doc["signer"]["fingerprint"] == key.fingerprint
        if not same_signer and signing_key is None:  # never swap the signer unless asked to
            raise UserInputError(
                f"{src}: signed by key {doc['signer']['fingerprint'][:16]}…, not by your key {key.fingerprint[:16]}…: "
                "adding a signature re-signs the file; pass --key to re-sign it with a key of yours"
            )
        if not same_signer:
            doc["signer"] = signer_block(key)
            dropped = [n.rsplit("/", 1)[-1] for n in (SIG_HMAC, SIG_SIGSTORE) if art.has_member(n)]
            if log and dropped:
                log(f"the signer changes, so {', '.join(dropped)} (over the old manifest) no longer apply")
        if hmac_key:
            hmac_record: bytes | None = make_hmac(hmac_key, str(cid_of_json(doc)))
        elif same_signer and art.has_member(SIG_HMAC):
            hmac_record = art.read_member(SIG_HMAC)
        else:
            hmac_record = None
        bundle: bytes | Callable[[bytes], bytes] | None = sigstore
        if bundle is None and same_signer and art.has_member(SIG_SIGSTORE):
            bundle = art.read_member(SIG_SIGSTORE, MAX_SIGSTORE)
        try:
            dest.parent.mkdir(parents=True, exist_ok=True)
        except OSError as exc:  # a file where the folder should be, or no permission
            raise UserInputError(f"{dest}: cannot write the signed file there: {exc.strerror or exc}") from exc
        with tempfile.TemporaryDirectory(prefix=".kolm-sign-", dir=dest.parent) as tmp:
            files = {name: art.extract(name, Path(tmp)) for name in art.components}
            return seal(dest, doc, files, key, hmac_record=hmac_record, sigstore_bundle=bundle)
