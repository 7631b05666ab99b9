"""Read CSV and Parquet tables into rows, and turn chosen columns into ``{"input","output"}`` examples.

CSV is read with the standard library (every value a string; a row's ``line`` is the physical line
it starts on). Parquet needs ``pyarrow`` (imported only when a Parquet file is read); values keep
their types. :func:`rows_to_examples` reports every row it skips with the reason, never silently.
"""

from __future__ import annotations

import csv
import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from kolmbuild.atomic import write_atomic
from kolmbuild.errors import DataError, KolmError, UserInputError
from kolmbuild.migrate.atomic import jsonl_bytes

TABLE_SUFFIXES = (".csv", ".parquet", ".pq")


@dataclass(frozen=True)
class Row:
    line: int  # CSV: physical line the record starts on (header is line 1); Parquet: 1-based row number
    values: dict[str, Any]


@dataclass(frozen=True)
class Table:
    path: Path
    columns: tuple[str, ...]
    rows: tuple[Row, ...]

    @property
    def unit(self) -> str:
        return "line" if self.path.suffix.lower() == ".csv" else "row"


@dataclass(frozen=True)
class Skipped:
    path: Path
    line: int
    reason: str

    def __str__(self) -> str:
        unit = "line" if self.path.suffix.lower() == ".csv" else "row"
        return f"{self.path.name}:{unit} {self.line}: {self.reason}"


@dataclass
class Conversion:
    examples: list[dict[str, Any]] = field(default_factory=list)
    skipped: list[Skipped] = field(default_factory=list)


def read_table(path: Path) -> Table:
    path = Path(path)
    if not path.is_file():
        raise UserInputError(f"{path}: no such file")
    suffix = path.suffix.lower()
    if suffix == ".csv":
        return _read_csv(path)
    if suffix in (".parquet", ".pq"):
        return _read_parquet(path)
    raise UserInputError(f"{path}: not a CSV or Parquet file (expected one of {', '.join(TABLE_SUFFIXES)})")


def _read_csv(path: Path) -> Table:
    try:
        with path.open(newline="", encoding="utf-8-sig") as fh:
            reader = csv.reader(fh)
            try:
                header = next(reader)
            except StopIteration:
                raise DataError(f"{path}: empty file (expected a header row)") from None
            columns = tuple(h.strip() for h in header)
            _check_header(path, columns)
            rows: list[Row] = []
            start = reader.line_num + 1
            for record in reader:
                if record and any(cell.strip() for cell in record):
                    if len(record) != len(columns):
                        raise DataError(
                            f"{path}:{start}: {len(record)} fields, the header has {len(columns)}",
                            hint="quote fields that contain commas or newlines",
                        )
                    rows.append(Row(start, dict(zip(columns, record, strict=True))))
                start = reader.line_num + 1
    except UnicodeDecodeError as exc:
        raise DataError(f"{path}: not UTF-8 text ({exc.reason} at byte {exc.start})") from exc
    except csv.Error as exc:
        raise DataError(f"{path}: malformed CSV: {exc}") from exc
    return Table(path, columns, tuple(rows))


def _read_parquet(path: Path) -> Table:
    try:
        import pyarrow.parquet as pq
    except ModuleNotFoundError as exc:
        raise KolmError(
            f"{path}: reading Parquet needs the package 'pyarrow'", hint="pip install pyarrow"
        ) from exc
    try:
        table = pq.read_table(path)
    except Exception as exc:  # pyarrow raises its own ArrowInvalid / OSError family
        raise DataError(f"{path}: not a readable Parquet file: {exc}") from exc
    columns = tuple(table.column_names)
    _check_header(path, columns)
    rows = tuple(Row(i + 1, values) for i, values in enumerate(table.to_pylist()))
    return Table(path, columns, rows)


def _check_header(path: Path, columns: Sequence[str]) -> None:
    seen: set[str] = set()
    for c in columns:
        if not c:
            raise DataError(f"{path}: a column has an empty name")
        if c in seen:
            raise DataError(f"{path}: column {c!r} appears twice")
        seen.add(c)


def is_missing(value: Any) -> bool:
    if value is None:
        return True
    if isinstance(value, float) and math.isnan(value):
        return True
    return isinstance(value, str) and not value.strip()


def require_columns(table: Table, wanted: Sequence[str], *, role: str) -> None:
    missing = [c for c in wanted if c not in table.columns]
    if missing:
        raise DataError(
            f"{table.path}: no column {', '.join(repr(c) for c in missing)} for the {role}",
            hint="columns: " + ", ".join(table.columns),
        )


def _plain(value: Any) -> Any:
    """Parquet scalars (dates, decimals, bytes) as JSON values."""
    if value is None or isinstance(value, str | bool | int | float):
        return value
    if isinstance(value, list):
        return [_plain(v) for v in value]
    if isinstance(value, dict):
        return {str(k): _plain(v) for k, v in value.items()}
    if isinstance(value, bytes):
        return value.decode("utf-8", errors="replace")
    return str(value)


def pick(row: Row, columns: Sequence[str]) -> tuple[Any, str | None]:
    """The value of one column, or an object of several; with the reason when one is missing."""
    empty = [c for c in columns if is_missing(row.values.get(c))]
    if empty:
        return None, "empty " + ", ".join(repr(c) for c in empty)
    if len(columns) == 1:
        return _plain(row.values[columns[0]]), None
    return {c: _plain(row.values[c]) for c in columns}, None


def rows_to_examples(table: Table, inputs: Sequence[str], outputs: Sequence[str]) -> Conversion:
    require_columns(table, inputs, role="input")
    require_columns(table, outputs, role="output")
    out = Conversion()
    for row in table.rows:
        inp, why_in = pick(row, inputs)
        outp, why_out = pick(row, outputs)
        reason = why_in or why_out
        if reason:
            out.skipped.append(Skipped(table.path, row.line, reason))
            continue
        out.examples.append({"input": inp, "output": outp})
    return out


def convert_table(
    path: Path, inputs: Sequence[str], outputs: Sequence[str], out: Path | None = None
) -> tuple[Path, Conversion]:
    """``kolmbuild seeds convert``: one table → one JSONL file (atomic). Several columns → an object."""
    if not inputs or not outputs:
        raise UserInputError("name at least one --input and one --output column")
    table = read_table(Path(path))
    conv = rows_to_examples(table, inputs, outputs)
    if not conv.examples:
        raise DataError(f"{path}: no usable rows ({len(conv.skipped)} skipped)")
    dest = Path(out) if out is not None else Path(path).with_suffix(".jsonl")
    write_atomic(dest, jsonl_bytes(conv.examples))
    return dest, conv
