"""The content-addressed store under ``cache/`` and the record of finished stage runs.

Objects live at ``cache/objects/<2 chars>/<CID>``, written by rename from a temp file in the same
folder, so a reader sees a whole object or none. A run record (stage key → output CIDs, metrics) is
committed to ``cache/state.db`` only after every output is in the store: a build killed at any
point leaves either a complete entry or nothing, never a poisoned one.
"""

from __future__ import annotations

import json
import os
import shutil
import sqlite3
import threading
import time
import uuid
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from kolmbuild.hashing.cid import CID
from kolmbuild.hashing.files import hash_file


@dataclass(frozen=True)
class RunRecord:
    key: str
    stage: str
    outputs: Mapping[str, str]
    metrics: Mapping[str, Any] = field(default_factory=dict)
    duration_s: float = 0.0


class Store:
    def __init__(self, cache_dir: Path) -> None:
        self.root = cache_dir
        self.objects = cache_dir / "objects"
        self.tmp = cache_dir / "tmp"
        self.objects.mkdir(parents=True, exist_ok=True)
        self.tmp.mkdir(parents=True, exist_ok=True)

    def path_of(self, cid: str) -> Path:
        return self.objects / cid[-2:] / cid

    def has(self, cid: str) -> bool:
        return self.path_of(cid).is_file()

    def put(self, src: Path) -> str:
        """Move ``src`` into the store (it is consumed); return its CID string."""
        cid = str(CID("raw", hash_file(src)))
        dest = self.path_of(cid)
        if dest.is_file():
            src.unlink()
            return cid
        dest.parent.mkdir(parents=True, exist_ok=True)
        tmp = dest.parent / f".{cid}.{uuid.uuid4().hex}.tmp"
        try:
            shutil.move(str(src), tmp)
            os.chmod(tmp, 0o444)
            os.replace(tmp, dest)
        finally:
            if tmp.exists():
                tmp.unlink()
        return cid

    def new_workdir(self, label: str) -> Path:
        d = self.tmp / f"{label}-{os.getpid()}-{uuid.uuid4().hex[:8]}"
        d.mkdir(parents=True)
        return d

    def iter_objects(self) -> Iterator[Path]:
        for sub in self.objects.iterdir():
            if sub.is_dir():
                yield from (p for p in sub.iterdir() if p.is_file() and not p.name.startswith("."))

    def sweep_tmp(self, older_than_s: float = 3600.0) -> int:
        """Remove work folders and temp files left by killed builds."""
        removed = 0
        now = time.time()
        for p in list(self.tmp.iterdir()):
            if now - p.stat().st_mtime > older_than_s:
                shutil.rmtree(p, ignore_errors=True) if p.is_dir() else p.unlink(missing_ok=True)
                removed += 1
        for sub in self.objects.iterdir():
            for p in sub.glob(".*.tmp"):
                if now - p.stat().st_mtime > older_than_s:
                    p.unlink(missing_ok=True)
                    removed += 1
        return removed


class RunDB:
    """Finished runs by stage key, and the last key seen per (target, stage) for `status`."""

    def __init__(self, path: Path) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        self._db = sqlite3.connect(path, timeout=60, isolation_level=None, check_same_thread=False)
        self._lock = threading.Lock()  # stages of a -j build record from worker threads
        self._db.execute("PRAGMA journal_mode=WAL")
        self._db.execute(
            "CREATE TABLE IF NOT EXISTS runs (key TEXT PRIMARY KEY, stage TEXT, outputs TEXT,"
            " metrics TEXT, duration REAL, created REAL)"
        )
        self._db.execute(
            "CREATE TABLE IF NOT EXISTS last (target TEXT, stage TEXT, key TEXT, doc TEXT,"
            " PRIMARY KEY (target, stage))"
        )

    def close(self) -> None:
        self._db.close()

    def get(self, key: str) -> RunRecord | None:
        row = self._db.execute("SELECT stage, outputs, metrics, duration FROM runs WHERE key=?", (key,)).fetchone()
        if row is None:
            return None
        return RunRecord(key, row[0], json.loads(row[1]), json.loads(row[2]), row[3])

    def put(self, rec: RunRecord) -> None:
        with self._lock:
            self._put(rec)

    def _put(self, rec: RunRecord) -> None:
        self._db.execute(
            "INSERT OR REPLACE INTO runs VALUES (?,?,?,?,?,?)",
            (rec.key, rec.stage, json.dumps(dict(rec.outputs), sort_keys=True),
             json.dumps(dict(rec.metrics), sort_keys=True), rec.duration_s, time.time()),
        )

    def last(self, target: str, stage: str) -> tuple[str, dict[str, Any]] | None:
        row = self._db.execute("SELECT key, doc FROM last WHERE target=? AND stage=?", (target, stage)).fetchone()
        return (row[0], json.loads(row[1])) if row else None

    def set_last(self, target: str, stage: str, key: str, doc: Mapping[str, Any]) -> None:
        with self._lock:
            self._db.execute(
                "INSERT OR REPLACE INTO last VALUES (?,?,?,?)", (target, stage, key, json.dumps(doc, sort_keys=True))
            )

    def referenced_cids(self, keys: set[str]) -> set[str]:
        out: set[str] = set()
        for key in keys:
            rec = self.get(key)
            if rec:
                out.update(rec.outputs.values())
        return out

    def all_last_keys(self) -> set[str]:
        return {r[0] for r in self._db.execute("SELECT key FROM last")}

    def drop_runs_except(self, keep: set[str]) -> int:
        rows = [r[0] for r in self._db.execute("SELECT key FROM runs")]
        gone = [k for k in rows if k not in keep]
        self._db.executemany("DELETE FROM runs WHERE key=?", [(k,) for k in gone])
        return len(gone)
