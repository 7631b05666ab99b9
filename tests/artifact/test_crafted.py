"""Crafted manifests and signature files: every one is a located exit-2 message, never a traceback,
and nothing from an unverified file reaches the terminal as a control sequence."""

from __future__ import annotations

import base64
import json
import zipfile
from collections.abc import Callable
from pathlib import Path

import pytest
from click.testing import CliRunner
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec

from kolmbuild.artifact.zipio import write_zip
from kolmbuild.cli.main import cli
from kolmbuild.errors import ArtifactError, KolmError, printable
from kolmbuild.hashing import canonical_json

CONTROL = ("\x1b", "\x07", "\x08", "\r", "\u202e", "\x9b")


def repack(src: Path, dest: Path, edits: dict[str, bytes]) -> Path:
    """``src`` with members replaced or added, written as a canonical kolm/1 zip (signatures then fail)."""
    with zipfile.ZipFile(src) as z:
        members = {n: z.read(n) for n in z.namelist()}
    members.update(edits)
    write_zip(dest, sorted(members.items()))
    return dest


def _manifest_edit(raw: bytes, fn: Callable[[dict], None]) -> bytes:
    doc = json.loads(raw)
    fn(doc)
    return canonical_json(doc)


def _invoke(*args: str):
    r = CliRunner().invoke(cli, list(args))
    assert r.exception is None or isinstance(r.exception, SystemExit), repr(r.exception)
    return r


def _unsupported_curve_pem() -> str:
    key = ec.generate_private_key(ec.SECP256R1()).public_key()
    der = key.public_bytes(serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo)
    der = der.replace(bytes.fromhex("2a8648ce3d030107"), bytes.fromhex("2a8648ce3d030163"))  # P-256's OID → …1.99
    return "-----BEGIN PUBLIC KEY-----\n" + base64.encodebytes(der).decode() + "-----END PUBLIC KEY-----\n"


MANIFEST_CASES: dict[str, tuple[Callable[[bytes], bytes], str]] = {
    "nan": (lambda raw: raw.replace(b'"K":0.9', b'"K":NaN'), "manifest.json: not JSON: NaN is not a JSON number"),
    "float-overflow": (lambda raw: raw.replace(b'"K":0.9', b'"K":1e999'), "manifest.json: number 1e999 is out of range"),
    "int-over-2^53": (lambda raw: raw.replace(b'"K":0.9', b'"K":' + b"9" * 30), "is out of range"),
    "int-5000-digits": (lambda raw: raw.replace(b'"K":0.9', b'"K":' + b"9" * 5000), "is out of range"),
    "nesting-900": (lambda raw: raw.replace(b'"K":0.9', b'"K":' + b"[" * 900 + b"]" * 900), "nested deeper than 100"),
    "nesting-50000": (lambda raw: raw.replace(b'"K":0.9', b'"K":' + b"[" * 50000 + b"]" * 50000), "nested deeper than 100"),
    "lone-surrogate": (lambda raw: raw.replace(b'"target":"phi"', b'"target":"\\ud800"'), "lone surrogate \\ud800"),
    "duplicate-key": (lambda raw: raw.replace(b'"target":"phi"', b'"target":"phi","target":"phi"'), "duplicate key 'target'"),
    "not-an-object": (lambda raw: b"[1]", "manifest.json: expected a JSON object"),
    "unsupported-curve": (
        lambda raw: _manifest_edit(raw, lambda d: d["signer"].update(public_key=_unsupported_curve_pem())),
        "unsupported public key",
    ),
}


@pytest.mark.parametrize("case", sorted(MANIFEST_CASES))
def test_a_crafted_manifest_is_a_located_exit_2(case: str, sample, tmp_path: Path) -> None:
    edit, message = MANIFEST_CASES[case]
    raw = zipfile.ZipFile(sample.path).read("manifest.json")
    path = repack(sample.path, tmp_path / f"{case}.kolm", {"manifest.json": edit(raw)})
    verbs = [["verify"], ["verify", "--json"], ["run"]]
    if case != "unsupported-curve":  # inspect does not load the signer's key: the other cases it must refuse
        verbs += [["inspect"], ["inspect", "--json"]]
    for verb in verbs:
        r = _invoke(*verb, str(path), *(["some input"] if verb == ["run"] else []))
        assert r.exit_code == 2, (verb, r.output)
        assert message in r.output, (verb, r.output)
        assert "Traceback" not in r.output


SIGNATURE_CASES: dict[str, tuple[str, bytes, str]] = {
    "model-nesting": ("signatures/model.sig", b"[" * 5000 + b"]" * 5000, "signature:model: model.sig: nested deeper"),
    "model-nan": ("signatures/model.sig", b'{"mediaType":NaN}', "model.sig: not JSON: NaN"),
    "zip-int-5000-digits": (
        "signatures/zip.json",
        b'{"algorithm":"ecdsa-p256-sha256","key":"a","length":' + b"9" * 5000 + b',"sha256":"x","sig":"y"}',
        "signature:zip: zip.json: integer 9999",
    ),
    "zip-lone-surrogate": (
        "signatures/zip.json",
        b'{"algorithm":"ecdsa-p256-sha256","key":"\\ud800","length":1,"sha256":"x","sig":"y"}',
        "zip.json: lone surrogate",
    ),
    "hmac-nesting": ("signatures/hmac.json", b"[" * 5000 + b"]" * 5000, "signature:hmac: hmac.json: nested deeper"),
    "hmac-lone-surrogate": (
        "signatures/hmac.json",
        b'{"algorithm":"hmac-sha256","key_id":"\\udc00","manifest":"m","mac":"x"}',
        "hmac.json: lone surrogate \\udc00",
    ),
    "sigstore-nesting": ("signatures/sigstore.sig", b'{"a":' * 5000 + b"1" + b"}" * 5000, "signature:sigstore: sigstore.sig: nested"),
}


@pytest.mark.parametrize("case", sorted(SIGNATURE_CASES))
def test_a_crafted_signature_file_fails_verification_with_a_message(case: str, sample, tmp_path: Path) -> None:
    member, data, message = SIGNATURE_CASES[case]
    path = repack(sample.path, tmp_path / f"{case}.kolm", {member: data})
    r = _invoke("verify", str(path))
    assert r.exit_code == 2 and message in r.output, r.output
    r = _invoke("verify", "--json", str(path))
    assert r.exit_code == 2
    report = json.loads(r.stdout)
    assert report["ok"] is False
    assert any(message.split(": ", 1)[-1] in c["detail"] for c in report["checks"]), report


def test_inspect_shows_control_characters_of_an_unverified_manifest_as_escapes(sample, tmp_path: Path) -> None:
    hostile = "phi\x1b[2J\x1b]0;pwned\x07\r\x08\u202eevil\x9b31m"
    raw = zipfile.ZipFile(sample.path).read("manifest.json")
    edited = _manifest_edit(raw, lambda d: (d.update(target=hostile, version="1\x1b[31m"),
                                            d["compute"].update(device="cpu\x1b[5m"),
                                            d["gates"].update({"K\x07": 0.5})))
    path = repack(sample.path, tmp_path / "ctrl.kolm", {"manifest.json": edited})
    r = _invoke("inspect", str(path))
    assert r.exit_code == 0, r.output
    assert not any(c in r.output for c in CONTROL), repr(r.output)
    assert "phi\\x1b[2J\\x1b]0;pwned\\x07\\x0d\\x08\\u202eevil\\x9b31m" in r.output
    assert "device=cpu\\x1b[5m" in r.output and "K\\x07=" in r.output
    r = _invoke("verify", str(path))  # the signature no longer matches: and its report stays inert too
    assert r.exit_code == 2 and not any(c in r.output for c in CONTROL)


def test_error_messages_never_carry_control_sequences() -> None:
    err = ArtifactError("x.kolm: entry 'a\x1b[2Jb' is odd", hint="see \x07")
    assert str(err) == "x.kolm: entry 'a\\x1b[2Jb' is odd\n  hint: see \\x07"
    assert printable("tab\tand\nnewline stay; é 中 ✓ too") == "tab\tand\nnewline stay; é 中 ✓ too"
    assert printable("\u2028\U000e0041\ud800") == "\\u2028\\U000e0041\\ud800"
    assert isinstance(err, KolmError)
