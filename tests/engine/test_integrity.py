"""A damaged cache object is noticed, never shipped, and rebuilt; `cache verify` finds them all."""

from __future__ import annotations

import json
import os
from pathlib import Path

from kolmbuild.engine.store import Store
from kolmbuild.hashing.files import StatCache
from tests.engine.conftest import ARTIFACT, open_engine, stage_outputs


def _obj(root: Path, cid: str) -> Path:
    return root / "cache/objects" / cid[-2:] / cid


def _damage(path: Path, data: bytes, keep_stat: bool = False) -> None:
    """Overwrite an object in place; with ``keep_stat``, put its mtime back (same size, same inode):
    a change no stat check can see, only a re-hash."""
    st = path.stat()
    os.chmod(path, 0o644)
    with open(path, "r+b") as f:
        f.truncate(0)
        f.write(data)
    os.chmod(path, 0o444)
    if keep_stat:
        assert len(data) == st.st_size
        os.utime(path, ns=(st.st_atime_ns, st.st_mtime_ns))


def _built(packed) -> tuple[bytes, dict[str, dict[str, str]]]:
    r = packed.kolmbuild()
    assert r.returncode == 0, r.stderr
    assert packed.kolmbuild().returncode == 0  # writes the no-op stamp, so the fast path is tested too
    packed.reset_runs()
    return (packed.root / ARTIFACT).read_bytes(), stage_outputs(packed.root)


def test_an_edited_object_makes_status_stale_and_the_rebuild_repairs_it(packed) -> None:
    ref, outputs = _built(packed)
    obj = _obj(packed.root, outputs["echo"]["echo.txt"])
    _damage(obj, b'{"input": "a", "output": "TAMPERED"}\n')
    st = packed.kolmbuild("status")  # the stamp watched the object's stat: the full engine decides
    assert "demo: echo       stale  (output echo.txt damaged in the cache)" in st.stdout, st.stdout
    r = packed.kolmbuild()
    assert r.returncode == 0, r.stderr
    assert packed.runs() == ["echo"]  # it made the same bytes again: pack is cut off
    assert (packed.root / ARTIFACT).read_bytes() == ref
    assert b"TAMPERED" not in obj.read_bytes()
    assert stage_outputs(packed.root) == outputs


def test_a_truncated_stored_artifact_is_stale_and_never_installed(packed) -> None:
    ref, outputs = _built(packed)
    obj = _obj(packed.root, outputs["pack"]["artifact.kolm"])
    _damage(obj, ref[:5])
    (packed.root / ARTIFACT).unlink()
    st = packed.kolmbuild("status")
    assert "demo: pack       stale  (output artifact.kolm damaged in the cache)" in st.stdout, st.stdout
    r = packed.kolmbuild()
    assert r.returncode == 0, r.stderr
    assert packed.runs() == ["pack"]
    assert (packed.root / ARTIFACT).read_bytes() == ref


def test_an_invisible_edit_is_caught_when_a_stage_reads_it_and_the_artifact_is_rebuilt_right(packed) -> None:
    """Same size, same mtime, same inode: status cannot see it. When pack reruns (its rule changed),
    the engine re-hashes what pack reads, drops the damaged object, reruns the stage that made it,
    and the artifact has the right bytes."""
    ref, outputs = _built(packed)
    obj = _obj(packed.root, outputs["joined"]["joined.txt"])
    good = obj.read_bytes()
    _damage(obj, b"X" * len(good), keep_stat=True)
    assert "demo: joined     up to date" in packed.kolmbuild("status").stdout
    rule = packed.root / "rules/pack.yaml"
    rule.write_text(rule.read_text().replace("echo pack >> runs.log;", "echo pack >> runs.log; true;"))
    r = packed.kolmbuild()
    assert r.returncode == 0, r.stderr
    assert f"cache object {outputs['joined']['joined.txt']} was damaged" in r.stderr
    assert packed.runs() == ["joined", "pack"]
    assert (packed.root / ARTIFACT).read_bytes() == ref  # same command semantics: the same artifact
    assert obj.read_bytes() == good


def test_install_re_hashes_the_stored_artifact(packed) -> None:
    ref, outputs = _built(packed)
    obj = _obj(packed.root, outputs["pack"]["artifact.kolm"])
    _damage(obj, b"Z" * len(ref), keep_stat=True)
    (packed.root / ARTIFACT).unlink()
    r = packed.kolmbuild()
    assert r.returncode == 0, r.stderr
    assert "was damaged" in r.stderr and packed.runs() == ["pack"]
    assert (packed.root / ARTIFACT).read_bytes() == ref


def test_cache_verify_rehashes_everything_and_drops_what_fails(packed) -> None:
    ref, outputs = _built(packed)
    root = packed.root
    _damage(_obj(root, outputs["count"]["count.txt"]), b"7\n", keep_stat=False)
    _damage(_obj(root, outputs["echo"]["echo.txt"]), b"?" * _obj(root, outputs["echo"]["echo.txt"]).stat().st_size,
            keep_stat=True)
    (root / "cache/objects/zz").mkdir(exist_ok=True)
    (root / "cache/objects/zz/notacid").write_text("junk")
    os.symlink(root / "README-none", root / "cache/objects/zz/bafkreiaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaazz")
    r = packed.invoke("cache", "verify", "--json")
    assert r.exit_code == 1, r.output
    rep = json.loads(r.stdout)
    assert not rep["ok"] and rep["objects_checked"] == 6
    removed = {x["name"].split("/")[-1]: x["problem"] for x in rep["removed"]}
    assert removed[outputs["count"]["count.txt"]].startswith("content hashes to b")
    assert removed[outputs["echo"]["echo.txt"]].startswith("content hashes to b")
    assert removed["notacid"] == "its name is not a CID"
    assert "not a regular file" in removed["bafkreiaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaazz"]
    assert rep["runs_dropped"] == 2  # the count and echo runs that named them
    again = packed.invoke("cache", "verify")
    assert again.exit_code == 0 and "0 removed" in again.stdout
    st = packed.kolmbuild("status")
    assert "demo: count      stale" in st.stdout and "demo: echo       stale" in st.stdout
    r = packed.kolmbuild()
    assert r.returncode == 0, r.stderr
    assert sorted(packed.runs()) == ["count", "echo"]  # same bytes again: joined and pack cut off
    assert (root / ARTIFACT).read_bytes() == ref


def test_put_replaces_a_damaged_object_and_checks_sizes(tmp_path: Path) -> None:
    with StatCache(tmp_path / "cache/stat.db") as stats:
        store = Store(tmp_path / "cache", stats=stats)
        src = tmp_path / "out.txt"
        src.write_bytes(b"the right bytes\n")
        first = store.put(src)
        assert store.has(first.cid, first.size) and not store.has(first.cid, first.size + 1)
        assert store.intact(first.cid, first.size)
        path = store.path_of(first.cid)
        _damage(path, b"the wrong bytes\n", keep_stat=True)
        assert store.intact(first.cid, first.size)  # the stat did not move: trusted until re-read
        src.write_bytes(b"the right bytes\n")
        again = store.put(src)  # an existing object is re-hashed before it is trusted
        assert again == first and path.read_bytes() == b"the right bytes\n" and not src.exists()
        assert (path.stat().st_mode & 0o777) == 0o444


def test_a_python_caller_gets_the_report(packed) -> None:
    _built(packed)
    engine, _ = open_engine(packed.root)
    with engine:
        rep = engine.verify_cache()
    assert rep.ok and rep.objects_checked == 4 and rep.bad == () and rep.runs_dropped == 0
