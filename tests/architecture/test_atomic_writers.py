"""One atomic-write helper: no module writes its own temp file and renames it into place.

kolmbuild/atomic.py makes the temp file beside the destination, fsyncs it and its folder, and
renames; a hand-rolled copy tends to skip a step (the folder's fsync, the mode, the cleanup on an
error). This test reads every module with :mod:`ast` and fails on ``os.replace``/``os.rename``,
``Path.replace``/``Path.rename``, ``tempfile.mkstemp``/``NamedTemporaryFile`` and an fsspec file
system's ``mv`` outside the few places listed here, each with its reason (and each listed place must
still need its exception, so the list cannot rot).
"""

from __future__ import annotations

import ast
import os
from pathlib import Path

import pytest

from kolmbuild import atomic
from kolmbuild.atomic import atomic_path
from tests.conftest import REPO

ALLOWED = {
    "kolmbuild/atomic.py": "the helper itself",
    "kolmbuild/compute/payload.py": "shipped alone to a rented machine: the standard library only",
    # the remote cache and the publish registry call it; kolmbuild.atomic works on local paths only
    "kolmbuild/remote/storage.py": "write_whole: the same for an fsspec file system (S3, SFTP, a shared folder): "
                                   "one PUT on an object store, else a temp name and fs.mv there",
}


def hand_rolled(path: Path) -> list[str]:
    found = []
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if not (isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute)):
            continue
        name, owner = node.func.attr, node.func.value
        owner_name = owner.id if isinstance(owner, ast.Name) else None
        if owner_name == "os" and name in ("replace", "rename", "renames"):
            found.append(f"{node.lineno}: os.{name}")
        elif owner_name == "tempfile" and name in ("mkstemp", "NamedTemporaryFile"):
            found.append(f"{node.lineno}: tempfile.{name}")
        elif name == "mv" and len(node.args) == 2:  # fsspec's AbstractFileSystem.mv(path1, path2)
            found.append(f"{node.lineno}: {ast.unparse(node)}")
        elif owner_name != "os" and name in ("replace", "rename") and len(node.args) == 1 and not node.keywords:
            found.append(f"{node.lineno}: {ast.unparse(node)}")  # Path.replace(dst); str.replace takes two
    return found


def test_no_module_renames_its_own_temp_files() -> None:
    offenders = {}
    for path in sorted((REPO / "kolmbuild").rglob("*.py")):
        rel = path.relative_to(REPO).as_posix()
        if rel not in ALLOWED and (found := hand_rolled(path)):
            offenders[rel] = found
    assert not offenders, "write through kolmbuild.atomic (write_atomic, atomic_writer, atomic_path, commit):\n" + \
        "\n".join(f"  {f}:{line}" for f, lines in offenders.items() for line in lines)


def test_each_allowed_module_still_needs_its_exception() -> None:
    stale = [rel for rel in ALLOWED if not (REPO / rel).is_file() or not hand_rolled(REPO / rel)]
    assert not stale, f"no longer hand-rolled (or gone): drop from ALLOWED: {stale}"


def test_the_checker_sees_each_form(tmp_path: Path) -> None:
    src = tmp_path / "m.py"
    src.write_text("import os, tempfile\nos.replace(a, b)\np.replace(q)\ns.replace('a', 'b')\n"
                   "def f():\n    fd, n = tempfile.mkstemp()\n    t.rename(d)\n    fs.mv(tmp, target)\n")
    assert hand_rolled(src) == ["2: os.replace", "3: p.replace(q)", "6: tempfile.mkstemp", "7: t.rename(d)",
                                "8: fs.mv(tmp, target)"]


def test_atomic_path_for_writers_that_take_a_file_name(tmp_path: Path) -> None:
    dest = tmp_path / "sub" / "db.sqlite"
    with atomic_path(dest) as tmp:
        assert tmp.parent == dest.parent and tmp.exists() and not dest.exists()
        tmp.write_bytes(b"whole")
    assert dest.read_bytes() == b"whole" and os.stat(dest).st_mode & 0o777 == atomic.default_mode()
    with pytest.raises(RuntimeError), atomic_path(dest) as tmp:
        tmp.write_bytes(b"half")
        raise RuntimeError
    assert dest.read_bytes() == b"whole" and sorted(p.name for p in dest.parent.iterdir()) == ["db.sqlite"]


def test_durable_false_skips_only_the_fsyncs(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    synced: list[int] = []
    real = os.fsync
    monkeypatch.setattr(os, "fsync", lambda fd: synced.append(fd) or real(fd))
    atomic.write_atomic(tmp_path / "a", b"1")
    assert len(synced) == 2  # the file, then its folder
    synced.clear()
    atomic.write_atomic(tmp_path / "b", b"2", durable=False)
    with atomic_path(tmp_path / "c", durable=False) as tmp:
        tmp.write_bytes(b"3")
    assert synced == [] and [(tmp_path / n).read_bytes() for n in "abc"] == [b"1", b"2", b"3"]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a", "b", "c"]

