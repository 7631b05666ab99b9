"""Verification: a fresh artifact passes; any flipped byte, a swapped component, a wrong key fail."""

from __future__ import annotations

import random
import shutil
import zipfile
from pathlib import Path

import pytest
from cryptography.hazmat.primitives.asymmetric import ec

from kolmbuild.artifact import open_artifact, verify_artifact
from kolmbuild.artifact.format import SIG_ZIP
from kolmbuild.artifact.keys import SigningKey, keys_dir, public_pem
from kolmbuild.artifact.verify import verify_file
from kolmbuild.artifact.zipio import ZipReader, write_zip
from kolmbuild.errors import ArtifactError

from .conftest import fixed_key, sample_components, write_sample


def _names(report) -> dict[str, bool]:
    return {c.name: c.ok for c in report.checks}


def test_a_fresh_artifact_verifies(sample) -> None:
    report = verify_artifact(sample.path)
    assert report.ok, report.failure_text()
    assert [c.name for c in report.checks] == [
        "archive", "manifest",
        "component:adapter_gguf", "component:eval", "component:heldout", "component:index",
        "component:recipes", "component:verifier", "receipts",
        "signer", "signature:model", "signature:zip",
    ]  # fmt: skip
    assert report.manifest_cid == sample.manifest_cid
    assert report.signer == {"fingerprint": fixed_key().fingerprint, "trusted": True}


def _regions(path: Path) -> dict[str, tuple[int, int]]:
    """Byte ranges [start, end) of each entry (local header + data), the central directory and the end record."""
    zr = ZipReader.open(path)
    try:
        members = sorted(zr.members.values(), key=lambda m: m.offset)
        regions = {m.name: (m.offset, m.data_offset + m.csize) for m in members}
    finally:
        zr.close()
    size = path.stat().st_size
    cd_start = max(end for _, end in regions.values())
    regions["<central directory>"] = (cd_start, size - 22)
    regions["<end record>"] = (size - 22, size)
    return regions


def test_every_single_byte_flip_fails(sample, tmp_path: Path) -> None:
    raw = sample.path.read_bytes()
    regions = _regions(sample.path)
    assert sum(e - s for s, e in regions.values()) == len(raw)  # the regions tile the file
    rng = random.Random(7)
    positions: list[tuple[str, int]] = []
    for name, (start, end) in regions.items():
        span = list(range(start, end))
        # every byte of small regions, else the first 30 (headers) plus 30 spread over the rest
        picked = span if len(span) <= 60 else span[:30] + rng.sample(span[30:], 30)
        positions += [(name, p) for p in picked]
    assert len(positions) >= 200
    assert {n for n, _ in positions} == set(regions)
    bad = tmp_path / "bad.kolm"
    undetected = []
    for i, (name, pos) in enumerate(positions):
        flipped = bytearray(raw)
        flipped[pos] ^= (0xFF, 0x01, 0x80)[i % 3]  # whole bytes and single bits, including padding bits
        bad.write_bytes(flipped)
        report = verify_file(bad)
        if report.ok:
            undetected.append((name, pos))
        else:
            assert report.failures() and all(c.detail for c in report.failures())
    assert undetected == []


def test_a_component_swapped_in_from_another_artifact_fails(tmp_path: Path, key: SigningKey) -> None:
    a = write_sample(tmp_path / "a.kolm", key=key, note="a")
    b = write_sample(tmp_path / "b.kolm", key=key, note="b")  # same key, other recipes
    with zipfile.ZipFile(a.path) as za, zipfile.ZipFile(b.path) as zb:
        members = [(n, zb.read(n) if n == "components/recipes.json" else za.read(n)) for n in za.namelist()]
    swapped = tmp_path / "swapped.kolm"
    write_zip(swapped, members)  # a canonical zip: only the content is wrong
    report = verify_artifact(swapped)
    assert not report.ok
    failed = {c.name for c in report.failures()}
    assert {"component:recipes", "signature:model", "signature:zip"} <= failed
    assert "differs from the manifest" in next(c.detail for c in report.checks if c.name == "component:recipes")
    with pytest.raises(ArtifactError, match="verification failed: component:recipes"):
        open_artifact(swapped)


def test_the_manifest_of_another_artifact_fails_too(tmp_path: Path, key: SigningKey) -> None:
    a = write_sample(tmp_path / "a.kolm", key=key, note="a")
    b = write_sample(tmp_path / "b.kolm", key=key, note="b")
    with zipfile.ZipFile(a.path) as za, zipfile.ZipFile(b.path) as zb:
        # b's recipes *and* b's manifest: the CIDs agree, the signatures over a's members do not
        members = [(n, zb.read(n) if n in ("components/recipes.json", "manifest.json") else za.read(n)) for n in za.namelist()]
    mixed = tmp_path / "mixed.kolm"
    write_zip(mixed, members)
    report = verify_artifact(mixed)
    assert _names(report)["component:recipes"] is True
    assert not report.ok and {"signature:model", "signature:zip"} <= {c.name for c in report.failures()}


def test_a_wrong_key_fails(sample, tmp_path: Path) -> None:
    other = ec.generate_private_key(ec.SECP256R1()).public_key()
    other_pem = tmp_path / "other.pub"
    other_pem.write_bytes(public_pem(other))
    report = verify_artifact(sample.path, pubkey=other_pem)
    assert not report.ok
    signer = next(c for c in report.checks if c.name == "signer")
    assert not signer.ok and "not by the given key" in signer.detail
    # the right key given explicitly passes
    assert verify_artifact(sample.path, pubkey=fixed_key().public_key).ok


def test_an_unknown_signer_is_not_trusted_by_default(sample) -> None:
    shutil.rmtree(keys_dir())
    report = verify_artifact(sample.path)
    assert not report.ok and [c.name for c in report.failures()] == ["signer"]
    assert "unknown key" in report.failures()[0].detail
    report = verify_artifact(sample.path, trust_embedded_key=True)
    assert report.ok and report.signer["trusted"] is False
    with pytest.raises(ArtifactError, match="unknown key"):
        open_artifact(sample.path)


def test_a_resigned_artifact_with_a_forged_key_is_refused(tmp_path: Path, key: SigningKey) -> None:
    # an attacker changes a component and signs everything again with a key of their own
    forged = write_sample(tmp_path / "f.kolm", key=SigningKey(ec.generate_private_key(ec.SECP256R1()), None), note="evil")
    report = verify_artifact(forged.path)
    assert not report.ok and "unknown key" in report.failure_text()
    assert not verify_artifact(forged.path, pubkey=key.public_key).ok


def test_hmac_signature(tmp_path: Path, key: SigningKey) -> None:
    w = write_sample(tmp_path / "a.kolm", key=key, hmac_key=b"team-secret")
    assert _names(verify_artifact(w.path, hmac_key=b"team-secret"))["signature:hmac"] is True
    no_key = verify_artifact(w.path)
    assert no_key.ok and next(c for c in no_key.checks if c.name == "signature:hmac").skipped
    wrong = verify_artifact(w.path, hmac_key=b"guess")
    assert not wrong.ok and "different HMAC key" in wrong.failure_text()
    plain = write_sample(tmp_path / "b.kolm", key=key)
    missing = verify_artifact(plain.path, hmac_key=b"team-secret")
    assert not missing.ok and "hmac.json is missing" in missing.failure_text()


def test_open_artifact_reads_and_extracts_checked_components(sample, tmp_path: Path) -> None:
    with open_artifact(sample.path) as art:
        assert art.has("recipes") and not art.has("base_gguf")
        assert art.read("heldout") == sample_components()["heldout"]
        out = art.extract("adapter_gguf", tmp_path / "x")
        assert out == tmp_path / "x" / "adapter.gguf" and out.read_bytes() == sample_components()["adapter_gguf"]
        with pytest.raises(ArtifactError, match="no component 'base_gguf'"):
            art.read("base_gguf")
    assert sorted(p.name for p in (tmp_path / "x").iterdir()) == ["adapter.gguf"]


def test_the_zip_signature_is_the_last_entry_and_covers_everything_before_it(sample) -> None:
    with zipfile.ZipFile(sample.path) as z:
        last = z.infolist()[-1]
        assert last.filename == SIG_ZIP and last.compress_type == zipfile.ZIP_STORED


def test_model_signing_verifies_the_extracted_members(sample, tmp_path: Path) -> None:
    pytest.importorskip("OpenSSL")  # model_signing 1.1 imports pyOpenSSL without declaring it
    model_signing = pytest.importorskip("model_signing")
    folder = tmp_path / "model"
    with zipfile.ZipFile(sample.path) as z:
        z.extractall(folder)
    pub = tmp_path / "signer.pub"
    pub.write_bytes(public_pem(fixed_key().public_key))
    config = model_signing.verifying.Config().use_elliptic_key_verifier(public_key=pub)
    config.verify(folder, folder / "signatures" / "model.sig")  # raises on failure
    # and model_signing notices tampering in an extracted member
    (folder / "components" / "recipes.json").write_bytes(b'{"tampered":true}')
    with pytest.raises(ValueError, match="recipes.json"):
        config.verify(folder, folder / "signatures" / "model.sig")
