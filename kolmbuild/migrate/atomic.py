"""Atomic writes for imports: :class:`AtomicBatch` stages several files and renames them only once
all were written, so an import that fails halfway (a bad row, an invalid task config) leaves
nothing behind. Single files go through :mod:`kolmbuild.atomic`, the one atomic-write helper.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from kolmbuild.atomic import commit, default_mode, temp_beside

__all__ = ["AtomicBatch", "jsonl_bytes"]


def jsonl_bytes(records: Iterable[dict[str, Any]]) -> bytes:
    return b"".join(json.dumps(r, ensure_ascii=False).encode("utf-8") + b"\n" for r in records)


class AtomicBatch:
    """Stage files as temps; :meth:`commit` renames them all, :meth:`abort` (or an error) drops them."""

    def __init__(self) -> None:
        self._staged: list[tuple[Path, Path]] = []

    def add(self, path: Path, data: bytes) -> None:
        tmp = temp_beside(path)
        self._staged.append((tmp, path))
        with open(tmp, "r+b") as f:
            os.fchmod(f.fileno(), default_mode())
            f.write(data)
            f.flush()
            os.fsync(f.fileno())

    def commit(self) -> None:
        for tmp, final in self._staged:
            commit(tmp, final)
        self._staged.clear()

    def abort(self) -> None:
        for tmp, _ in self._staged:
            tmp.unlink(missing_ok=True)
        self._staged.clear()

    def __enter__(self) -> AtomicBatch:
        return self

    def __exit__(self, exc_type: object, exc: object, tb: object) -> None:
        if exc_type is not None:
            self.abort()
        else:
            self.commit()
