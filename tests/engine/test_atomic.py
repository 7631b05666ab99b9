"""The one atomic-write helper: whole file or nothing, mode set before the bytes, exclusive create."""

from __future__ import annotations

import os
import stat
from pathlib import Path

import pytest

from kolmbuild.atomic import atomic_writer, write_atomic


def test_a_failed_write_leaves_the_old_file_and_no_temp(tmp_path: Path) -> None:
    dest = tmp_path / "out.json"
    dest.write_text("old")
    with pytest.raises(RuntimeError), atomic_writer(dest) as f:
        f.write(b"half of the new")
        raise RuntimeError("the writer failed")
    assert dest.read_text() == "old"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out.json"]


def test_mode_is_set_before_anything_is_written(tmp_path: Path) -> None:
    dest = tmp_path / "key.pem"
    with atomic_writer(dest, mode=0o600) as f:
        [tmp] = [p for p in tmp_path.iterdir() if p.name.startswith(".key.pem.")]
        assert stat.S_IMODE(tmp.stat().st_mode) == 0o600
        f.write(b"secret")
    assert stat.S_IMODE(dest.stat().st_mode) == 0o600 and dest.read_bytes() == b"secret"
    write_atomic(tmp_path / "plain.txt", b"x")
    umask = os.umask(0)
    os.umask(umask)
    assert stat.S_IMODE((tmp_path / "plain.txt").stat().st_mode) == 0o666 & ~umask


def test_exclusive_never_replaces(tmp_path: Path) -> None:
    dest = tmp_path / "salt"
    write_atomic(dest, b"first", exclusive=True)
    with pytest.raises(FileExistsError):
        write_atomic(dest, b"second", exclusive=True)
    assert dest.read_bytes() == b"first"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["salt"]


def test_missing_folders_are_made(tmp_path: Path) -> None:
    assert write_atomic(tmp_path / "a/b/c.txt", b"deep").read_bytes() == b"deep"
