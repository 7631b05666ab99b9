"""Writing kolm/1: deterministic bytes, the canonical zip layout, the manifest, no secrets."""

from __future__ import annotations

import hashlib
import json
import stat
import zipfile
from pathlib import Path

import pytest

from kolmbuild.artifact import COMPONENTS, load_artifact, write_artifact
from kolmbuild.artifact.keys import SigningKey, keys_dir
from kolmbuild.artifact.writer import FIXED_EPOCH, build_timestamp
from kolmbuild.errors import ArtifactError, UserInputError
from kolmbuild.hashing import canonical_json, cid_of_json

from .conftest import TOOLCHAIN, fixed_key, sample_components, write_sample


def test_two_writes_of_the_same_inputs_are_byte_identical(tmp_path: Path, key: SigningKey) -> None:
    a = write_sample(tmp_path / "one" / "a.kolm", key=key, hmac_key=b"team-secret")
    b = write_sample(tmp_path / "two" / "b.kolm", key=key, hmac_key=b"team-secret")
    assert a.path.read_bytes() == b.path.read_bytes()
    assert a.sha256 == b.sha256 == hashlib.sha256(a.path.read_bytes()).hexdigest()
    assert a.manifest_cid == b.manifest_cid
    # and any input that differs gives different bytes
    c = write_sample(tmp_path / "c.kolm", key=key, note="other")
    assert c.sha256 != a.sha256 and c.manifest_cid != a.manifest_cid


def test_canonical_zip_layout(sample) -> None:
    with zipfile.ZipFile(sample.path) as z:
        infos = z.infolist()
        names = [i.filename for i in infos]
        assert names == sorted(names)
        assert names == [
            "components/adapter.gguf", "components/eval.json", "components/heldout.jsonl",
            "components/index.sqlite", "components/recipes.json", "components/verifier.json",
            "manifest.json", "signatures/model.sig", "signatures/zip.json",
        ]  # fmt: skip
        for i in infos:
            assert i.date_time == (1980, 1, 1, 0, 0, 0)
            assert stat.S_IMODE(i.external_attr >> 16) == 0o644 and stat.S_ISREG(i.external_attr >> 16)
            assert i.extra == b"" and i.comment == b""
            assert i.flag_bits == 0
        methods = {i.filename: i.compress_type for i in infos}
        assert methods["components/adapter.gguf"] == zipfile.ZIP_STORED
        assert methods["components/heldout.jsonl"] == zipfile.ZIP_DEFLATED
        assert methods["signatures/zip.json"] == zipfile.ZIP_STORED
        assert z.comment == b""
        assert z.testzip() is None
        assert z.read("components/recipes.json") == sample_components()["recipes"]


def test_manifest_lists_every_component_by_cid_and_the_absent_ones(sample) -> None:
    with zipfile.ZipFile(sample.path) as z:
        raw = z.read("manifest.json")
    m = json.loads(raw)
    assert raw == canonical_json(m)  # RFC 8785
    assert sample.manifest_cid == str(cid_of_json(m))
    assert m["format"] == "kolm/1" and m["target"] == "phi" and m["version"] == "0.1.0"
    comps = sample_components()
    assert set(m["components"]) == set(comps)
    assert m["absent"] == sorted(set(COMPONENTS) - set(comps)) == ["adapter", "adapter_config", "base_gguf"]
    for name, data in comps.items():
        e = m["components"][name]
        assert e["size"] == len(data)
        assert e["path"] == COMPONENTS[name].path and e["media_type"] == COMPONENTS[name].media_type
        with load_artifact(sample.path) as art:
            assert art.components[name].cid == e["cid"]
            assert art.read(name) == data
    assert m["base"] == {"name": "smollm2", "sha256": "ab" * 32}
    assert m["metrics"]["K"] == 0.9 and set(m["metrics"]["terms"]) == {"A", "S", "L", "C", "V"}
    assert m["receipts"][0]["stage"] == "ingest"
    assert m["toolchain"] == TOOLCHAIN
    assert m["signer"]["fingerprint"] == fixed_key().fingerprint
    assert m["created"] == FIXED_EPOCH


def test_recipe_only_artifact_is_small_and_the_heldout_set_is_deflated(tmp_path: Path, key: SigningKey) -> None:
    comps = sample_components()
    heldout = comps["heldout"] * 20  # ~100 KB of JSONL
    w = write_sample(
        tmp_path / "r.kolm", key=key,
        components={"recipes": comps["recipes"], "heldout": heldout, "verifier": comps["verifier"], "eval": comps["eval"]},
    )  # fmt: skip
    assert len(heldout) > 100_000
    assert w.size < 8_000, w.size  # the format itself adds a few KB at most
    with load_artifact(w.path) as art:
        assert "adapter_gguf" not in art.components and "base_gguf" in art.manifest["absent"]


def test_created_comes_from_source_date_epoch(tmp_path: Path, key: SigningKey, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SOURCE_DATE_EPOCH", "1700000000")
    assert build_timestamp() == "2023-11-14T22:13:20Z"
    w = write_sample(tmp_path / "a.kolm", key=key)
    assert w.manifest["created"] == "2023-11-14T22:13:20Z"
    monkeypatch.setenv("SOURCE_DATE_EPOCH", "yesterday")
    with pytest.raises(UserInputError, match="SOURCE_DATE_EPOCH"):
        write_sample(tmp_path / "b.kolm", key=key)
    assert not (tmp_path / "b.kolm").exists()


def test_bad_inputs_are_refused_and_nothing_is_left_behind(tmp_path: Path, key: SigningKey) -> None:
    with pytest.raises(ArtifactError, match="unknown component"):
        write_sample(tmp_path / "a.kolm", key=key, components={"weights": b"x"})
    with pytest.raises(ArtifactError, match="not a file"):
        write_sample(tmp_path / "a.kolm", key=key, components={"recipes": tmp_path / "missing.json"})
    with pytest.raises(ArtifactError, match="not JSON-serializable"):
        write_sample(tmp_path / "a.kolm", key=key, metrics={"K": object()})
    assert list(tmp_path.iterdir()) == []


def test_files_and_bytes_give_the_same_artifact(tmp_path: Path, key: SigningKey) -> None:
    comps = sample_components()
    folder = tmp_path / "src"
    folder.mkdir()
    files = {}
    for name, data in comps.items():
        (folder / name).write_bytes(data)
        files[name] = folder / name
    a = write_sample(tmp_path / "a.kolm", key=key)
    b = write_sample(tmp_path / "b.kolm", key=key, components=files)
    assert a.sha256 == b.sha256


def test_secrets_never_enter_the_file(tmp_path: Path, key: SigningKey) -> None:
    secret = b"hmac-team-secret-0123456789"
    w = write_sample(tmp_path / "a.kolm", key=key, hmac_key=secret)
    data = w.path.read_bytes()
    assert secret not in data
    with zipfile.ZipFile(w.path) as z:
        everything = b"".join(z.read(n) for n in z.namelist())
    assert secret not in everything
    private_pem = (keys_dir() / "kolm-signing.pem").read_bytes()
    body = b"".join(private_pem.splitlines()[1:-1])
    assert body[:40] not in everything and b"PRIVATE KEY" not in everything
    scalar = key.private_key.private_numbers().private_value.to_bytes(32, "big")
    assert scalar not in data


def test_a_first_write_without_a_key_creates_one_and_says_so_once(tmp_path: Path) -> None:
    said: list[str] = []
    args = dict(target="t", version="1", task={"name": "t"}, components={"recipes": b"{}"}, toolchain_info=TOOLCHAIN)
    a = write_artifact(tmp_path / "a.kolm", log=said.append, **args)  # type: ignore[arg-type]
    b = write_artifact(tmp_path / "b.kolm", log=said.append, **args)  # type: ignore[arg-type]
    assert len(said) == 1 and "created a signing key pair" in said[0]
    priv = keys_dir() / "kolm-signing.pem"
    assert stat.S_IMODE(priv.stat().st_mode) == 0o600
    assert "PRIVATE" not in said[0] and priv.read_text() not in said[0]
    assert a.sha256 == b.sha256  # same key from the second call on


def test_builds_that_create_the_first_key_at_once_agree_on_one_key() -> None:
    from concurrent.futures import ThreadPoolExecutor

    from kolmbuild.artifact.keys import resolve_signing_key

    said: list[str] = []
    with ThreadPoolExecutor(8) as pool:
        keys = list(pool.map(lambda _: resolve_signing_key(said.append), range(16)))
    assert len({k.fingerprint for k in keys}) == 1
    assert len(said) == 1
    assert sorted(p.name for p in keys_dir().iterdir()) == ["kolm-signing.pem", "kolm-signing.pub"]
