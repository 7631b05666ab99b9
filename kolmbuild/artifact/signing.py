"""Signatures over a kolm/1 artifact.

* ``signatures/model.sig``: an OpenSSF model-signing v1.0 signature. An in-toto Statement whose
  predicate lists every non-signature member (``manifest.json``, ``components/*``) with its sha256,
  wrapped in a DSSE envelope signed with EC P-256 / SHA-256 (deterministic, RFC 6979), inside a
  Sigstore bundle (v0.3 JSON). ``model_signing verify key`` accepts it on the extracted members.
* ``signatures/hmac.json``: HMAC-SHA256 over the manifest CID (the manifest names every component's
  CID, so it covers them all).
* ``signatures/sigstore.sig``: optional Sigstore keyless bundle over the same statement.
* ``signatures/zip.json``: the last entry. EC P-256 over the exact bytes of the archive before it
  (every other entry, headers and compressed data included). Member digests say nothing about how
  a member is encoded, and deflate has more than one encoding of the same bytes; this signature
  makes any changed byte of the file fail, not only the bytes that change content.

Every signature file is canonical JSON: any byte that differs from its canonical form is tampering.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import os
from collections.abc import Callable, Mapping
from pathlib import PurePosixPath
from typing import Any

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec

from kolmbuild.artifact import dsse
from kolmbuild.artifact.format import SIGNATURES_DIR, HmacRecord, ZipSigRecord
from kolmbuild.artifact.keys import fingerprint, hmac_key_id
from kolmbuild.data import strictjson
from kolmbuild.errors import KolmError
from kolmbuild.hashing import canonical_json

STATEMENT_TYPE = "https://in-toto.io/Statement/v1"
PREDICATE_TYPE = "https://model_signing/signature/v1.0"
PAYLOAD_TYPE = "application/vnd.in-toto+json"
BUNDLE_MEDIA_TYPE = "application/vnd.dev.sigstore.bundle.v0.3+json"


class SignatureInvalid(Exception):
    """A signature does not hold (verification failure, not a malformed archive)."""


# ------------------------------------------------------------------------------------ statement


def statement(subject: str, digests: Mapping[str, str]) -> bytes:
    """The in-toto statement (canonical JSON) over ``digests``: member name -> sha256 hex.

    Layout as model-signing v1.0 writes it: resources sorted by path, the subject digest is sha256
    over the concatenated raw resource digests in that order; the serialization method ``files``
    ignoring ``signatures`` so the extracted folder verifies with ``model_signing`` as is.
    """
    names = sorted(digests, key=lambda n: PurePosixPath(n).parts)
    root = hashlib.sha256(b"".join(bytes.fromhex(digests[n]) for n in names)).hexdigest()
    doc = {
        "_type": STATEMENT_TYPE,
        "subject": [{"name": subject, "digest": {"sha256": root}}],
        "predicateType": PREDICATE_TYPE,
        "predicate": {
            "serialization": {
                "method": "files",
                "hash_type": "sha256",
                "allow_symlinks": False,
                "ignore_paths": [SIGNATURES_DIR.rstrip("/")],
            },
            "resources": [{"name": n, "algorithm": "sha256", "digest": digests[n]} for n in names],
        },
    }
    return canonical_json(doc)


def pae(payload: bytes) -> bytes:
    """DSSE v1 pre-authentication encoding of a model-signing payload."""
    return dsse.pae(PAYLOAD_TYPE, payload)


def _unb64(text: Any, what: str) -> bytes:
    return dsse.unb64(text, what, SignatureInvalid)


def _parse_canonical(data: bytes, what: str) -> dict[str, Any]:
    try:
        doc = strictjson.loads(data)
    except strictjson.JSONRefused as exc:
        raise SignatureInvalid(f"{what}: {exc}") from None
    if not isinstance(doc, dict):
        raise SignatureInvalid(f"{what} is not a JSON object")
    if canonical_json(doc) != data:
        raise SignatureInvalid(f"{what} is not in canonical form (altered)")
    return doc


# ------------------------------------------------------------------------------- ECDSA bundle


def make_bundle(payload: bytes, private_key: ec.EllipticCurvePrivateKey) -> bytes:
    """A Sigstore bundle (canonical JSON) with a DSSE envelope over ``payload``, signed deterministically."""
    sig = private_key.sign(pae(payload), ec.ECDSA(hashes.SHA256(), deterministic_signing=True))
    bundle = {
        "mediaType": BUNDLE_MEDIA_TYPE,
        "verificationMaterial": {"publicKey": {"hint": fingerprint(private_key.public_key())}, "tlogEntries": []},
        "dsseEnvelope": {
            "payload": dsse.b64(payload),
            "payloadType": PAYLOAD_TYPE,
            "signatures": [{"sig": dsse.b64(sig), "keyid": ""}],
        },
    }
    return canonical_json(bundle)


def check_bundle(data: bytes, expected_payload: bytes, public_key: ec.EllipticCurvePublicKey) -> str:
    """Verify a key bundle against ``public_key`` and the expected statement; return the key hint."""
    doc = _parse_canonical(data, "model.sig")
    if set(doc) != {"mediaType", "verificationMaterial", "dsseEnvelope"}:
        raise SignatureInvalid("model.sig has unexpected or missing fields")
    if doc["mediaType"] != BUNDLE_MEDIA_TYPE:
        raise SignatureInvalid(f"model.sig: unexpected media type {doc['mediaType']!r}")
    vm = doc["verificationMaterial"]
    if not isinstance(vm, dict) or set(vm) != {"publicKey", "tlogEntries"} or vm["tlogEntries"] != []:
        raise SignatureInvalid("model.sig: unexpected verification material")
    pk = vm["publicKey"]
    if not isinstance(pk, dict) or set(pk) != {"hint"}:
        raise SignatureInvalid("model.sig: unexpected public key identifier")
    want = fingerprint(public_key)
    if pk["hint"] != want:
        raise SignatureInvalid(f"model.sig was made by key {str(pk['hint'])[:16]}…, not by {want[:16]}…")
    env = doc["dsseEnvelope"]
    if not isinstance(env, dict) or set(env) != {"payload", "payloadType", "signatures"}:
        raise SignatureInvalid("model.sig: malformed DSSE envelope")
    if env["payloadType"] != PAYLOAD_TYPE:
        raise SignatureInvalid(f"model.sig: unexpected payload type {env['payloadType']!r}")
    payload = _unb64(env["payload"], "model.sig payload")
    sigs = env["signatures"]
    if not isinstance(sigs, list) or len(sigs) != 1 or not isinstance(sigs[0], dict):
        raise SignatureInvalid("model.sig: expected exactly one signature")
    if set(sigs[0]) != {"sig", "keyid"} or sigs[0]["keyid"] != "":
        raise SignatureInvalid("model.sig: malformed signature entry")
    sig = _unb64(sigs[0]["sig"], "model.sig signature")
    try:
        public_key.verify(sig, pae(payload), ec.ECDSA(hashes.SHA256()))
    except InvalidSignature as exc:
        raise SignatureInvalid("model.sig: the ECDSA signature does not match") from exc
    if payload != expected_payload:
        raise SignatureInvalid("model.sig: the signed statement does not match the archive's members")
    return want


# ----------------------------------------------------------------------------- zip signature


def _zip_message(key_fp: str, length: int, sha256: str) -> bytes:
    return canonical_json({"algorithm": "ecdsa-p256-sha256", "key": key_fp, "length": length, "sha256": sha256})


def make_zip_sig(length: int, sha256: str, private_key: ec.EllipticCurvePrivateKey) -> bytes:
    """signatures/zip.json over the archive's first ``length`` bytes (digest ``sha256``)."""
    fp = fingerprint(private_key.public_key())
    sig = private_key.sign(_zip_message(fp, length, sha256), ec.ECDSA(hashes.SHA256(), deterministic_signing=True))
    rec = ZipSigRecord(algorithm="ecdsa-p256-sha256", key=fp, length=length, sha256=sha256, sig=dsse.b64(sig))
    return canonical_json(rec.model_dump())


def check_zip_sig(
    data: bytes, length: int, digest_of: Callable[[int], str], public_key: ec.EllipticCurvePublicKey
) -> None:
    """Check signatures/zip.json: it covers exactly the ``length`` bytes before it, signed by ``public_key``."""
    doc = _parse_canonical(data, "zip.json")
    try:
        rec = ZipSigRecord.model_validate(doc)
    except ValueError as exc:
        raise SignatureInvalid("zip.json: malformed record") from exc
    want = fingerprint(public_key)
    if rec.key != want:
        raise SignatureInvalid(f"zip.json was made by key {rec.key[:16]}…, not by {want[:16]}…")
    if rec.length != length:
        raise SignatureInvalid(f"zip.json covers {rec.length} bytes but {length} precede it")
    sig = _unb64(rec.sig, "zip.json signature")
    try:
        public_key.verify(sig, _zip_message(rec.key, rec.length, rec.sha256), ec.ECDSA(hashes.SHA256()))
    except InvalidSignature as exc:
        raise SignatureInvalid("zip.json: the ECDSA signature does not match") from exc
    if digest_of(length) != rec.sha256:
        raise SignatureInvalid("zip.json: the archive's bytes differ from the signed ones")


# ------------------------------------------------------------------------------------------ HMAC


def make_hmac(key: bytes, manifest_cid: str) -> bytes:
    mac = hmac.new(key, manifest_cid.encode(), hashlib.sha256).hexdigest()
    rec = HmacRecord(algorithm="hmac-sha256", key_id=hmac_key_id(key), manifest=manifest_cid, mac=mac)
    return canonical_json(rec.model_dump())


def check_hmac(data: bytes, key: bytes, manifest_cid: str) -> None:
    doc = _parse_canonical(data, "hmac.json")
    try:
        rec = HmacRecord.model_validate(doc)
    except ValueError as exc:
        raise SignatureInvalid("hmac.json: malformed record") from exc
    if rec.key_id != hmac_key_id(key):
        raise SignatureInvalid("hmac.json was made with a different HMAC key")
    if rec.manifest != manifest_cid:
        raise SignatureInvalid("hmac.json covers a different manifest")
    want = hmac.new(key, manifest_cid.encode(), hashlib.sha256).hexdigest()
    if not hmac.compare_digest(rec.mac, want):
        raise SignatureInvalid("hmac.json: the MAC does not match")


def check_hmac_shape(data: bytes) -> None:
    """Without the key, at least check that the record is canonical and well formed."""
    doc = _parse_canonical(data, "hmac.json")
    try:
        HmacRecord.model_validate(doc)
    except ValueError as exc:
        raise SignatureInvalid("hmac.json: malformed record") from exc


# --------------------------------------------------------------------------------- sigstore


def sigstore_sign(payload: bytes, *, identity_token: str | None = None, staging: bool = False) -> bytes:
    """Sign ``payload`` keyless with Sigstore (needs network and an OIDC identity token)."""
    try:
        from sigstore.dsse import Statement
        from sigstore.models import ClientTrustConfig
        from sigstore.oidc import IdentityToken, Issuer
        from sigstore.sign import SigningContext
    except ImportError as exc:  # pragma: no cover - sigstore is a declared dependency
        raise KolmError("sigstore signing needs the 'sigstore' package") from exc
    token_text = identity_token or os.environ.get("SIGSTORE_ID_TOKEN")
    try:
        config = ClientTrustConfig.staging() if staging else ClientTrustConfig.production()
        ctx = SigningContext.from_trust_config(config)
        if token_text:
            token = IdentityToken(token_text)
        else:
            issuer = Issuer(config.signing_config.get_oidc_url())
            token = issuer.identity_token()
        with ctx.signer(token) as signer:
            bundle = signer.sign_dsse(Statement(payload))
    except KolmError:
        raise
    except Exception as exc:
        raise KolmError(
            f"sigstore signing failed: {exc}",
            hint="keyless signing needs network access and an OIDC identity (set SIGSTORE_ID_TOKEN in CI)",
        ) from exc
    return canonical_json(json.loads(bundle.to_json()))


def sigstore_verify(
    data: bytes,
    expected_payload: bytes,
    *,
    trusted_root: os.PathLike[str] | str | None = None,
    identity: str | None = None,
    issuer: str | None = None,
) -> str:
    """Verify a keyless bundle offline against a trusted root; return the signer identity it names."""
    try:
        from sigstore.models import Bundle, ClientTrustConfig, TrustedRoot
        from sigstore.verify import Verifier, policy
    except ImportError as exc:  # pragma: no cover
        raise SignatureInvalid("verifying sigstore.sig needs the 'sigstore' package") from exc
    _parse_canonical(data, "sigstore.sig")
    try:
        bundle = Bundle.from_json(data)
    except Exception as exc:
        raise SignatureInvalid(f"sigstore.sig: not a Sigstore bundle: {exc}") from exc
    try:
        if trusted_root is not None:
            root = TrustedRoot.from_file(str(trusted_root))
        else:
            root = ClientTrustConfig.production(offline=True).trusted_root
        verifier = Verifier(trusted_root=root)
    except Exception as exc:
        raise SignatureInvalid(f"sigstore.sig: no usable trusted root offline: {exc}") from exc
    if identity and issuer:
        pol: Any = policy.Identity(identity=identity, issuer=issuer)
    else:
        pol = policy.UnsafeNoOp()
    try:
        payload_type, payload = verifier.verify_dsse(bundle, pol)
    except Exception as exc:
        raise SignatureInvalid(f"sigstore.sig does not verify: {exc}") from exc
    if payload_type != PAYLOAD_TYPE or payload != expected_payload:
        raise SignatureInvalid("sigstore.sig: the signed statement does not match the archive's members")
    try:
        from cryptography.x509 import SubjectAlternativeName

        cert = bundle.signing_certificate
        san = cert.extensions.get_extension_for_class(SubjectAlternativeName).value
        names = [str(v.value) for v in san]
        return names[0] if names else "unknown identity"
    except Exception:
        return "unknown identity"

