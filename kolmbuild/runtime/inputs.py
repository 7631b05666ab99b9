"""Batch inputs for ``run --file``: JSON lines, each ``{"input": …}`` (other keys ignored) or a bare
JSON string (text tasks). Bad lines raise DataError naming ``file:line``."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from kolmbuild.config.models import ShapeSpec
from kolmbuild.errors import DataError


def iter_inputs(path: Path, shape: ShapeSpec) -> Iterator[Any]:
    try:
        fh = open(path, encoding="utf-8")
    except FileNotFoundError:
        raise DataError(f"{path}: no such file") from None
    except OSError as exc:
        raise DataError(f"{path}: cannot read: {exc.strerror or exc}") from None
    with fh:
        lineno = 0
        try:
            for lineno, line in enumerate(fh, start=1):  # noqa: B007 (used in the error below)
                if not line.strip():
                    continue
                yield parse_line(line, shape, f"{path}:{lineno}")
        except UnicodeDecodeError as exc:
            raise DataError(f"{path}:{lineno + 1}: not UTF-8 text ({exc.reason})") from None


def parse_line(line: str, shape: ShapeSpec, where: str) -> Any:
    try:
        row = json.loads(line)
    except json.JSONDecodeError as exc:
        raise DataError(f"{where}: not JSON: {exc.msg} (column {exc.colno})") from None
    if isinstance(row, dict):
        if "input" not in row:
            raise DataError(f"{where}: missing key 'input'")
        value = row["input"]
    elif isinstance(row, str) and shape.input == "text":
        value = row
    else:
        raise DataError(f'{where}: expected an object {{"input": …}}')
    if shape.input == "text" and not isinstance(value, str):
        raise DataError(f"{where}: 'input' must be a string (the task takes text)")
    return value
