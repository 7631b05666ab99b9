"""Canonical JSON lines: RFC 8785 bytes, one object per line, written atomically."""

from __future__ import annotations

import os
import stat
import tempfile
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, BinaryIO

from kolmbuild.data import strictjson
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


def loads_strict(line: str | bytes) -> Any:
    """One JSON value from untrusted text: NaN, out-of-range numbers, lone surrogates, duplicate keys
    and deep nesting are refused (:class:`~kolmbuild.data.strictjson.JSONRefused`, a ValueError)."""
    return strictjson.loads(line)


DEFAULT_MAX_LINE_BYTES = 1 << 20  # one example per line: 1 MiB of JSON is already a long document


@dataclass(frozen=True)
class RawLine:
    """One line of a JSONL file without its newline; ``data`` is None when it is longer than allowed."""

    number: int
    data: bytes | None
    size: int


def open_regular(path: Path) -> BinaryIO:
    """``path`` opened for reading, refusing what is not a regular file without blocking on it (a
    FIFO would wait forever for a writer, a device never ends)."""
    path = Path(path)
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK | getattr(os, "O_CLOEXEC", 0))
    except FileNotFoundError:
        raise DataError(f"{path}: no such file") from None
    except IsADirectoryError:
        raise DataError(f"{path}: is a folder, expected a JSONL file") from None
    except OSError as exc:
        raise DataError(f"{path}: cannot read: {exc.strerror or exc}") from None
    mode = os.fstat(fd).st_mode
    if not stat.S_ISREG(mode):
        os.close(fd)
        kind = "a folder" if stat.S_ISDIR(mode) else "a FIFO" if stat.S_ISFIFO(mode) else "not a regular file"
        raise DataError(f"{path}: is {kind}, expected a JSONL file")
    return os.fdopen(fd, "rb")


def iter_lines(path: Path, max_line_bytes: int | None = DEFAULT_MAX_LINE_BYTES) -> Iterator[RawLine]:
    """The lines of ``path`` split on ``\\n`` only (JSON strings may hold U+2028 and other separators),
    a trailing ``\\r`` and a leading UTF-8 BOM dropped. A line over ``max_line_bytes`` is never held
    in memory: it comes back with ``data=None`` and its size. None: no limit (files kolmbuild wrote)."""
    limit = -1 if max_line_bytes is None else max_line_bytes
    with open_regular(path) as fh:
        number = 0
        while True:
            chunk = fh.readline(limit + 2 if limit >= 0 else -1)  # + "\r\n": endings are not counted
            if not chunk:
                return
            number += 1
            complete = limit < 0 or chunk.endswith(b"\n") or len(chunk) < limit + 2
            data = chunk.rstrip(b"\n").removesuffix(b"\r") if complete else chunk
            if number == 1:
                data = data.removeprefix(b"\xef\xbb\xbf")
            if complete and (limit < 0 or len(data) <= limit):
                yield RawLine(number, data, len(data))
                continue
            size = len(data)
            while not chunk.endswith(b"\n"):
                chunk = fh.readline(1 << 20)
                if not chunk:
                    break
                size += len(chunk.rstrip(b"\n").removesuffix(b"\r"))
            yield RawLine(number, None, size)


def too_long(line: RawLine, max_line_bytes: int) -> str:
    return f"line is {line.size:,} bytes, over the limit of {max_line_bytes:,}"


def read_jsonl(path: Path, max_line_bytes: int | None = None) -> list[dict[str, Any]]:
    """Every non-blank line as a JSON object; a bad line raises DataError naming ``file:line``."""
    path = Path(path)
    rows: list[dict[str, Any]] = []
    for line in iter_lines(path, max_line_bytes):
        if line.data is None:
            assert max_line_bytes is not None
            raise DataError(f"{path}:{line.number}: {too_long(line, max_line_bytes)}")
        if not line.data.strip():
            continue
        try:
            value = loads_strict(line.data)
        except ValueError as exc:
            raise DataError(f"{path}:{line.number}: {exc}") from None
        if not isinstance(value, dict):
            raise DataError(f"{path}:{line.number}: expected a JSON object, got {type(value).__name__}")
        rows.append(value)
    return rows
