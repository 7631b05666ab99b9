"""Examples and eval sets: JSONL reading, validation with located errors, canonical writing, splits.

Pinned API (docs/architecture.md)::

    load_examples(path, shape) -> list[Example]     # raises ExamplesInvalid (a DataError) naming file:line
    Example(id, input, output)                      # frozen dataclass
    write_jsonl(path, rows) / read_jsonl(path)      # canonical JSON lines, atomic write
"""

from __future__ import annotations

from kolmbuild.data.examples import (
    Example,
    ExamplesInvalid,
    LineProblem,
    check_rows,
    infer_shape,
    load_examples,
    parse_lines,
)
from kolmbuild.data.jsonl import canonical_line, read_jsonl, write_atomic, write_json, write_jsonl
from kolmbuild.data.split import seeded_split

__all__ = [
    "Example",
    "ExamplesInvalid",
    "LineProblem",
    "canonical_line",
    "check_rows",
    "infer_shape",
    "load_examples",
    "parse_lines",
    "read_jsonl",
    "seeded_split",
    "write_atomic",
    "write_json",
    "write_jsonl",
]
