"""The drift log: inputs no recipe covered, appended locally so the next compile can fold them in.

Where: ``$KOLM_STATE_DIR/drift/<target>.jsonl``; without ``KOLM_STATE_DIR``,
``$XDG_STATE_HOME/kolmbuild/drift/<target>.jsonl``, else ``~/.local/state/kolmbuild/drift/<target>.jsonl``.
One canonical JSON object per line: ``{"artifact": manifest CID, "input": …, "route": "model"|"none",
"target": …, "ts": unix seconds}``. Each line is written with one ``write`` on an ``O_APPEND``
descriptor under an exclusive ``flock``, so concurrent runs and serve threads never interleave.
The log holds user inputs: it stays on this machine, never goes into an artifact or a receipt.

Coming back (``kolmbuild drift list|accept|clear``): :func:`summarize` groups the log by input
(count, first and last seen, routes, an ``id`` = the first 12 hex digits of the sha256 of the
input's canonical JSON). :func:`accept` appends chosen inputs as ``{"input": …}`` lines to the
task's unlabelled file (``task.unlabeled``) and takes them off the log; that file is an input of
the ingest stage, so the next build (and ``status``/``-n`` before it) reruns what reads it, and the
teacher labels the inputs — the only way a logged input ever leaves this machine, and only when a
teacher is configured. :func:`clear` takes entries off the log without keeping them.
"""

from __future__ import annotations

import fcntl
import hashlib
import json
import os
import re
import time
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from kolmbuild.atomic import write_atomic
from kolmbuild.config.models import ShapeSpec, TaskSpec
from kolmbuild.data.examples import load_unlabeled
from kolmbuild.errors import ConfigError, UserInputError
from kolmbuild.hashing import canonical_json
from kolmbuild.userconfig import state_dir

_SAFE = re.compile(r"[^A-Za-z0-9._-]+")


def drift_log_path(target: str) -> Path:
    name = _SAFE.sub("_", target).strip("._") or "target"
    return state_dir() / "drift" / f"{name}.jsonl"


def _jsonable(value: Any) -> Any:
    try:
        canonical_json(value)
        return value
    except (TypeError, ValueError):
        return repr(value)


@dataclass(frozen=True)
class DriftLog:
    path: Path
    target: str
    artifact: str | None = None

    def append(self, inputs: Iterable[tuple[Any, str]]) -> int:
        """Append ``(input, route)`` pairs; returns how many lines were written."""
        now = int(time.time())
        lines = [
            canonical_json(
                {"artifact": self.artifact, "input": _jsonable(value), "route": route, "target": self.target, "ts": now}
            )
            + b"\n"
            for value, route in inputs
        ]
        if not lines:
            return 0
        self.path.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(self.path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX)
            os.write(fd, b"".join(lines))
        finally:
            os.close(fd)  # closing releases the lock
        return len(lines)


def _records(text: str) -> list[dict[str, Any]]:
    rows: list[dict[str, Any]] = []
    for line in text.splitlines():
        try:
            row = json.loads(line)
        except (json.JSONDecodeError, RecursionError):
            continue
        if isinstance(row, dict) and "input" in row:
            rows.append(row)
    return rows


def read_drift(path: Path) -> list[dict[str, Any]]:
    """The log's records (lines that do not parse, e.g. from a crash mid-line, are skipped)."""
    if not path.exists():
        return []
    return _records(path.read_text(encoding="utf-8", errors="replace"))


def input_id(value: Any) -> str:
    """A short, stable name for a logged input: 12 hex digits of the sha256 of its canonical JSON."""
    return hashlib.sha256(canonical_json(_jsonable(value))).hexdigest()[:12]


@dataclass(frozen=True)
class DriftEntry:
    """One distinct logged input."""

    id: str
    input: Any
    count: int
    first_seen: int
    last_seen: int
    routes: dict[str, int] = field(default_factory=dict)
    artifacts: int = 0  # distinct artifacts that logged it

    def to_json(self) -> dict[str, Any]:
        return {"id": self.id, "input": self.input, "count": self.count, "first_seen": self.first_seen,
                "last_seen": self.last_seen, "routes": dict(sorted(self.routes.items())), "artifacts": self.artifacts}  # fmt: skip


def summarize(rows: Iterable[dict[str, Any]]) -> list[DriftEntry]:
    """Records grouped by input, in order of first appearance in the log."""
    groups: dict[str, dict[str, Any]] = {}
    for row in rows:
        key = input_id(row["input"])
        ts = row.get("ts") if isinstance(row.get("ts"), int) else 0
        g = groups.setdefault(key, {"input": row["input"], "count": 0, "first": ts, "last": ts, "routes": {}, "artifacts": set()})
        g["count"] += 1
        g["first"], g["last"] = min(g["first"], ts), max(g["last"], ts)
        route = str(row.get("route", "?"))
        g["routes"][route] = g["routes"].get(route, 0) + 1
        g["artifacts"].add(str(row.get("artifact")))
    return [DriftEntry(k, g["input"], g["count"], g["first"], g["last"], g["routes"], len(g["artifacts"]))
            for k, g in groups.items()]  # fmt: skip


def list_drift(target: str) -> list[DriftEntry]:
    """The target's drift log, grouped by input (:func:`summarize`)."""
    return summarize(read_drift(drift_log_path(target)))


def _select(entries: Sequence[DriftEntry], ids: Sequence[str] | None, target: str) -> list[DriftEntry]:
    """The entries named by ``ids`` (a unique prefix of at least 4 digits each), all when None."""
    if ids is None:
        return list(entries)
    chosen: dict[str, DriftEntry] = {}
    for want in ids:
        hits = [e for e in entries if len(want) >= 4 and e.id.startswith(want.lower())]
        if len(hits) != 1:
            problem = "matches no logged input" if not hits else f"matches {len(hits)} logged inputs"
            raise UserInputError(f"--id {want}: {problem} of target {target!r}",
                                 hint=f"kolmbuild drift list {target} shows the ids (at least 4 digits)")
        chosen[hits[0].id] = hits[0]
    return list(chosen.values())


def _remove(path: Path, drop: set[str]) -> int:
    """Take every record whose input id is in ``drop`` off the log, in place under the log's lock
    (appends wait for it, and none is lost to a rename). Returns how many lines went."""
    if not path.exists() or not drop:
        return 0
    fd = os.open(path, os.O_RDWR)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        with os.fdopen(os.dup(fd), "r+b") as fh:
            lines = fh.read().splitlines(keepends=True)
            kept: list[bytes] = []
            for line in lines:
                rows = _records(line.decode("utf-8", errors="replace"))
                if rows and input_id(rows[0]["input"]) in drop:
                    continue
                kept.append(line if line.endswith(b"\n") else line + b"\n")
            fh.seek(0)
            fh.write(b"".join(kept))
            fh.truncate()
            fh.flush()
            os.fsync(fh.fileno())
    finally:
        os.close(fd)
    return len(lines) - len(kept)


@dataclass(frozen=True)
class Accepted:
    dest: Path
    accepted: tuple[DriftEntry, ...]  # appended to dest
    already: tuple[DriftEntry, ...]  # dest had them already (taken off the log too)
    wrong_shape: tuple[DriftEntry, ...]  # not an input of this task's shape: left in the log


def _fits(value: Any, kind: Literal["text", "json"]) -> bool:
    if kind == "text":
        return isinstance(value, str) and bool(value.strip())
    return isinstance(value, (dict, list)) and bool(value)


def accept(target: str, dest: Path, input_kind: Literal["text", "json"], ids: Sequence[str] | None = None) -> Accepted:
    """Append the chosen logged inputs (all when ``ids`` is None) to the unlabelled file ``dest``
    (created when missing; inputs it holds already are not repeated), then take them off the log."""
    log = drift_log_path(target)
    entries = _select(list_drift(target), ids, target)
    have: set[bytes] = set()
    old = b""
    if dest.exists():
        have = {canonical_json(u.input) for u in load_unlabeled(dest, ShapeSpec(input=input_kind)).inputs}
        old = dest.read_bytes()
    fresh, already, wrong = [], [], []
    for e in entries:
        if not _fits(e.input, input_kind):
            wrong.append(e)
        elif canonical_json(e.input) in have:
            already.append(e)
        else:
            have.add(canonical_json(e.input))
            fresh.append(e)
    if fresh:
        sep = b"" if not old or old.endswith(b"\n") else b"\n"
        write_atomic(dest, old + sep + b"".join(canonical_json({"input": e.input}) + b"\n" for e in fresh))
    _remove(log, {e.id for e in (*fresh, *already)})
    return Accepted(dest, tuple(fresh), tuple(already), tuple(wrong))


def accept_for_task(target: str, task: TaskSpec, root: Path, ids: Sequence[str] | None = None) -> Accepted:
    """:func:`accept` into ``task.unlabeled`` (relative to the project ``root``); a ConfigError when
    the task has no unlabelled set to accept into."""
    if task.unlabeled is None:
        raise ConfigError(
            f"target {target!r}: task {task.name!r} has no unlabelled set to accept drift into",
            hint=f"add `unlabeled: data/{task.name}-unlabeled.jsonl` to the task's config (conf/task/), then accept again",
        )
    dest = Path(task.unlabeled)
    return accept(target, dest if dest.is_absolute() else root / dest, task.shape.input, ids)


def clear(target: str, ids: Sequence[str] | None = None) -> int:
    """Take the chosen entries (all when ``ids`` is None) off the target's log; lines removed."""
    log = drift_log_path(target)
    if ids is None:
        if not log.exists():
            return 0
        return _remove(log, {e.id for e in list_drift(target)})
    return _remove(log, {e.id for e in _select(list_drift(target), ids, target)})


def logged_targets() -> list[str]:
    """Targets that have a drift log on this machine (by file name)."""
    folder = state_dir() / "drift"
    return sorted(p.stem for p in folder.glob("*.jsonl")) if folder.is_dir() else []
