"""The drift log: inputs no recipe covered, appended locally so the next compile can fold them in.

Where: ``$KOLM_STATE_DIR/drift/<target>.jsonl``; without ``KOLM_STATE_DIR``,
``$XDG_STATE_HOME/kolmbuild/drift/<target>.jsonl``, else ``~/.local/state/kolmbuild/drift/<target>.jsonl``.
One canonical JSON object per line: ``{"artifact": manifest CID, "input": …, "route": "model"|"none",
"target": …, "ts": unix seconds}``. Each line is written with one ``write`` on an ``O_APPEND``
descriptor under an exclusive ``flock``, so concurrent runs and serve threads never interleave.
The log holds user inputs: it stays on this machine, never goes into an artifact or a receipt.
"""

from __future__ import annotations

import fcntl
import json
import os
import re
import time
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

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


def read_drift(path: Path) -> list[dict[str, Any]]:
    """The log's records (lines that do not parse, e.g. from a crash mid-line, are skipped)."""
    if not path.exists():
        return []
    rows: list[dict[str, Any]] = []
    for line in path.read_text(encoding="utf-8").splitlines():
        try:
            row = json.loads(line)
        except json.JSONDecodeError:
            continue
        if isinstance(row, dict):
            rows.append(row)
    return rows
