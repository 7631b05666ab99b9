from __future__ import annotations

import hashlib
import os
from pathlib import Path

from kolmbuild.hashing.files import NullStatCache, StatCache, hash_file


def test_hash_file_matches_hashlib(tmp_path: Path) -> None:
    p = tmp_path / "f"
    data = os.urandom(3 * (1 << 20) + 17)
    p.write_bytes(data)
    assert hash_file(p) == hashlib.sha256(data).digest()


def test_unchanged_file_is_not_rehashed_and_touch_hashes_once(tmp_path: Path) -> None:
    p = tmp_path / "f.txt"
    p.write_text("hello")
    db = tmp_path / "stat.db"
    with StatCache(db) as sc:
        first = sc.file_cid(p)
        assert sc.hashed == 1
        assert sc.file_cid(p) == first
        assert sc.hashed == 1
    os.utime(p, ns=(1, 1_000_000_000))  # touch: same bytes, new mtime
    with StatCache(db) as sc:
        assert sc.file_cid(p) == first
        assert sc.hashed == 1  # hashed once for the new stat…
    with StatCache(db) as sc:
        assert sc.file_cid(p) == first
        assert sc.hashed == 0  # …and trusted from then on


def test_dir_cid_rehashes_only_changed_files(tmp_path: Path) -> None:
    d = tmp_path / "corpus"
    (d / "sub").mkdir(parents=True)
    for i in range(20):
        (d / f"f{i}.txt").write_text(f"doc {i}")
    (d / "sub" / "g.txt").write_text("nested")
    (d / ".hidden").write_text("ignored")
    db = tmp_path / "stat.db"
    with StatCache(db) as sc:
        c1 = sc.dir_cid(d)
        assert sc.hashed == 21
    with StatCache(db) as sc:
        assert sc.dir_cid(d) == c1
        assert sc.hashed == 0
    (d / "f3.txt").write_text("changed")
    with StatCache(db) as sc:
        c2 = sc.dir_cid(d)
        assert c2 != c1
        assert sc.hashed == 1
    assert NullStatCache().dir_cid(d) == c2
    (d / ".hidden").write_text("still ignored")
    with StatCache(db) as sc:
        assert sc.dir_cid(d) == c2


def test_a_damaged_stat_db_is_started_over_and_says_so(tmp_path: Path) -> None:
    p = tmp_path / "f.txt"
    p.write_text("hello")
    db = tmp_path / "stat.db"
    with StatCache(db) as sc:
        first = sc.file_cid(p)
    assert StatCache(db).rebuilt is None
    db.write_bytes(b"garbage, not SQLite\n" * 100)
    with StatCache(db) as sc:
        assert sc.rebuilt is not None and "stat.db: unreadable (file is not a database)" in sc.rebuilt
        assert sc.file_cid(p) == first and sc.hashed == 1  # re-hashed: the cache was lost, nothing else
        assert sc.file_cid(p) == first and sc.hashed == 1


def test_hash_stream_copies_what_it_hashes(tmp_path: Path) -> None:
    import io

    from kolmbuild.hashing.files import hash_stream

    data = os.urandom(2 * (1 << 20) + 5)
    src = tmp_path / "src"
    src.write_bytes(data)
    sink = io.BytesIO()
    with open(src, "rb", buffering=0) as f:
        digest, size = hash_stream(f, sink)
    assert digest == hashlib.sha256(data).digest() and size == len(data) and sink.getvalue() == data
