"""Sigstore verification on a real bundle from Sigstore's production instance, offline, with the
trust root the ``sigstore`` package ships — through kolmbuild's own ``signatures/sigstore.sig`` path.

The bundle and its artifact are public test data (see data/sigstore-conformance/README.md). No
socket may open during verification: the trust root, Fulcio chain, Rekor key and CT log keys all
come from the installed package.
"""

from __future__ import annotations

import base64
import hashlib
import json
import socket
from pathlib import Path

import pytest
from click.testing import CliRunner

from kolmbuild.artifact.sign import sign_artifact
from kolmbuild.artifact.signing import SignatureInvalid, sigstore_verify
from kolmbuild.cli.main import cli
from kolmbuild.hashing import canonical_json

DATA = Path(__file__).parent / "data" / "sigstore-conformance"
IDENTITY = ("https://github.com/sigstore-conformance/extremely-dangerous-public-oidc-beacon/"
            ".github/workflows/extremely-dangerous-oidc-beacon.yml@refs/heads/main")
ISSUER = "https://token.actions.githubusercontent.com"


@pytest.fixture(autouse=True)
def _offline(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """Any connection attempt fails the test; sigstore's TUF cache goes to a fresh folder."""
    def refuse(*args: object, **kw: object) -> None:
        raise AssertionError(f"network access during offline verification: {args}")

    monkeypatch.setattr(socket.socket, "connect", refuse)
    monkeypatch.setattr(socket, "create_connection", refuse)
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg-cache"))
    monkeypatch.setenv("XDG_DATA_HOME", str(tmp_path / "xdg-data"))


def _bundle() -> dict:
    return json.loads((DATA / "bundle.sigstore.json").read_bytes())


def _stored(bundle: dict) -> bytes:
    """The bundle as kolmbuild stores it in signatures/sigstore.sig: canonical JSON."""
    return canonical_json(bundle)


def _payload(bundle: dict) -> bytes:
    return base64.b64decode(bundle["dsseEnvelope"]["payload"])


def test_the_real_bundle_verifies_offline_and_binds_its_artifact() -> None:
    bundle = _bundle()
    payload = _payload(bundle)
    signer = sigstore_verify(_stored(bundle), payload, identity=IDENTITY, issuer=ISSUER)
    assert signer == IDENTITY
    statement = json.loads(payload)
    assert statement["_type"] == "https://in-toto.io/Statement/v1"
    [subject] = statement["subject"]
    assert subject["name"] == "a.txt"
    assert subject["digest"]["sha256"] == hashlib.sha256((DATA / "a.txt").read_bytes()).hexdigest()


def test_another_identity_or_issuer_is_refused() -> None:
    bundle = _bundle()
    with pytest.raises(SignatureInvalid, match="does not verify"):
        sigstore_verify(_stored(bundle), _payload(bundle), identity="https://github.com/someone/else", issuer=ISSUER)
    with pytest.raises(SignatureInvalid, match="does not verify"):
        sigstore_verify(_stored(bundle), _payload(bundle), identity=IDENTITY, issuer="https://accounts.google.com")


@pytest.mark.parametrize("part", ["signature", "payload", "inclusion-proof", "certificate"])
def test_a_tampered_bundle_is_refused(part: str) -> None:
    bundle = _bundle()
    payload = _payload(bundle)
    entry = bundle["verificationMaterial"]["tlogEntries"][0]
    if part == "signature":
        sig = bytearray(base64.b64decode(bundle["dsseEnvelope"]["signatures"][0]["sig"]))
        sig[-1] ^= 1
        bundle["dsseEnvelope"]["signatures"][0]["sig"] = base64.b64encode(bytes(sig)).decode()
    elif part == "payload":
        payload = payload.replace(b'"a.txt"', b'"b.txt"')
        bundle["dsseEnvelope"]["payload"] = base64.b64encode(payload).decode()
    elif part == "inclusion-proof":
        entry["inclusionProof"]["hashes"][0] = base64.b64encode(bytes(32)).decode()
    else:
        cert = bytearray(base64.b64decode(bundle["verificationMaterial"]["certificate"]["rawBytes"]))
        cert[-5] ^= 1
        bundle["verificationMaterial"]["certificate"]["rawBytes"] = base64.b64encode(bytes(cert)).decode()
    with pytest.raises(SignatureInvalid):
        sigstore_verify(_stored(bundle), payload, identity=IDENTITY, issuer=ISSUER)


def test_a_valid_bundle_over_another_statement_is_refused() -> None:
    bundle = _bundle()
    with pytest.raises(SignatureInvalid, match="the signed statement does not match the archive's members"):
        sigstore_verify(_stored(bundle), b'{"_type":"https://in-toto.io/Statement/v1","subject":[]}',
                        identity=IDENTITY, issuer=ISSUER)


def test_kolmbuild_verify_runs_the_real_verifier_on_an_artifacts_sigstore_sig(sample, tmp_path: Path) -> None:
    """A genuine bundle stored in an artifact: the signature verifies cryptographically against the
    production root, and verify refuses it because it signs someone else's statement."""
    real = _stored(_bundle())
    signed = sign_artifact(sample.path, tmp_path / "with-sigstore.kolm", sigstore=lambda statement: real)
    r = CliRunner().invoke(cli, ["verify", "--json", "--sigstore-identity", IDENTITY, "--sigstore-issuer", ISSUER,
                                 str(signed.path)])
    assert r.exit_code == 2, r.output
    checks = {c["name"]: c for c in json.loads(r.stdout)["checks"]}
    assert checks["signature:model"]["ok"] and checks["signature:zip"]["ok"]
    assert checks["signature:sigstore"]["ok"] is False
    assert checks["signature:sigstore"]["detail"] == "sigstore.sig: the signed statement does not match the archive's members"
