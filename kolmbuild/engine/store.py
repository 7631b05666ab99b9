"""The content-addressed store under ``cache/`` and the record of finished stage runs.

Objects live at ``cache/objects/<last 2 chars>/<CID>``, read-only, moved in by rename from the
stage's work folder (or copied, when the output is hard-linked elsewhere), so a reader sees a
whole object or none. A run record (stage key → output CIDs and sizes, metrics) is committed to
``cache/state.db`` only after every output is in the store: a build killed at any point leaves
either a complete entry or nothing, never a poisoned one.

Integrity: an object's name is its content's hash, but a file in a folder can still be edited,
truncated or rot. So :meth:`Store.has` checks the recorded size, :meth:`Store.intact` also asks
the stat cache (a changed stat means a re-hash), :meth:`Store.put` checks the content of an object
already there, and every object the engine hands to a stage or installs is re-hashed on the way
(:meth:`Store.verify`, :meth:`Store.copy_to`). A mismatch drops the object and raises
:class:`~kolmbuild.errors.CorruptObject`; the engine then rebuilds what made it.

Every object read and write goes through these few methods, so a remote cache sits behind the
same interface: with ``remote`` set (an :class:`ObjectSource`, kolmbuild.remote.RemoteCache), an
object missing here is fetched from it by CID, re-hashed on the way, before it is read. A run record
pulled from a remote (``origin`` set) may name objects that were never downloaded: only what a stage
reads or the install copies is fetched (as Bazel's remote builds "without the bytes").
"""

from __future__ import annotations

import json
import os
import re
import shutil
import sqlite3
import stat
import threading
import time
import uuid
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, BinaryIO, Protocol, TypeVar

from kolmbuild.atomic import atomic_writer, commit
from kolmbuild.engine.faults import Faults
from kolmbuild.engine.lock import KeyLocks
from kolmbuild.engine.stage import NullProgress, Progress
from kolmbuild.errors import BuildFailed, CorruptObject, LockTimeout, StateCorrupt
from kolmbuild.hashing.cid import CID, parse_cid
from kolmbuild.hashing.files import StatCache, hash_stream

_CID_NAME = re.compile(r"b[a-z2-7]{50,70}")
_T = TypeVar("_T")


@dataclass(frozen=True)
class RunRecord:
    key: str
    stage: str
    outputs: Mapping[str, str]
    metrics: Mapping[str, Any] = field(default_factory=dict)
    duration_s: float = 0.0
    sizes: Mapping[str, int] = field(default_factory=dict)  # CID -> bytes (empty for pre-size records)
    origin: str | None = None  # the remote cache it was pulled from (its outputs may not be here)


@dataclass(frozen=True)
class Stored:
    cid: str
    size: int


@dataclass(frozen=True)
class BadObject:
    """An entry of ``cache/objects/`` that failed ``cache verify`` (and was removed)."""

    name: str
    problem: str
    size: int

    def to_json(self) -> dict[str, Any]:
        return {"name": self.name, "problem": self.problem, "size": self.size}


class ObjectSource(Protocol):
    """Where a missing object can be fetched from by its CID (a remote cache)."""

    def fetch_object(self, cid: str, sink: BinaryIO) -> int:
        """Write the object's bytes to ``sink``, checked against ``cid``; FileNotFoundError when it is
        not there, CorruptObject when its bytes do not match."""
        ...


def _open_regular(path: Path) -> tuple[int, os.stat_result]:
    """An fd on ``path`` that is a regular file, never following a symbolic link."""
    fd = os.open(path, os.O_RDONLY | getattr(os, "O_NOFOLLOW", 0))
    st = os.fstat(fd)
    if not stat.S_ISREG(st.st_mode):
        os.close(fd)
        raise IsADirectoryError(f"{path}: not a regular file")
    return fd, st


class Store:
    def __init__(self, cache_dir: Path, *, stats: StatCache | None = None, faults: Faults | None = None,
                 remote: ObjectSource | None = None) -> None:
        self.root = cache_dir
        self.objects = cache_dir / "objects"
        self._objects = os.path.abspath(self.objects)
        self._digests: dict[str, bytes] = {}  # CID -> digest, decoded once (base32 is slow in Python)
        self.tmp = cache_dir / "tmp"
        self.stats = stats
        self.faults = faults or Faults()
        self._storing = KeyLocks()
        self.remote = remote
        self.objects.mkdir(parents=True, exist_ok=True)
        self.tmp.mkdir(parents=True, exist_ok=True)

    # ------------------------------------------------------------------ where and whether

    def path_of(self, cid: str) -> Path:
        return Path(self._where(cid))

    def _where(self, cid: str) -> str:
        if not _CID_NAME.fullmatch(cid):  # a tampered record must not name a path outside the store
            raise StateCorrupt(f"{self.root / 'state.db'}: a run record names {cid!r}, which is not a CID")
        return os.path.join(self._objects, cid[-2:], cid)  # str, not Path: status calls this per output

    def _lstat(self, cid: str, size: int | None) -> os.stat_result | None:
        try:
            st = os.lstat(self._where(cid))
        except OSError:
            return None
        return st if stat.S_ISREG(st.st_mode) and (size is None or st.st_size == size) else None

    def has(self, cid: str, size: int | None = None) -> bool:
        """A regular file is stored under ``cid`` (of ``size`` bytes, when the size is known)."""
        return self._lstat(cid, size) is not None

    def exists(self, cid: str) -> bool:
        """Anything at all is stored under ``cid`` (intact or not)."""
        return os.path.lexists(self.path_of(cid))

    def intact(self, cid: str, size: int | None = None) -> bool:
        """:meth:`has`, and the content still hashes to ``cid``: trusted from the stat cache while the
        object's (inode, size, mtime) is unchanged, re-hashed once when it moved."""
        st = self._lstat(cid, size)
        if st is None or self.stats is None:
            return st is not None
        want = self._digests.get(cid)
        if want is None:
            want = self._digests[cid] = parse_cid(cid).digest
        path = self._where(cid)
        got = self.stats.recorded(path, st)
        if got is None:
            try:
                got = self.stats.file_cid(path).digest
            except OSError:
                return False
        return got == want

    # ------------------------------------------------------------------ writing

    def put(self, src: Path) -> Stored:
        """Move ``src`` (a regular file; it is consumed) into the store; return its CID and size.

        A symbolic link is refused: storing the link would make the "object" follow its target,
        and making it read-only would chmod the target. A file with other hard links is copied,
        never moved, for the same reasons. An object already stored under the CID is kept only if
        its content really is that CID; a damaged one is replaced.
        """
        try:
            fd, st = _open_regular(src)
        except OSError as exc:
            why = "a symbolic link" if src.is_symlink() else "not a regular file"
            raise BuildFailed(f"{src.name}: the output is {why}; a stage's outputs must be plain files") from exc
        try:
            with os.fdopen(fd, "rb", buffering=0, closefd=False) as f:
                digest, size = hash_stream(f)
            cid = str(CID("raw", digest))
            dest = self.path_of(cid)
            with self._storing.hold(cid):  # two stages (or sweep points) of this process storing the same bytes
                if self._holds(dest, cid, size):
                    src.unlink()
                    return Stored(cid, size)
                dest.parent.mkdir(parents=True, exist_ok=True)
                if st.st_nlink != 1 or not self._move(fd, st, src, dest):
                    self._copy_in(fd, src, dest, digest)
        finally:
            os.close(fd)
        self.faults.hit("after-put")
        if self.stats is not None:
            self.stats.remember(dest, digest)
        return Stored(cid, size)

    def _move(self, fd: int, st: os.stat_result, src: Path, dest: Path) -> bool:
        """Rename ``src`` to ``dest`` (read-only, fsynced); False when a copy must be made instead."""
        os.fchmod(fd, 0o444)  # through the fd we checked: never through a link swapped in since
        os.fsync(fd)
        try:
            commit(src, dest)
        except OSError:  # another file system (cache/tmp made a link elsewhere): copy instead
            return False
        moved = os.lstat(dest)
        if moved.st_ino != st.st_ino or moved.st_dev != st.st_dev:  # src was swapped after we opened it
            dest.unlink(missing_ok=True)
            raise BuildFailed(f"{src.name}: the output changed while it was being stored")
        return True

    def _copy_in(self, fd: int, src: Path, dest: Path, digest: bytes) -> None:
        os.lseek(fd, 0, os.SEEK_SET)
        with os.fdopen(fd, "rb", buffering=0, closefd=False) as f, atomic_writer(dest, mode=0o444) as out:
            again, _ = hash_stream(f, out)
            if again != digest:
                raise BuildFailed(f"{src.name}: the output changed while it was being stored")
        src.unlink(missing_ok=True)

    def _holds(self, dest: Path, cid: str, size: int) -> bool:
        """``dest`` is a stored object whose bytes really are ``cid`` (re-hashed: it costs what
        storing cost, and a damaged object must not survive a rebuild that made the right bytes)."""
        try:
            fd, st = _open_regular(dest)
        except OSError:
            return False
        try:
            if st.st_size != size:
                return False
            with os.fdopen(fd, "rb", buffering=0, closefd=False) as f:
                return str(CID("raw", hash_stream(f)[0])) == cid
        finally:
            os.close(fd)

    # ------------------------------------------------------------------ reading, verified

    def verify(self, cid: str) -> int:
        """Re-hash the object; return its size. A mismatch drops it and raises CorruptObject."""
        return self._read(cid, None)

    def copy_to(self, cid: str, sink: BinaryIO) -> int:
        """Write the object's bytes to ``sink`` while re-hashing them (one read). On a mismatch the
        object is dropped and CorruptObject raised: the caller must discard what it wrote."""
        return self._read(cid, sink)

    def fetch(self, cid: str) -> bool:
        """Download object ``cid`` from the remote into the store (checked against its CID while it
        is written, renamed into place only when it matches). False when there is no remote or it
        does not have the object; CorruptObject when the remote's bytes are damaged."""
        if self.remote is None:
            return False
        dest = self.path_of(cid)
        dest.parent.mkdir(parents=True, exist_ok=True)
        with self._storing.hold(cid):  # two sweep points reading the same pulled object download it once
            if self.has(cid):
                return True
            try:
                with atomic_writer(dest, mode=0o444) as f:
                    self.remote.fetch_object(cid, f)
            except FileNotFoundError:
                return False
        return True

    def _read(self, cid: str, sink: BinaryIO | None) -> int:
        path = self.path_of(cid)
        try:
            fd, _ = _open_regular(path)
        except FileNotFoundError:
            if not self.fetch(cid):
                where = " nor in the remote cache" if self.remote is not None else ""
                raise CorruptObject(f"cache object {cid} is missing from {self.objects}{where}", cid=cid) from None
            fd, _ = _open_regular(path)
        except OSError as exc:
            self.drop(cid)
            raise CorruptObject(f"cache object {cid} is not a regular file ({exc.strerror or exc}): removed",
                                cid=cid) from exc
        with os.fdopen(fd, "rb", buffering=0) as f:
            digest, size = hash_stream(f, sink)
        got = str(CID("raw", digest))
        if got != cid:
            self.drop(cid)
            raise CorruptObject(f"cache object {cid} was damaged (its {size} bytes hash to {got}): removed", cid=cid)
        if self.stats is not None:
            self.stats.remember(path, digest)
        return size

    def drop(self, cid: str) -> None:
        self.remove_entry(self.path_of(cid))

    def remove_entry(self, path: Path) -> None:
        """Remove a file (or a stray folder) under ``objects/`` whatever its name."""
        if path.is_dir() and not path.is_symlink():
            shutil.rmtree(path, ignore_errors=True)
        else:
            path.unlink(missing_ok=True)
        if self.stats is not None:
            self.stats.forget(path)

    # ------------------------------------------------------------------ the whole store

    def iter_objects(self) -> Iterator[Path]:
        for sub in self.objects.iterdir():
            if sub.is_dir():
                yield from (p for p in sub.iterdir() if p.is_file() and not p.name.startswith("."))

    def check_all(self, progress: Progress | None = None) -> tuple[int, int, list[BadObject]]:
        """Re-hash every object; remove and list what is not an intact object under its own name.

        Returns (objects checked, bytes read, bad entries). Temp files of running builds
        (dot-names) are left alone: the caller holds the cache lock, so none are being written.
        """
        progress = progress or NullProgress()
        entries: list[Path] = []
        for sub in sorted(self.objects.iterdir()):
            if sub.is_dir() and not sub.is_symlink():
                entries.extend(sorted(p for p in sub.iterdir() if not p.name.startswith(".")))
            else:
                entries.append(sub)
        progress.start("verifying the cache", total=len(entries))
        bad: list[BadObject] = []
        checked = total = 0
        for p in entries:
            rel = str(p.relative_to(self.objects))
            problem, size = self._check_entry(p)
            checked += 1
            total += size
            if problem:
                bad.append(BadObject(rel, problem, size))
                self.remove_entry(p)
            progress.advance(1)
        return checked, total, bad

    def _check_entry(self, p: Path) -> tuple[str, int]:
        name = p.name
        if p.parent == self.objects:
            return "not inside a two-character folder", 0
        if not _CID_NAME.fullmatch(name):
            return "its name is not a CID", 0
        if p.parent.name != name[-2:]:
            return f"in folder {p.parent.name}/, not {name[-2:]}/", 0
        try:
            fd, st = _open_regular(p)
        except OSError:
            return "not a regular file (a link or a folder)", 0
        with os.fdopen(fd, "rb", buffering=0) as f:
            digest, size = hash_stream(f)
        got = str(CID("raw", digest))
        if got != name:
            return f"content hashes to {got}", size
        if self.stats is not None:
            self.stats.remember(p, digest)
        return "", size

    # ------------------------------------------------------------------ work folders

    def new_workdir(self, label: str) -> Path:
        d = self.tmp / f"{label}-{os.getpid()}-{uuid.uuid4().hex[:8]}"
        d.mkdir(parents=True)
        return d

    def sweep_tmp(self, older_than_s: float = 3600.0) -> int:
        """Remove work folders and temp files left by killed builds."""
        removed = 0
        now = time.time()
        for p in list(self.tmp.iterdir()):
            if now - p.lstat().st_mtime > older_than_s:
                shutil.rmtree(p, ignore_errors=True) if p.is_dir() and not p.is_symlink() else p.unlink(missing_ok=True)
                removed += 1
        for sub in self.objects.iterdir():
            for p in sub.glob(".*.tmp"):
                if now - p.lstat().st_mtime > older_than_s:
                    p.unlink(missing_ok=True)
                    removed += 1
        return removed


class RunDB:
    """Finished runs by stage key, and the last key seen per (target, stage) for `status`.

    Unlike the stat cache this file is not rebuildable from what is on disk (it says which
    outputs a key made), so a damaged one stops the build with exit 2 and says what to do,
    rather than being silently started over (which would rerun every stage, paid ones too).
    """

    def __init__(self, path: Path) -> None:
        self.path = path
        path.parent.mkdir(parents=True, exist_ok=True)
        self._lock = threading.Lock()  # stages of a -j build record from worker threads
        self._db = sqlite3.connect(path, timeout=60, isolation_level=None, check_same_thread=False)
        try:
            with self._guard():
                self._db.execute("PRAGMA journal_mode=WAL")
                self._db.execute(
                    "CREATE TABLE IF NOT EXISTS runs (key TEXT PRIMARY KEY, stage TEXT, outputs TEXT,"
                    " metrics TEXT, duration REAL, created REAL, sizes TEXT, origin TEXT)"
                )
                self._db.execute(
                    "CREATE TABLE IF NOT EXISTS last (target TEXT, stage TEXT, key TEXT, doc TEXT,"
                    " PRIMARY KEY (target, stage))"
                )
                columns = {r[1] for r in self._db.execute("PRAGMA table_info(runs)")}
                # a cache from before sizes / pulled records were recorded
                for column in ("sizes", "origin"):
                    if column in columns:
                        continue
                    try:
                        self._db.execute(f"ALTER TABLE runs ADD COLUMN {column} TEXT")
                    except sqlite3.OperationalError as exc:
                        if "duplicate column" not in str(exc):  # another process added it first
                            raise
        except BaseException:
            self._db.close()
            raise

    @contextmanager
    def _guard(self) -> Iterator[None]:
        try:
            yield
        except sqlite3.ProgrammingError:  # our bug (a closed connection), not the file's
            raise
        except sqlite3.OperationalError as exc:
            if "locked" in str(exc) or "busy" in str(exc):
                raise LockTimeout(f"{self.path}: {exc}") from exc
            raise self._corrupt(exc) from exc
        except (sqlite3.DatabaseError, ValueError, TypeError, KeyError) as exc:
            raise self._corrupt(exc) from exc

    def _corrupt(self, exc: BaseException) -> StateCorrupt:
        return StateCorrupt(
            f"{self.path}: cannot be read as kolmbuild's run records ({exc})",
            hint=f"move it aside (mv {self.path} {self.path}.bad) to start over: every stage then runs "
                 "again, and outputs already in cache/objects are reused",
        )

    def _q(self, fn: Callable[[], _T]) -> _T:
        with self._guard():
            return fn()

    def close(self) -> None:
        self._db.close()

    def get(self, key: str) -> RunRecord | None:
        def read() -> RunRecord | None:
            row = self._db.execute(
                "SELECT stage, outputs, metrics, duration, sizes, origin FROM runs WHERE key=?", (key,)).fetchone()
            if row is None:
                return None
            outputs = json.loads(row[1])
            if not isinstance(outputs, dict) or not all(isinstance(v, str) for v in outputs.values()):
                raise ValueError(f"the record of {key} has malformed outputs")
            sizes = json.loads(row[4]) if row[4] else {}
            return RunRecord(key, row[0], outputs, json.loads(row[2]), row[3], sizes, row[5])

        return self._q(read)

    def put(self, rec: RunRecord) -> None:
        row = (rec.key, rec.stage, json.dumps(dict(rec.outputs), sort_keys=True),
               json.dumps(dict(rec.metrics), sort_keys=True), rec.duration_s, time.time(),
               json.dumps(dict(rec.sizes), sort_keys=True), rec.origin)
        with self._lock:
            self._q(lambda: self._db.execute(
                "INSERT OR REPLACE INTO runs (key, stage, outputs, metrics, duration, created, sizes, origin)"
                " VALUES (?,?,?,?,?,?,?,?)", row))

    def last(self, target: str, stage: str) -> tuple[str, dict[str, Any]] | None:
        row = self._q(lambda: self._db.execute(
            "SELECT key, doc FROM last WHERE target=? AND stage=?", (target, stage)).fetchone())
        return (row[0], self._q(lambda: json.loads(row[1]))) if row else None

    def set_last(self, target: str, stage: str, key: str, doc: Mapping[str, Any]) -> None:
        row = (target, stage, key, json.dumps(doc, sort_keys=True))
        with self._lock:
            self._q(lambda: self._db.execute("INSERT OR REPLACE INTO last VALUES (?,?,?,?)", row))

    def referenced_cids(self, keys: set[str]) -> set[str]:
        out: set[str] = set()
        for key in keys:
            rec = self.get(key)
            if rec:
                out.update(rec.outputs.values())
        return out

    def all_last_keys(self) -> set[str]:
        return self._q(lambda: {r[0] for r in self._db.execute("SELECT key FROM last")})

    def drop_runs_except(self, keep: set[str]) -> int:
        rows = self._q(lambda: [r[0] for r in self._db.execute("SELECT key FROM runs")])
        gone = [k for k in rows if k not in keep]
        with self._lock:
            self._q(lambda: self._db.executemany("DELETE FROM runs WHERE key=?", [(k,) for k in gone]))
        return len(gone)

    def drop_runs_using(self, cids: set[str], *, pulled_only: bool = False) -> int:
        """Delete the run records that name any of ``cids`` among their outputs (``pulled_only``:
        only records pulled from a remote cache, whose outputs may be absent here)."""
        if not cids:
            return 0
        def named() -> list[str]:
            rows = self._db.execute("SELECT key, outputs, origin FROM runs").fetchall()
            return [k for k, outputs, origin in rows
                    if (origin or not pulled_only) and cids & set(json.loads(outputs).values())]

        gone = self._q(named)
        with self._lock:
            self._q(lambda: self._db.executemany("DELETE FROM runs WHERE key=?", [(k,) for k in gone]))
        return len(gone)
