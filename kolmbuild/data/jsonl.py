"""Canonical JSON lines: RFC 8785 bytes, one object per line, written atomically."""

from __future__ import annotations

import json
import os
import tempfile
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

from kolmbuild.errors import DataError
from kolmbuild.hashing.jcs import canonical_json


def canonical_line(row: Mapping[str, Any]) -> bytes:
    """One row as canonical JSON plus a newline (byte-identical for equal rows)."""
    return canonical_json(dict(row)) + b"\n"


def write_atomic(path: Path, data: bytes) -> Path:
    """Write ``data`` to a temp file beside ``path``, then rename it into place."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp_name = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as fh:
            fh.write(data)
        os.replace(tmp_name, path)
    except BaseException:
        Path(tmp_name).unlink(missing_ok=True)
        raise
    return path


def write_jsonl(path: Path, rows: Iterable[Mapping[str, Any]]) -> Path:
    """Write ``rows`` as canonical JSON lines; a reader never sees a half-written file."""
    return write_atomic(path, b"".join(canonical_line(r) for r in rows))


def write_json(path: Path, doc: Any) -> Path:
    """One canonical JSON document (RFC 8785) and a newline, atomically."""
    return write_atomic(path, canonical_json(doc) + b"\n")


def _no_constant(name: str) -> Any:
    raise ValueError(f"{name} is not a JSON number")


def loads_strict(line: str) -> Any:
    """``json.loads`` that refuses NaN and Infinity (Python accepts them; RFC 8259 and canonical JSON do not)."""
    return json.loads(line, parse_constant=_no_constant)


def read_jsonl(path: Path) -> list[dict[str, Any]]:
    """Every non-blank line as a JSON object; a bad line raises DataError naming ``file:line``."""
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise DataError(f"{path}: no such file") from None
    except UnicodeDecodeError as exc:
        raise DataError(f"{path}: not UTF-8 text ({exc.reason} at byte {exc.start})") from None
    rows: list[dict[str, Any]] = []
    for lineno, line in enumerate(text.splitlines(), start=1):
        if not line.strip():
            continue
        try:
            value = loads_strict(line)
        except json.JSONDecodeError as exc:
            raise DataError(f"{path}:{lineno}: not JSON: {exc.msg} (column {exc.colno})") from None
        except (ValueError, RecursionError) as exc:
            raise DataError(f"{path}:{lineno}: not JSON: {exc}") from None
        if not isinstance(value, dict):
            raise DataError(f"{path}:{lineno}: expected a JSON object, got {type(value).__name__}")
        rows.append(value)
    return rows
