"""The verbs: verify, inspect, keygen, sign (in-process with CliRunner, and once as a real process)."""

from __future__ import annotations

import json
import os
import stat
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest
from click.testing import CliRunner

from kolmbuild.artifact import verify_artifact
from kolmbuild.artifact.keys import generate_keypair, keys_dir, load_public_key, public_pem
from kolmbuild.cli.main import cli
from kolmbuild.errors import KolmError
from kolmbuild.hashing import cid_of_bytes

from .conftest import fixed_key, sample_components, write_sample

# The manifest of conftest's sample, pinned: kolm/1 is frozen, so this CID may only change with a
# new format version (it does not depend on zlib: the manifest names uncompressed content).
PINNED_MANIFEST_CID = "bagaaiera3l5op63uewrut7ejf2du2byn5auvl76jsn6cxypphhm5fkqcdqxa"
FP = fixed_key().fingerprint


def run(*args: str, env: dict[str, str] | None = None):
    return CliRunner().invoke(cli, list(args), env=env, catch_exceptions=False)


def expected_verify_json() -> dict:
    comps = sample_components()
    return {
        "ok": True,
        "manifest_cid": PINNED_MANIFEST_CID,
        "signer": {"fingerprint": FP, "trusted": True},
        "checks": [
            {"name": "archive", "ok": True, "skipped": False, "detail": "canonical kolm/1 zip, 9 entries"},
            {"name": "manifest", "ok": True, "skipped": False, "detail": f"valid kolm/1 manifest {PINNED_MANIFEST_CID}"},
            *(
                {"name": f"component:{n}", "ok": True, "skipped": False,
                 "detail": f"{cid_of_bytes(comps[n])} ({len(comps[n])} bytes)"}
                for n in sorted(comps)
            ),
            {"name": "receipts", "ok": True, "skipped": False, "detail": "components agree with the 1 receipt(s)"},
            {"name": "signer", "ok": True, "skipped": False, "detail": f"key {FP[:16]}… is a trusted key (kolm-signing.pub)"},
            {"name": "signature:model", "ok": True, "skipped": False, "detail": "valid model-signing v1.0 bundle over every member"},
            {"name": "signature:zip", "ok": True, "skipped": False, "detail": "valid over every byte of the other entries"},
        ],
    }  # fmt: skip


def test_verify_json_is_exact_and_stable(sample) -> None:
    first = run("verify", str(sample.path), "--json")
    assert first.exit_code == 0, first.output
    assert json.loads(first.output) == expected_verify_json()
    assert run("verify", str(sample.path), "--json").output == first.output


def test_verify_text_names_every_check(sample) -> None:
    r = run("verify", str(sample.path))
    assert r.exit_code == 0
    assert f"verified ({PINNED_MANIFEST_CID})" in r.output
    for name in ("archive", "manifest", "component:recipes", "signer", "signature:model", "signature:zip"):
        assert name in r.output


def test_verify_fails_with_exit_2_and_names_what_failed(sample, tmp_path: Path) -> None:
    raw = bytearray(sample.path.read_bytes())
    with zipfile.ZipFile(sample.path) as z:
        info = z.getinfo("components/adapter.gguf")  # stored: flip a data byte, headers stay valid
    raw[info.header_offset + 30 + len(info.filename) + 100] ^= 0xFF
    bad = tmp_path / "bad.kolm"
    bad.write_bytes(bytes(raw))
    r = run("verify", str(bad), "--json")
    assert r.exit_code == 2
    doc = json.loads(r.stdout)
    assert doc["ok"] is False
    failed = [c["name"] for c in doc["checks"] if not c["ok"]]
    assert failed == ["component:adapter_gguf", "signature:model", "signature:zip"]
    assert "CRC mismatch" in doc["checks"][2]["detail"]
    r = run("verify", str(bad))
    assert r.exit_code == 2 and "verification failed: component:adapter_gguf" in r.output


def test_verify_with_a_wrong_pubkey_and_with_keys(sample, tmp_path: Path) -> None:
    other_priv, other_pub = generate_keypair(tmp_path / "other")
    r = run("verify", str(sample.path), "--pubkey", str(other_pub), "--json")
    assert r.exit_code == 2
    doc = json.loads(r.stdout)
    assert [c["name"] for c in doc["checks"] if not c["ok"]] == ["signer", "signature:model", "signature:zip"]
    right = tmp_path / "right.pub"
    right.write_bytes(public_pem(fixed_key().public_key))
    assert run("verify", str(sample.path), "--pubkey", str(right)).exit_code == 0
    r = run("verify", str(sample.path), "--pubkey", str(tmp_path / "nope.pub"))
    assert r.exit_code == 2 and "cannot read the public key" in r.output


def test_verify_a_malformed_file_as_json(tmp_path: Path) -> None:
    bad = tmp_path / "bad.kolm"
    bad.write_bytes(b"not a zip at all, but long enough to be one")
    r = run("verify", str(bad), "--json")
    assert r.exit_code == 2
    assert json.loads(r.stdout) == {
        "ok": False, "manifest_cid": None, "signer": {},
        "checks": [{"name": "archive", "ok": False, "skipped": False,
                    "detail": "not a .kolm file (no zip end-of-central-directory record)"}],
    }  # fmt: skip
    r = run("verify", str(tmp_path / "missing.kolm"))
    assert r.exit_code == 2 and "no such file" in r.output


def test_verify_hmac_from_an_env_var(tmp_path: Path, key) -> None:
    w = write_sample(tmp_path / "h.kolm", key=key, hmac_key=b"s3cret")
    assert run("verify", str(w.path), "--hmac-key-env", "TEAM_KEY", env={"TEAM_KEY": "s3cret"}).exit_code == 0
    r = run("verify", str(w.path), "--hmac-key-env", "TEAM_KEY", env={"TEAM_KEY": "wrong"})
    assert r.exit_code == 2 and "signature:hmac" in r.output and "s3cret" not in r.output
    r = run("verify", str(w.path), "--hmac-key-env", "UNSET_KEY_VAR")
    assert r.exit_code == 2 and "UNSET_KEY_VAR is not set" in r.output
    # the configured key ($KOLM_SIGNING_KEY) is used when no variable is named
    assert run("verify", str(w.path), env={"KOLM_SIGNING_KEY": "wrong"}).exit_code == 2


def test_inspect_json_is_the_full_manifest(sample) -> None:
    r = run("inspect", str(sample.path), "--json")
    assert r.exit_code == 0, r.output
    doc = json.loads(r.output)
    assert doc == {
        "file": {"name": "a.kolm", "size": sample.size, "sha256": sample.sha256},
        "manifest_cid": PINNED_MANIFEST_CID,
        "members": [
            "components/adapter.gguf", "components/eval.json", "components/heldout.jsonl",
            "components/index.sqlite", "components/recipes.json", "components/verifier.json",
            "manifest.json", "signatures/model.sig", "signatures/zip.json",
        ],
        "manifest": sample.manifest,
    }  # fmt: skip
    assert sorted(doc["manifest"]) == [
        "absent", "base", "components", "compute", "created", "format", "gates", "metrics",
        "receipts", "signer", "target", "task", "toolchain", "version",
    ]  # fmt: skip
    assert run("inspect", str(sample.path), "--json").output == r.output


def test_inspect_text_summary(sample) -> None:
    r = run("inspect", str(sample.path))
    assert r.exit_code == 0, r.output
    for text in ("phi 0.1.0", PINNED_MANIFEST_CID, "K-score", "0.900", "S=0.800", "heldout", "19.0 KB",
                 "backend=local-cpu", "absent", "base_gguf", "model.sig", "not verified here"):  # fmt: skip
        assert text in r.output, text


def test_inspect_refuses_an_unsafe_file(tmp_path: Path) -> None:
    p = tmp_path / "x.kolm"
    p.write_bytes(b"PK\x05\x06" + bytes(18))
    r = run("inspect", str(p))
    assert r.exit_code == 2 and "no manifest.json" in r.output


def test_keygen_writes_a_private_key_0600(tmp_path: Path) -> None:
    r = run("keygen", "--json")
    assert r.exit_code == 0, r.output
    doc = json.loads(r.output)
    priv, pub = Path(doc["private_key"]), Path(doc["public_key"])
    assert priv == keys_dir() / "kolm-signing.pem" and pub == keys_dir() / "kolm-signing.pub"
    assert stat.S_IMODE(priv.stat().st_mode) == 0o600
    assert "PRIVATE" not in r.output
    assert doc["fingerprint"] == __import__("kolmbuild.artifact.keys", fromlist=["x"]).fingerprint(load_public_key(pub))
    again = run("keygen")
    assert again.exit_code == 2 and "already exists" in again.output and "--force" in again.output
    assert run("keygen", "--force", "--out", str(tmp_path / "k"), "--name", "release").exit_code == 0
    assert (tmp_path / "k" / "release.pem").is_file() and (tmp_path / "k" / "release.pub").is_file()
    assert run("keygen", "--name", "../x").exit_code == 2


def test_a_world_readable_private_key_is_refused(tmp_path: Path, sample) -> None:
    priv, _ = generate_keypair(tmp_path / "k")
    os.chmod(priv, 0o644)
    r = run("sign", str(sample.path), "--key", str(priv))
    assert r.exit_code == 2 and "readable by others" in r.output


def test_sign_adds_hmac_and_keeps_everything_else(sample, tmp_path: Path) -> None:
    out = tmp_path / "signed.kolm"
    r = run("sign", str(sample.path), "--hmac-key-env", "TEAM_KEY", "--out", str(out), "--json", env={"TEAM_KEY": "k1"})
    assert r.exit_code == 0, r.output
    doc = json.loads(r.stdout)
    assert doc["manifest_cid"] == PINNED_MANIFEST_CID  # same key: the manifest does not change
    assert doc["signatures"] == ["signatures/hmac.json", "signatures/model.sig", "signatures/zip.json"]
    assert verify_artifact(out, hmac_key=b"k1").ok
    assert not verify_artifact(out, hmac_key=b"k2").ok
    # signing again gives the same bytes; signing in place works too
    out2 = tmp_path / "signed2.kolm"
    run("sign", str(sample.path), "--hmac-key-env", "TEAM_KEY", "--out", str(out2), env={"TEAM_KEY": "k1"})
    assert out.read_bytes() == out2.read_bytes()
    assert run("sign", str(out2), "--hmac-key-env", "TEAM_KEY", env={"TEAM_KEY": "k1"}).exit_code == 0
    assert out2.read_bytes() == out.read_bytes()
    assert run("sign", str(sample.path)).exit_code == 2  # nothing to do


def test_sign_with_another_key_changes_the_signer(sample, tmp_path: Path) -> None:
    w = write_sample(tmp_path / "h.kolm", key=fixed_key(), hmac_key=b"k1")
    priv, pub = generate_keypair(tmp_path / "release")
    out = tmp_path / "release.kolm"
    r = CliRunner().invoke(cli, ["sign", str(w.path), "--key", str(priv), "--out", str(out)])
    assert r.exit_code == 0, r.output
    assert "hmac.json" in r.stderr and "no longer apply" in r.stderr
    assert verify_artifact(out, pubkey=pub).ok
    assert not verify_artifact(out).ok  # the release key is not in the keys dir
    with zipfile.ZipFile(out) as z:
        assert "signatures/hmac.json" not in z.namelist()
        m = json.loads(z.read("manifest.json"))
    assert m["signer"]["fingerprint"] != FP and m["components"] == sample.manifest["components"]


def test_sign_refuses_a_tampered_file(sample, tmp_path: Path) -> None:
    raw = bytearray(sample.path.read_bytes())
    raw[200] ^= 0x01
    bad = tmp_path / "bad.kolm"
    bad.write_bytes(bytes(raw))
    r = run("sign", str(bad), "--hmac-key-env", "TEAM_KEY", env={"TEAM_KEY": "k"})
    assert r.exit_code == 2 and bad.read_bytes() == bytes(raw)


def test_sign_sigstore_adds_a_bundle_that_verify_checks(sample, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from kolmbuild.artifact import signing

    seen: list[bytes] = []

    def fake_sigstore_sign(payload: bytes, **kw: object) -> bytes:
        seen.append(payload)
        return b'{"mediaType":"application/vnd.dev.sigstore.bundle.v0.3+json"}'

    monkeypatch.setattr(signing, "sigstore_sign", fake_sigstore_sign)
    out = tmp_path / "s.kolm"
    r = run("sign", str(sample.path), "--sigstore", "--out", str(out))
    assert r.exit_code == 0, r.output
    statement = json.loads(seen[0])
    assert statement["predicateType"] == "https://model_signing/signature/v1.0"
    assert [x["name"] for x in statement["predicate"]["resources"]][-1] == "manifest.json"
    # verify checks the bundle (offline); this fake one is not a valid Sigstore bundle
    report = verify_artifact(out)
    assert not report.ok and [c.name for c in report.failures()] == ["signature:sigstore"]


def test_sigstore_signing_without_network_says_what_it_needs(monkeypatch: pytest.MonkeyPatch) -> None:
    pytest.importorskip("sigstore")
    from sigstore.models import ClientTrustConfig

    from kolmbuild.artifact.signing import sigstore_sign

    def offline(*a: object, **k: object) -> None:
        raise OSError("network is unreachable")

    monkeypatch.setattr(ClientTrustConfig, "production", offline)
    with pytest.raises(KolmError, match="sigstore signing failed: network is unreachable") as err:
        sigstore_sign(b"{}", identity_token="x")
    assert "needs network access" in str(err.value)


def test_verify_as_a_process_exits_0_then_2(sample, tmp_path: Path) -> None:
    env = dict(os.environ)
    ok = subprocess.run([sys.executable, "-m", "kolmbuild", "verify", str(sample.path)], capture_output=True, text=True, env=env, timeout=120)
    assert ok.returncode == 0, ok.stderr
    raw = bytearray(sample.path.read_bytes())
    raw[-30] ^= 0xFF
    bad = tmp_path / "bad.kolm"
    bad.write_bytes(bytes(raw))
    no = subprocess.run([sys.executable, "-m", "kolmbuild", "verify", str(bad)], capture_output=True, text=True, env=env, timeout=120)
    assert no.returncode == 2 and "Traceback" not in no.stderr and "kolmbuild: error:" in no.stderr


def test_sign_without_key_refuses_to_replace_another_signer(tmp_path: Path) -> None:
    """Adding an HMAC to a file someone else signed must not silently re-sign it with your key."""
    theirs = fixed_key(0x1234567)
    w = write_sample(tmp_path / "theirs.kolm", key=theirs)
    pub = tmp_path / "theirs.pub"
    pub.write_bytes(public_pem(theirs.public_key))
    before = w.path.read_bytes()
    r = run("sign", str(w.path), "--hmac-key-env", "TEAM_KEY", "--pubkey", str(pub), env={"TEAM_KEY": "k1"})
    assert r.exit_code == 2, r.output
    assert theirs.fingerprint[:16] in r.output and "--key" in r.output
    assert w.path.read_bytes() == before


def test_inspect_shows_manifest_text_literally(tmp_path: Path, key) -> None:
    """Manifest strings are data: rich markup in them is printed as is, never interpreted (nor a traceback)."""
    w = write_sample(tmp_path / "m.kolm", key=key, target="phi[/red]", version="1[bold]",
                     task={"name": "phi", "shape": "text"}, gates={"K_min[/]": 0.7})
    r = run("inspect", str(w.path))
    assert r.exit_code == 0, r.output
    assert "phi[/red] 1[bold]" in r.output and "K_min[/]=0.700" in r.output


def test_keygen_into_a_folder_it_cannot_create_exits_2(tmp_path: Path) -> None:
    blocker = tmp_path / "a-file"
    blocker.write_text("x")
    r = run("keygen", "--out", str(blocker / "keys"))
    assert r.exit_code == 2 and not isinstance(r.exception, OSError), r.output
    assert f"{blocker / 'keys'}: cannot write the key pair there" in r.output


def test_sign_out_into_an_impossible_folder_exits_2(sample, tmp_path: Path) -> None:
    blocker = tmp_path / "a-file"
    blocker.write_text("x")
    r = run("sign", str(sample.path), "--hmac-key-env", "TEAM_KEY", "--out", str(blocker / "s.kolm"), env={"TEAM_KEY": "k"})
    assert r.exit_code == 2 and not isinstance(r.exception, OSError), r.output
    assert "cannot write the signed file there" in r.output
