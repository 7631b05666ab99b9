"""Signed envelopes for what a remote cache holds besides raw objects, and the keys trusted to sign them.

A run record (and a shared teacher reply, an embedding, a checkpoint index) is stored as a DSSE
envelope (https://github.com/secure-systems-lab/dsse, the format in-toto and Sigstore use): the
payload, its type, and ECDSA P-256 / SHA-256 signatures over the DSSE pre-authentication encoding,
each named by the sha256 fingerprint of the signer's PEM public key (the same fingerprint
``kolmbuild verify`` prints for an artifact's signer). It is written as canonical JSON.

Trust is like Nix's ``trusted-public-keys``: :func:`open_envelope` returns the payload only when
one of its signatures verifies against a key in :class:`TrustedKeys` (the keys folder that
``kolmbuild verify`` trusts, plus ``cache.trust``); a missing, stripped, altered or unknown
signature is :class:`Untrusted`, and the caller skips the entry.

Written here rather than with a DSSE library: the envelope is a dozen lines over ``cryptography``
(already a dependency), and the only Python DSSE implementations ship inside larger frameworks
(securesystemslib, sigstore) whose key types we would have to adapt to anyway.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec

from kolmbuild.artifact import dsse
from kolmbuild.artifact.keys import SigningKey, fingerprint, load_public_key, trusted_fingerprints
from kolmbuild.errors import UserInputError
from kolmbuild.hashing import canonical_json
from kolmbuild.remote.records import CHECKPOINTS_TYPE, EMBEDDING_TYPE, RUN_TYPE, TEACHER_TYPE

__all__ = ["CHECKPOINTS_TYPE", "EMBEDDING_TYPE", "RUN_TYPE", "TEACHER_TYPE", "TrustedKeys", "Untrusted",
           "open_envelope", "seal"]

_ECDSA = ec.ECDSA(hashes.SHA256())


class Untrusted(Exception):
    """The envelope is malformed, or no signature on it verifies against a trusted key."""


def _unb64(text: object, what: str) -> bytes:
    return dsse.unb64(text, what, Untrusted)


def seal(payload: bytes, payload_type: str, key: SigningKey) -> bytes:
    """A canonical-JSON DSSE envelope over ``payload`` signed by ``key`` (deterministic, RFC 6979)."""
    sig = key.private_key.sign(dsse.pae(payload_type, payload), ec.ECDSA(hashes.SHA256(), deterministic_signing=True))
    return canonical_json({
        "payload": dsse.b64(payload),
        "payloadType": payload_type,
        "signatures": [{"keyid": key.fingerprint, "sig": dsse.b64(sig)}],
    })


@dataclass(frozen=True)
class TrustedKeys:
    """P-256 public keys by fingerprint: the signers whose entries a remote cache may supply."""

    keys: Mapping[str, ec.EllipticCurvePublicKey]

    @classmethod
    def load(cls, extra: Iterable[Path] = (), own: SigningKey | None = None) -> TrustedKeys:
        """The keys folder ``kolmbuild verify`` trusts (``*.pub``, ``*.pem``), the files in ``extra``
        (``cache.trust``; a file that is not a P-256 public key is an error naming it), and ``own``."""
        found: dict[str, ec.EllipticCurvePublicKey] = {}
        for path in trusted_fingerprints().values():
            key = load_public_key(path)
            found[fingerprint(key)] = key
        for path in extra:
            try:
                key = load_public_key(Path(path))
            except UserInputError as exc:
                raise UserInputError(f"cache.trust: {exc.message}") from exc
            found[fingerprint(key)] = key
        if own is not None:
            found[own.fingerprint] = own.public_key
        return cls(found)

    def __contains__(self, fp: object) -> bool:
        return fp in self.keys


def open_envelope(data: bytes, payload_type: str, trusted: TrustedKeys) -> tuple[bytes, str]:
    """The payload of a DSSE envelope and the fingerprint of the trusted key that signed it.

    Raises :class:`Untrusted` when the envelope is malformed, is of another type, or carries no
    signature that verifies against a trusted key (stripped, altered, or by an unknown key).
    """
    try:
        doc = json.loads(data)
    except (UnicodeDecodeError, ValueError) as exc:
        raise Untrusted("not a JSON envelope") from exc
    if not isinstance(doc, dict) or set(doc) != {"payload", "payloadType", "signatures"}:
        raise Untrusted("not a DSSE envelope")
    if doc["payloadType"] != payload_type:
        raise Untrusted(f"payload type {doc['payloadType']!r}, expected {payload_type!r}")
    payload = _unb64(doc["payload"], "the payload")
    sigs = doc["signatures"]
    if not isinstance(sigs, list) or not sigs:
        raise Untrusted("it carries no signature")
    message = dsse.pae(payload_type, payload)
    signers: list[str] = []
    for entry in sigs:
        if not isinstance(entry, dict) or not isinstance(entry.get("keyid"), str):
            raise Untrusted("a signature entry is malformed")
        fp = entry["keyid"]
        signers.append(fp)
        key = trusted.keys.get(fp)
        if key is None:
            continue
        try:
            key.verify(_unb64(entry.get("sig"), "a signature"), message, _ECDSA)
        except InvalidSignature:
            raise Untrusted(f"the signature by trusted key {fp[:16]}… does not match (altered)") from None
        return payload, fp
    names = ", ".join(f"{fp[:16]}…" for fp in signers)
    raise Untrusted(f"signed by {names}, which is not a trusted key")
