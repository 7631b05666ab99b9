"""Damaged cache databases and unusable install paths give a located exit 2 (or, for the stat
cache, which only caches hashes, a note and a fresh file), never a traceback."""

from __future__ import annotations

import os
from pathlib import Path

from tests.engine.conftest import ARTIFACT


def _garble(path: Path) -> None:
    for suffix in ("-wal", "-shm"):
        Path(f"{path}{suffix}").unlink(missing_ok=True)
    path.write_bytes(b"this is not an SQLite database, it was overwritten\n" * 40)


def test_a_corrupt_state_db_stops_with_exit_2_and_says_what_to_do(packed) -> None:
    assert packed.kolmbuild().returncode == 0
    (packed.root / ARTIFACT).unlink()  # so the no-op stamp cannot answer
    _garble(packed.root / "cache/state.db")
    for args in ((), ("status",), ("gc",)):
        r = packed.kolmbuild(*args)
        assert r.returncode == 2, (args, r.stderr)
        assert "cache/state.db: cannot be read as kolmbuild's run records (file is not a database)" in r.stderr
        assert "hint: move it aside (mv " in r.stderr and "Traceback" not in r.stderr
    assert not (packed.root / ARTIFACT).exists()


def test_a_state_db_with_damaged_records_is_located_too(packed) -> None:
    import sqlite3

    assert packed.kolmbuild().returncode == 0
    (packed.root / ARTIFACT).unlink()
    db = sqlite3.connect(packed.root / "cache/state.db")
    db.execute("UPDATE runs SET outputs='{not json' WHERE stage='echo'")
    db.commit()
    db.close()
    r = packed.kolmbuild()
    assert r.returncode == 2, r.stderr
    assert "cache/state.db: cannot be read as kolmbuild's run records" in r.stderr and "Traceback" not in r.stderr


def test_a_corrupt_stat_db_is_started_over_with_a_note(packed) -> None:
    assert packed.kolmbuild().returncode == 0
    ref = (packed.root / ARTIFACT).read_bytes()
    packed.reset_runs()
    (packed.root / ARTIFACT).unlink()
    _garble(packed.root / "cache/stat.db")
    r = packed.kolmbuild()
    assert r.returncode == 0, r.stderr
    assert "note: " in r.stderr and "stat.db: unreadable (file is not a database); started a new one" in r.stderr
    assert packed.runs() == []  # inputs and objects were re-hashed, found unchanged: nothing reran
    assert (packed.root / ARTIFACT).read_bytes() == ref
    r = packed.kolmbuild("status")
    assert r.returncode == 0 and "note" not in r.stderr


def test_an_install_path_that_is_a_folder_is_refused_before_anything_runs(packed, tmp_path: Path) -> None:
    folder = tmp_path / "a-folder.kolm"
    folder.mkdir()
    r = packed.kolmbuild("--out", str(folder))
    assert r.returncode == 2 and str(folder) in r.stderr and "Traceback" not in r.stderr
    r = packed.kolmbuild(f"out={folder}")  # the same through the override (or the kolmfile's out:)
    assert r.returncode == 2, r.stderr
    assert f"{folder}: the artifact's install path (out / --out) is a folder; name a file" in r.stderr
    assert packed.runs() == []  # refused before any stage ran


def test_an_install_path_under_a_file_is_refused(packed, tmp_path: Path) -> None:
    blocker = tmp_path / "plain-file"
    blocker.write_text("x")
    r = packed.kolmbuild("--out", str(blocker / "demo.kolm"))
    assert r.returncode == 2, r.stderr
    assert f"{blocker / 'demo.kolm'}: cannot install the artifact there: {blocker} is not a folder" in r.stderr
    assert "Traceback" not in r.stderr


def test_an_install_path_in_a_read_only_folder_is_refused(packed, tmp_path: Path) -> None:
    if os.geteuid() == 0:  # root writes anywhere: the check is os.access, as for any user
        ro = Path("/proc/self")  # a folder nobody can create files in, root included
    else:
        ro = tmp_path / "ro"
        ro.mkdir()
        os.chmod(ro, 0o555)
    r = packed.kolmbuild("--out", str(ro / "demo.kolm"))
    assert r.returncode == 2, r.stderr
    assert str(ro / "demo.kolm") in r.stderr and "cannot install the artifact there" in r.stderr
    assert "Traceback" not in r.stderr
