from __future__ import annotations

import json
from pathlib import Path

import fsspec
import pytest
from click.testing import CliRunner

from kolmbuild.errors import ArtifactError, UserInputError
from kolmbuild.publish import Registry, parse_spec

pytestmark = pytest.mark.usefixtures("fake_api")


def _cli(*args: str):
    from kolmbuild.cli.main import cli

    return CliRunner().invoke(cli, list(args), catch_exceptions=False)


def test_publish_pull_round_trip(registry_url: str, tmp_path: Path, make_artifact) -> None:
    a1 = make_artifact(tmp_path / "a1.kolm", "support", "0.1.0", 0.82, "one")
    a2 = make_artifact(tmp_path / "a2.kolm", "support", "0.2.0", 0.88, "two")
    reg = Registry(registry_url)
    r1 = reg.publish(a1)
    assert r1.created and r1.entry.path == f"artifacts/{r1.entry.cid}.kolm" and r1.entry.k_score == 0.82
    reg.publish(a2)

    fs, root = fsspec.core.url_to_fs(registry_url)
    index = json.loads(fs.cat_file(f"{root.rstrip('/')}/index.json"))
    assert [(e["name"], e["version"], e["k_score"]) for e in index["entries"]] == [
        ("support", "0.1.0", 0.82), ("support", "0.2.0", 0.88)]  # fmt: skip
    assert all(e["cid"].startswith("b") and len(e["sha256"]) == 64 for e in index["entries"])
    assert not [p for p in fs.find(root) if p.endswith(".tmp")]

    newest = reg.pull("support", tmp_path / "out" / "latest.kolm")
    assert newest.entry.version == "0.2.0" and newest.path.read_bytes() == a2.read_bytes()
    old = reg.pull("support@0.1.0", tmp_path / "out" / "old.kolm")
    assert old.path.read_bytes() == a1.read_bytes()


def test_same_artifact_twice_is_a_no_op(registry_url: str, tmp_path: Path, make_artifact) -> None:
    a = make_artifact(tmp_path / "a.kolm", "t", "1.0.0", 0.9)
    reg = Registry(registry_url)
    assert reg.publish(a).created
    again = reg.publish(a)
    assert not again.created and len(reg.index().entries) == 1


def test_conflicting_overwrite_is_refused(registry_url: str, tmp_path: Path, make_artifact) -> None:
    reg = Registry(registry_url)
    first = make_artifact(tmp_path / "a.kolm", "t", "1.0.0", 0.9, "first")
    reg.publish(first)
    other = make_artifact(tmp_path / "b.kolm", "t", "1.0.0", 0.95, "second")
    with pytest.raises(ArtifactError, match=r"t@1.0.0 is already published as a different artifact") as err:
        reg.publish(other)
    assert err.value.exit_code == 2
    assert len(reg.index().entries) == 1
    fs, root = fsspec.core.url_to_fs(registry_url)
    assert len(fs.ls(f"{root.rstrip('/')}/artifacts")) == 1  # the refused blob was not uploaded
    assert reg.pull("t@1.0.0", tmp_path / "p.kolm").path.read_bytes() == first.read_bytes()


def test_pull_detects_tampering(registry_url: str, tmp_path: Path, make_artifact) -> None:
    reg = Registry(registry_url)
    entry = reg.publish(make_artifact(tmp_path / "a.kolm", "t", "1.0.0", 0.9, "real")).entry
    fs, root = fsspec.core.url_to_fs(registry_url)
    blob = f"{root.rstrip('/')}/{entry.path}"
    evil = make_artifact(tmp_path / "evil.kolm", "t", "1.0.0", 0.99, "evil")
    fs.pipe_file(blob, evil.read_bytes())
    dest = tmp_path / "got.kolm"
    with pytest.raises(ArtifactError, match="does not match the index"):
        reg.pull("t", dest)
    assert not dest.exists() and not list(tmp_path.glob(".got.kolm.*"))

    # a registry whose index was rewritten to the new file's hash still fails the CID check
    index = reg.index()
    import hashlib

    index.entries[0].sha256 = hashlib.sha256(evil.read_bytes()).hexdigest()
    fs.pipe_file(f"{root.rstrip('/')}/index.json", index.model_dump_json().encode())
    with pytest.raises(ArtifactError, match=r"the index says t@1.0.0 \(" + entry.cid):
        reg.pull("t", dest)
    assert not dest.exists()


def test_lookup_errors(registry_url: str, tmp_path: Path, make_artifact) -> None:
    reg = Registry(registry_url)
    with pytest.raises(UserInputError, match="no artifact named 'nope'"):
        reg.pull("nope", tmp_path / "x.kolm")
    reg.publish(make_artifact(tmp_path / "a.kolm", "t", "1.0.0", None))
    with pytest.raises(UserInputError, match="no t@2.0.0") as err:
        reg.pull("t@2.0.0", tmp_path / "x.kolm")
    assert "versions: 1.0.0" in str(err.value)
    with pytest.raises(UserInputError):
        parse_spec("t@")
    assert parse_spec("t@1.2") == ("t", "1.2")


def test_version_order_is_semantic(tmp_path: Path, make_artifact) -> None:
    reg = Registry(str(tmp_path / "r"))
    for v in ("0.9.0", "0.10.0", "0.2.0"):
        reg.publish(make_artifact(tmp_path / f"{v}.kolm", "t", v, 0.8, v))
    assert reg.find("t").version == "0.10.0"


def test_cli_publish_pull_and_refusal(tmp_path: Path, make_artifact) -> None:
    url = str(tmp_path / "registry")
    a = make_artifact(tmp_path / "support-0.1.0.kolm", "support", "0.1.0", 0.84, "a")
    r = _cli("publish", str(a), "--to", url)
    assert r.exit_code == 0, r.output
    assert r.output.startswith("published support@0.1.0 (K=0.840) -> ")
    r = _cli("publish", str(a), "--to", url, "--json")
    assert json.loads(r.output)["created"] is False
    b = make_artifact(tmp_path / "other.kolm", "support", "0.1.0", 0.9, "b")
    r = _cli("publish", str(b), "--to", url)
    assert r.exit_code == 2 and "refusing to overwrite" in r.output
    out = tmp_path / "pulled.kolm"
    r = _cli("pull", "support@0.1.0", "--from", url, "--out", str(out), "--json")
    assert r.exit_code == 0, r.output
    assert json.loads(r.output)["verified"] is True and out.read_bytes() == a.read_bytes()
    r = _cli("pull", "ghost", "--from", url, "--out", str(out))
    assert r.exit_code == 2 and "no artifact named 'ghost'" in r.output


def test_corrupt_index_is_named(tmp_path: Path) -> None:
    (tmp_path / "r").mkdir()
    (tmp_path / "r" / "index.json").write_text('{"kind": "something-else"}')
    with pytest.raises(UserInputError, match="not a kolmbuild registry index"):
        Registry(str(tmp_path / "r")).index()
