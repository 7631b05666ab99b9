"""Offline verification of a .kolm file: structure, every CID, the manifest, every signature."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from cryptography.hazmat.primitives.asymmetric import ec

from kolmbuild.artifact.format import MANIFEST, SIG_HMAC, SIG_MODEL, SIG_SIGSTORE, SIG_ZIP
from kolmbuild.artifact.keys import fingerprint, keys_dir, load_public_key, trusted_fingerprints
from kolmbuild.artifact.reader import Artifact, load_artifact
from kolmbuild.artifact.receipts import receipt_mismatches
from kolmbuild.artifact.signing import (
    SignatureInvalid,
    check_bundle,
    check_hmac,
    check_hmac_shape,
    check_zip_sig,
    sigstore_verify,
    statement,
)
from kolmbuild.artifact.zipio import Limits
from kolmbuild.errors import ArtifactError, UserInputError
from kolmbuild.hashing.cid import CID


@dataclass(frozen=True)
class Check:
    name: str
    ok: bool
    detail: str
    skipped: bool = False

    def to_json(self) -> dict[str, Any]:
        return {"name": self.name, "ok": self.ok, "skipped": self.skipped, "detail": self.detail}


@dataclass(frozen=True)
class VerifyReport:
    ok: bool
    checks: list[Check]
    manifest_cid: str | None = None
    signer: dict[str, Any] = field(default_factory=dict)

    def failures(self) -> list[Check]:
        return [c for c in self.checks if not c.ok]

    def failure_text(self) -> str:
        return "; ".join(f"{c.name}: {c.detail}" for c in self.failures())

    def to_json(self) -> dict[str, Any]:
        return {
            "ok": self.ok,
            "manifest_cid": self.manifest_cid,
            "signer": dict(sorted(self.signer.items())),
            "checks": [c.to_json() for c in self.checks],
        }


def _public_key(pubkey: Any) -> ec.EllipticCurvePublicKey | None:
    if pubkey is None:
        return None
    if isinstance(pubkey, ec.EllipticCurvePublicKey):
        return pubkey
    if isinstance(pubkey, ec.EllipticCurvePrivateKey):
        return pubkey.public_key()
    if isinstance(pubkey, str) and not pubkey.lstrip().startswith("-----BEGIN"):
        pubkey = Path(pubkey)
    return load_public_key(pubkey)


def _component_checks(art: Artifact) -> tuple[list[Check], dict[str, str]]:
    """One check per component (CRC, size and CID), and the sha256 of each member for the statement."""
    checks: list[Check] = []
    digests: dict[str, str] = {MANIFEST: hashlib.sha256(art.manifest_bytes).hexdigest()}
    for name, comp in art.components.items():
        h = hashlib.sha256()
        try:
            for block in art.zip.iter_member(comp.path):
                h.update(block)
        except ArtifactError as exc:
            checks.append(Check(f"component:{name}", False, exc.message))
            continue
        digests[comp.path] = h.hexdigest()
        got = str(CID("raw", h.digest()))
        if got == comp.cid:
            checks.append(Check(f"component:{name}", True, f"{comp.cid} ({comp.size} bytes)"))
        else:
            checks.append(Check(f"component:{name}", False, f"CID {got} differs from the manifest's {comp.cid}"))
    return checks, digests


def _signer_key(art: Artifact, given: ec.EllipticCurvePublicKey | None, trust_embedded: bool) -> tuple[ec.EllipticCurvePublicKey, Check]:
    """The key signatures are checked with, and whether it is one the caller trusts."""
    signer = art.manifest["signer"]
    declared = signer["fingerprint"]
    if given is not None:
        fp = fingerprint(given)
        if fp != declared:
            raise SignatureInvalid(f"signed by key {declared[:16]}…, not by the given key {fp[:16]}…")
        return given, Check("signer", True, f"key {declared[:16]}… is the key given")
    key = load_public_key(signer["public_key"])
    if fingerprint(key) != declared:
        raise SignatureInvalid("the manifest's public key does not match its fingerprint")
    known = trusted_fingerprints().get(declared)
    if known is not None:
        return key, Check("signer", True, f"key {declared[:16]}… is a trusted key ({known.name})")
    if trust_embedded:
        return key, Check("signer", True, f"key {declared[:16]}… taken from the manifest (integrity only)", skipped=True)
    return key, Check(
        "signer",
        False,
        f"signed by an unknown key {declared[:16]}…: pass the signer's public key (--pubkey) "
        f"or put it in {keys_dir()}",
    )


def verify_open(
    art: Artifact,
    *,
    pubkey: Any = None,
    hmac_key: bytes | str | None = None,
    trust_embedded_key: bool = False,
    trusted_root: Path | str | None = None,
    sigstore_identity: str | None = None,
    sigstore_issuer: str | None = None,
) -> VerifyReport:
    """Every check on an already structurally checked artifact.

    Signatures are checked with ``pubkey`` when given; otherwise with the key the manifest embeds,
    which must also be one of the user's trusted keys (``*.pub``/``*.pem`` in the keys dir) unless
    ``trust_embedded_key`` (integrity only: anyone can sign with a key of their own).
    """
    m = art.manifest
    checks: list[Check] = [
        Check("archive", True, f"canonical kolm/1 zip, {len(art.member_names)} entries"),
        Check("manifest", True, f"valid {m['format']} manifest {art.manifest_cid}"),
    ]
    comp_checks, digests = _component_checks(art)
    checks.extend(comp_checks)
    mismatches = receipt_mismatches(m)
    checks.append(Check("receipts", not mismatches,
                        "; ".join(mismatches) or f"components agree with the {len(m['receipts'])} receipt(s)"))
    expected_statement = statement(m["target"], digests)
    signer_info: dict[str, Any] = {"fingerprint": m["signer"]["fingerprint"]}

    # which key, and is it trusted ------------------------------------------------------------
    key: ec.EllipticCurvePublicKey | None = None
    try:
        key, trust = _signer_key(art, _public_key(pubkey), trust_embedded_key)
        checks.append(trust)
        signer_info["trusted"] = trust.ok and not trust.skipped
    except (SignatureInvalid, UserInputError) as exc:
        checks.append(Check("signer", False, str(exc)))
        signer_info["trusted"] = False

    # model.sig: OpenSSF model-signing bundle over every member's digest ----------------------
    if not art.has_member(SIG_MODEL):
        checks.append(Check("signature:model", False, f"unsigned: {SIG_MODEL} is missing"))
    elif key is None:
        checks.append(Check("signature:model", False, "not checked: no usable public key"))
    else:
        try:
            check_bundle(art.read_member(SIG_MODEL), expected_statement, key)
            checks.append(Check("signature:model", True, "valid model-signing v1.0 bundle over every member"))
        except (SignatureInvalid, ArtifactError) as exc:
            checks.append(Check("signature:model", False, str(exc)))

    # zip.json: the exact bytes of every other entry --------------------------------------------
    if not art.has_member(SIG_ZIP):
        checks.append(Check("signature:zip", False, f"unsigned: {SIG_ZIP} is missing"))
    elif key is None:
        checks.append(Check("signature:zip", False, "not checked: no usable public key"))
    else:
        try:
            length = art.zip.members[SIG_ZIP].offset
            check_zip_sig(art.read_member(SIG_ZIP), length, art.zip.prefix_digest, key)
            checks.append(Check("signature:zip", True, "valid over every byte of the other entries"))
        except (SignatureInvalid, ArtifactError) as exc:
            checks.append(Check("signature:zip", False, str(exc)))

    # HMAC --------------------------------------------------------------------------------------
    if isinstance(hmac_key, str):
        hmac_key = hmac_key.encode()
    if art.has_member(SIG_HMAC):
        try:
            data = art.read_member(SIG_HMAC)
            if hmac_key:
                check_hmac(data, hmac_key, art.manifest_cid)
                checks.append(Check("signature:hmac", True, "valid"))
            else:
                check_hmac_shape(data)
                checks.append(Check("signature:hmac", True, "not checked: no HMAC key given", skipped=True))
        except (SignatureInvalid, ArtifactError) as exc:
            checks.append(Check("signature:hmac", False, str(exc)))
    elif hmac_key:
        checks.append(Check("signature:hmac", False, f"an HMAC key was given but {SIG_HMAC} is missing"))

    # Sigstore keyless --------------------------------------------------------------------------
    if art.has_member(SIG_SIGSTORE):
        try:
            ident = sigstore_verify(
                art.read_member(SIG_SIGSTORE, 16 * 1024**2),
                expected_statement,
                trusted_root=trusted_root,
                identity=sigstore_identity,
                issuer=sigstore_issuer,
            )
            policy = "identity checked" if sigstore_identity and sigstore_issuer else "identity not pinned"
            checks.append(Check("signature:sigstore", True, f"valid, signed by {ident} ({policy})"))
            signer_info["sigstore_identity"] = ident
        except (SignatureInvalid, ArtifactError) as exc:
            checks.append(Check("signature:sigstore", False, str(exc)))
    elif sigstore_identity:
        checks.append(Check("signature:sigstore", False, f"an identity was required but {SIG_SIGSTORE} is missing"))

    return VerifyReport(all(c.ok for c in checks), checks, art.manifest_cid, signer_info)


def failed_report(exc: ArtifactError, path: Path | str) -> VerifyReport:
    """The report for a file that could not even be read as kolm/1 (malformed, unsafe)."""
    detail = exc.message
    prefix = f"{path}: "
    if detail.startswith(prefix):
        detail = detail[len(prefix) :]
    return VerifyReport(False, [Check("archive", False, detail)])


def verify_artifact(
    path: Path | str,
    *,
    pubkey: Any = None,
    hmac_key: bytes | str | None = None,
    limits: Limits | None = None,
    **kw: Any,
) -> VerifyReport:
    """Verify ``path`` offline. Malformed or unsafe files raise ArtifactError; failed checks give ok=False."""
    with load_artifact(Path(path), limits) as art:
        return verify_open(art, pubkey=pubkey, hmac_key=hmac_key, **kw)


def verify_file(path: Path | str, **kw: Any) -> VerifyReport:
    """Like :func:`verify_artifact`, but a malformed or unsafe file gives a failed report too."""
    try:
        return verify_artifact(path, **kw)
    except ArtifactError as exc:
        return failed_report(exc, path)


def open_artifact(
    path: Path | str,
    *,
    verify: bool = True,
    pubkey: Any = None,
    hmac_key: bytes | str | None = None,
    limits: Limits | None = None,
    **verify_kw: Any,
) -> Artifact:
    """Open (and by default fully verify) a .kolm file; raise ArtifactError naming what failed."""
    art = load_artifact(Path(path), limits)
    if verify:
        try:
            report = verify_open(art, pubkey=pubkey, hmac_key=hmac_key, **verify_kw)
        except BaseException:
            art.close()
            raise
        if not report.ok:
            art.close()
            raise ArtifactError(f"{path}: verification failed: {report.failure_text()}")
    return art
