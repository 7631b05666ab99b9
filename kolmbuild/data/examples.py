"""Examples files: ``{"input": …, "output": …}`` JSON lines, validated against the task's shape.

Validation collects *every* bad line (not only the first) so a user fixes a file in one pass:
not JSON, not an object, a missing key, a wrong type for the task's shape, an empty value, a
label outside the task's labels, a duplicate input or id. :func:`load_examples` raises
:class:`ExamplesInvalid` (a :class:`~kolmbuild.errors.DataError`, exit 2) listing them with
``file:line``.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

from kolmbuild.config.models import ShapeSpec
from kolmbuild.data.jsonl import DEFAULT_MAX_LINE_BYTES, iter_lines, loads_strict, too_long
from kolmbuild.errors import DataError
from kolmbuild.hashing.jcs import canonical_json

LIMIT_HINT = " (task.limits.max_example_bytes raises the limit)"
MAX_LISTED = 20  # problems spelled out in the error message; ``problems`` keeps them all

Kind = Literal["text", "json", "label"]


@dataclass(frozen=True)
class Example:
    """One labeled case. ``id`` is the row's ``id`` when the file gives one, else its position."""

    id: int
    input: Any
    output: Any

    def to_row(self) -> dict[str, Any]:
        return {"id": self.id, "input": self.input, "output": self.output}


@dataclass(frozen=True)
class LineProblem:
    line: int
    reason: str

    def __str__(self) -> str:
        return f"line {self.line}: {self.reason}"


class ExamplesInvalid(DataError):
    """An examples file has bad lines; ``problems`` lists every one of them."""

    def __init__(self, path: Path, problems: Sequence[LineProblem]) -> None:
        self.path = Path(path)
        self.problems = tuple(problems)
        shown = [f"  {path}:{p.line}: {p.reason}" for p in self.problems[:MAX_LISTED]]
        more = len(self.problems) - MAX_LISTED
        if more > 0:
            shown.append(f"  … and {more} more (kolmbuild seeds validate {path} --json lists all)")
        n = len(self.problems)
        super().__init__(f"{path}: {n} bad line{'s' if n != 1 else ''}:\n" + "\n".join(shown))


@dataclass(frozen=True)
class ParsedRow:
    line: int
    value: dict[str, Any]


def parse_lines(text: str) -> tuple[list[ParsedRow], list[LineProblem]]:
    """JSON objects by line number, and the lines that are blank, not JSON, or not objects."""
    rows: list[ParsedRow] = []
    problems: list[LineProblem] = []
    lines = text.split("\n")
    if lines and lines[-1] == "":
        lines.pop()  # the final newline does not start a line
    for lineno, raw in enumerate(lines, start=1):
        _parse_line(lineno, raw.rstrip("\r"), rows, problems)
    return rows, problems


def parse_file(path: Path, max_line_bytes: int = DEFAULT_MAX_LINE_BYTES) -> tuple[list[ParsedRow], list[LineProblem]]:
    """:func:`parse_lines` over a file read line by line: a line over ``max_line_bytes`` is a problem
    (and is never held in memory), as is a line that is not UTF-8."""
    rows: list[ParsedRow] = []
    problems: list[LineProblem] = []
    for line in iter_lines(path, max_line_bytes):
        if line.data is None:
            problems.append(LineProblem(line.number, too_long(line, max_line_bytes) + LIMIT_HINT))
            continue
        try:
            text = line.data.decode("utf-8")
        except UnicodeDecodeError as exc:
            problems.append(LineProblem(line.number, f"not UTF-8 text (byte {exc.start + 1} of the line: {exc.reason})"))
            continue
        _parse_line(line.number, text, rows, problems)
    return rows, problems


def _parse_line(lineno: int, line: str, rows: list[ParsedRow], problems: list[LineProblem]) -> None:
    if not line.strip():
        problems.append(LineProblem(lineno, "empty line"))
        return
    try:
        value = loads_strict(line)
    except ValueError as exc:  # strictjson.JSONRefused: not JSON, or JSON kolmbuild cannot keep exactly
        problems.append(LineProblem(lineno, str(exc)))
        return
    if not isinstance(value, dict):
        problems.append(LineProblem(lineno, f"expected a JSON object, got {_json_type(value)}"))
        return
    rows.append(ParsedRow(lineno, value))


def _json_type(value: Any) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "a boolean"
    if isinstance(value, (int, float)):
        return "a number"
    if isinstance(value, str):
        return "a string"
    if isinstance(value, list):
        return "an array"
    return "an object"


def _type_problem(value: Any, kind: Kind, key: str, labels: Sequence[str] | None) -> str | None:
    if kind in ("text", "label"):
        if not isinstance(value, str):
            want = "a string" if kind == "text" else "a label string"
            return f"{key!r} must be {want} for this task's shape, got {_json_type(value)}"
        if not value.strip():
            return f"empty {key!r}"
        if kind == "label" and labels and value not in labels:
            return f"{key!r} label {value!r} is not one of the task's labels {list(labels)}"
        return None
    if not isinstance(value, (dict, list)):
        return f"{key!r} must be a JSON object or array for this task's shape, got {_json_type(value)}"
    if key == "input" and not value:
        return f"empty {key!r}"
    return None


def check_rows(rows: Sequence[ParsedRow], shape: ShapeSpec) -> tuple[list[Example], list[LineProblem]]:
    """Examples from parsed rows, and every row that does not fit ``shape``."""
    examples: list[Example] = []
    problems: list[LineProblem] = []
    seen_input: dict[bytes, int] = {}
    seen_id: dict[int, int] = {}
    labels = shape.labels
    for position, row in enumerate(rows):
        reasons: list[str] = []
        missing = [k for k in ("input", "output") if k not in row.value]
        if missing:
            reasons.append("missing key " + " and ".join(repr(k) for k in missing))
        if "input" in row.value:
            bad = _type_problem(row.value["input"], shape.input, "input", None)
            if bad:
                reasons.append(bad)
        if "output" in row.value:
            bad = _type_problem(row.value["output"], shape.output, "output", labels)
            if bad:
                reasons.append(bad)
        raw_id = row.value.get("id", position)
        if not isinstance(raw_id, int) or isinstance(raw_id, bool) or raw_id < 0:
            reasons.append(f"'id' must be a non-negative integer, got {raw_id!r}")
        if reasons:
            problems.append(LineProblem(row.line, "; ".join(reasons)))
            continue
        key = canonical_json(row.value["input"])
        if key in seen_input:
            problems.append(LineProblem(row.line, f"duplicate input (first seen on line {seen_input[key]})"))
            continue
        if raw_id in seen_id:
            problems.append(LineProblem(row.line, f"duplicate id {raw_id} (first seen on line {seen_id[raw_id]})"))
            continue
        seen_input[key] = row.line
        seen_id[raw_id] = row.line
        examples.append(Example(raw_id, row.value["input"], row.value["output"]))
    return examples, problems


def load_examples(path: Path, shape: ShapeSpec, max_line_bytes: int = DEFAULT_MAX_LINE_BYTES) -> list[Example]:
    """Every example of ``path``; raises :class:`ExamplesInvalid` listing each bad line."""
    rows, problems = parse_file(path, max_line_bytes)
    examples, more = check_rows(rows, shape)
    problems = sorted([*problems, *more], key=lambda p: p.line)
    if problems:
        raise ExamplesInvalid(path, problems)
    if not examples:
        raise DataError(f"{path}: no examples (the file is empty)")
    return examples


@dataclass(frozen=True)
class Unlabeled:
    """One input of an unlabelled file (``task.unlabeled``), with the line it came from."""

    line: int
    input: Any


@dataclass(frozen=True)
class UnlabeledSet:
    inputs: tuple[Unlabeled, ...]
    duplicates: int  # lines whose input an earlier line already gave (skipped)


def load_unlabeled(path: Path, shape: ShapeSpec, max_line_bytes: int = DEFAULT_MAX_LINE_BYTES) -> UnlabeledSet:
    """The inputs of an unlabelled JSONL file: one ``{"input": …}`` object per line (other keys are
    ignored, an ``output`` is refused: labelled rows belong in ``task.examples``). Repeated inputs
    are kept once. Raises :class:`ExamplesInvalid` listing every bad line; an empty file is an
    empty set (accepted drift starts from one)."""
    rows, problems = parse_file(path, max_line_bytes)
    seen: set[bytes] = set()
    inputs: list[Unlabeled] = []
    duplicates = 0
    for row in rows:
        if "input" not in row.value:
            problems.append(LineProblem(row.line, "missing key 'input'"))
            continue
        if "output" in row.value:
            problems.append(LineProblem(row.line, "has an 'output': labelled rows belong in task.examples"))
            continue
        bad = _type_problem(row.value["input"], shape.input, "input", None)
        if bad:
            problems.append(LineProblem(row.line, bad))
            continue
        key = canonical_json(row.value["input"])
        if key in seen:
            duplicates += 1
            continue
        seen.add(key)
        inputs.append(Unlabeled(row.line, row.value["input"]))
    if problems:
        raise ExamplesInvalid(path, sorted(problems, key=lambda p: p.line))
    return UnlabeledSet(tuple(inputs), duplicates)


def infer_shape(rows: Sequence[ParsedRow]) -> ShapeSpec:
    """The shape most rows have: text or JSON input; text, label or JSON output.

    Outputs are ``label`` when they are few distinct short one-line strings that repeat
    (each label seen at least twice on average and at most 50 of them).
    """
    ins = Counter("json" if isinstance(r.value.get("input"), (dict, list)) else "text" for r in rows)
    outs = [r.value.get("output") for r in rows]
    structured = sum(isinstance(o, (dict, list)) for o in outs)
    input_kind: Literal["text", "json"] = "json" if ins["json"] > ins["text"] else "text"
    if structured * 2 > len(outs):
        return ShapeSpec(input=input_kind, output="json")
    strings = [o for o in outs if isinstance(o, str)]
    distinct = set(strings)
    label_like = (
        len(strings) >= 4
        and len(distinct) <= min(50, len(strings) // 2)
        and all(len(s) <= 40 and "\n" not in s for s in distinct)
    )
    if label_like:
        return ShapeSpec(input=input_kind, output="label", labels=sorted(distinct))
    return ShapeSpec(input=input_kind, output="text")
