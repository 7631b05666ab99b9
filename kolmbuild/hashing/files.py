"""File and directory content IDs, with a stat cache so unchanged files are never re-hashed.

The stat cache is keyed by (path, inode, size, mtime_ns), like DVC's state db. A file touched
without changing its bytes is hashed once and its new stat recorded, so the next run trusts it
again. A directory's CID is the json-codec CID of its sorted listing ``[[relpath, file CID]…]``;
a directory whose whole stat listing is unchanged is not even looked at file by file.
"""

from __future__ import annotations

import errno
import hashlib
import os
import sqlite3
import stat
import threading
from collections.abc import Callable
from pathlib import Path
from typing import BinaryIO, TypeVar

from kolmbuild.hashing.cid import CID, cid_of_json, parse_cid
from kolmbuild.hashing.tree import iter_tree

_BUF = 1 << 20
_T = TypeVar("_T")


def hash_stream(f: BinaryIO, sink: BinaryIO | None = None) -> tuple[bytes, int]:
    """sha2-256 digest and length of what is left in ``f``, in 1 MiB chunks without copies; every
    chunk is also written to ``sink`` when given (a verified copy costs one read)."""
    h = hashlib.sha256()
    buf = bytearray(_BUF)
    view = memoryview(buf)
    size = 0
    while n := f.readinto(buf):  # type: ignore[attr-defined]
        h.update(view[:n])
        if sink is not None:
            sink.write(view[:n])
        size += n
    return h.digest(), size


def hash_file(path: str | os.PathLike[str]) -> bytes:
    """sha2-256 digest of a file's bytes."""
    # O_NONBLOCK: opening a FIFO would otherwise wait for a writer forever; only regular files are read
    fd = os.open(path, os.O_RDONLY | getattr(os, "O_NONBLOCK", 0))
    with open(fd, "rb", buffering=0) as f:
        if not stat.S_ISREG(os.fstat(fd).st_mode):
            raise OSError(errno.EINVAL, "not a regular file (a FIFO, device or socket)", os.fspath(path))
        return hash_stream(f)[0]


def file_cid(path: str | os.PathLike[str]) -> CID:
    return CID("raw", hash_file(path))


def _sig(st: os.stat_result) -> tuple[int, int, int]:
    return (st.st_ino, st.st_size, st.st_mtime_ns)


def dir_listing_cid(entries: list[tuple[str, CID]]) -> CID:
    return cid_of_json({"type": "dir", "entries": [[rel, str(cid)] for rel, cid in entries]})


class StatCache:
    """Persistent (path, inode, size, mtime_ns) → digest cache in a SQLite file.

    Safe for several processes: SQLite serializes writers; every write is one short transaction.
    Safe for the threads of one build (``-j``): one connection, used under a lock. A damaged file
    is started over (see :attr:`rebuilt`): it holds nothing a re-hash cannot recompute.
    """

    def __init__(self, db_path: str | os.PathLike[str]) -> None:
        self.path = Path(db_path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self.hashed = 0  # files actually read this session: tests and `status` report it
        self.rebuilt: str | None = None  # why the file was started over, for a note to the user
        self._lock = threading.RLock()
        try:
            self._db = self._open()
        except sqlite3.DatabaseError as exc:
            if _is_busy(exc):
                raise
            self._db = self._start_over(exc)

    def _open(self) -> sqlite3.Connection:
        db = sqlite3.connect(self.path, timeout=60, isolation_level=None, check_same_thread=False)
        try:
            db.execute("PRAGMA journal_mode=WAL")
            db.execute("PRAGMA synchronous=NORMAL")
            db.execute(
                "CREATE TABLE IF NOT EXISTS files (path TEXT PRIMARY KEY, ino INT, size INT, mtime INT, digest BLOB)"
            )
            db.execute("CREATE TABLE IF NOT EXISTS dirs (path TEXT PRIMARY KEY, sig BLOB, cid TEXT)")
        except BaseException:
            db.close()
            raise
        return db

    def _start_over(self, exc: sqlite3.DatabaseError) -> sqlite3.Connection:
        """The file is damaged. It only caches hashes, so a new empty one loses nothing but time."""
        for suffix in ("", "-wal", "-shm", "-journal"):
            Path(f"{self.path}{suffix}").unlink(missing_ok=True)
        self.rebuilt = f"{self.path}: unreadable ({exc}); started a new one (it only caches file hashes)"
        return self._open()

    def _recovering(self, fn: Callable[[], _T]) -> _T:
        with self._lock:
            try:
                return fn()
            except sqlite3.DatabaseError as exc:
                if _is_busy(exc):
                    raise
                self._db.close()  # an open transaction is discarded with the connection
                self._db = self._start_over(exc)
                return fn()

    def close(self) -> None:
        self._db.close()

    def __enter__(self) -> StatCache:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def file_cid(self, path: str | os.PathLike[str]) -> CID:
        return self._recovering(lambda: self._file_cid(path))

    def dir_cid(self, path: str | os.PathLike[str]) -> CID:
        return self._recovering(lambda: self._dir_cid(path))

    def remember(self, path: str | os.PathLike[str], digest: bytes) -> None:
        """Record ``path``'s digest for its current stat (the caller just hashed it, e.g. the store)."""
        p = os.path.abspath(path)
        st = os.stat(p)
        self._recovering(lambda: self._db.execute("INSERT OR REPLACE INTO files VALUES (?,?,?,?,?)", (p, *_sig(st), digest)))

    def recorded(self, path: str, st: os.stat_result) -> bytes | None:
        """The digest recorded for absolute ``path`` if its stat is still ``st``'s, else None."""
        row = self._recovering(lambda: self._db.execute(
            "SELECT ino, size, mtime, digest FROM files WHERE path=?", (path,)).fetchone())
        return row[3] if row is not None and tuple(row[:3]) == _sig(st) else None

    def forget(self, path: str | os.PathLike[str]) -> None:
        p = os.path.abspath(path)
        self._recovering(lambda: self._db.execute("DELETE FROM files WHERE path=?", (p,)))

    def _file_cid(self, path: str | os.PathLike[str]) -> CID:
        p = os.path.abspath(path)
        st = os.stat(p)
        row = self._db.execute("SELECT ino, size, mtime, digest FROM files WHERE path=?", (p,)).fetchone()
        if row is not None and tuple(row[:3]) == _sig(st):
            return CID("raw", row[3])
        digest = hash_file(p)
        self.hashed += 1
        after = os.stat(p)
        if _sig(after) == _sig(st):  # only trust a stat that did not move while we read
            self._db.execute("INSERT OR REPLACE INTO files VALUES (?,?,?,?,?)", (p, *_sig(st), digest))
        return CID("raw", digest)

    def _dir_cid(self, path: str | os.PathLike[str]) -> CID:
        root = Path(os.path.abspath(path))
        entries = list(iter_tree(root))
        stats = [(rel, e.stat()) for rel, e in entries]
        sig_h = hashlib.sha256()
        for rel, st in stats:
            sig_h.update(f"{rel}\0{st.st_ino}\0{st.st_size}\0{st.st_mtime_ns}\n".encode())
        sig = sig_h.digest()
        row = self._db.execute("SELECT sig, cid FROM dirs WHERE path=?", (str(root),)).fetchone()
        if row is not None and row[0] == sig:
            return parse_cid(row[1])
        prefix = str(root) + os.sep
        known = {
            r[0]: (tuple(r[1:4]), r[4])
            for r in self._db.execute(
                "SELECT path, ino, size, mtime, digest FROM files WHERE path >= ? AND path < ?",
                (prefix, prefix[:-1] + chr(ord(os.sep) + 1)),
            )
        }
        listing: list[tuple[str, CID]] = []
        updates = []
        for rel, st in stats:
            full = str(root / rel)
            hit = known.get(full)
            if hit is not None and hit[0] == _sig(st):
                digest = hit[1]
            else:
                digest = hash_file(full)
                self.hashed += 1
                updates.append((full, *_sig(st), digest))
            listing.append((rel, CID("raw", digest)))
        cid = dir_listing_cid(listing)
        self._db.execute("BEGIN")
        self._db.executemany("INSERT OR REPLACE INTO files VALUES (?,?,?,?,?)", updates)
        self._db.execute("INSERT OR REPLACE INTO dirs VALUES (?,?,?)", (str(root), sig, str(cid)))
        self._db.execute("COMMIT")
        return cid

    def path_cid(self, path: str | os.PathLike[str]) -> CID:
        return self.dir_cid(path) if os.path.isdir(path) else self.file_cid(path)


def _is_busy(exc: sqlite3.DatabaseError) -> bool:
    """A lock held too long is not damage: never start over because another process is busy."""
    return isinstance(exc, sqlite3.OperationalError) and ("locked" in str(exc) or "busy" in str(exc))


class NullStatCache:
    """The no-state stand-in: hashes every time, remembers nothing."""

    hashed = 0

    def file_cid(self, path: str | os.PathLike[str]) -> CID:
        self.hashed += 1
        return file_cid(path)

    def dir_cid(self, path: str | os.PathLike[str]) -> CID:
        listing = []
        for rel, entry in iter_tree(Path(path)):
            self.hashed += 1
            listing.append((rel, file_cid(entry.path)))
        return dir_listing_cid(listing)

    def path_cid(self, path: str | os.PathLike[str]) -> CID:
        return self.dir_cid(path) if os.path.isdir(path) else self.file_cid(path)

    def close(self) -> None:
        pass
