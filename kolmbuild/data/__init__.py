"""Examples and eval sets: JSONL reading, validation with located errors, canonical writing, splits.

Pinned API (docs/architecture.md)::

    load_examples(path, shape) -> list[Example]     # raises ExamplesInvalid (a DataError) naming file:line
    load_unlabeled(path, shape) -> UnlabeledSet     # {"input": …} lines, deduplicated
    three_way_split(examples, test, select, seed) -> Split   # train / select / test by seeded hash
    Example(id, input, output)                      # frozen dataclass
    write_jsonl(path, rows) / read_jsonl(path)      # canonical JSON lines, atomic write
"""

from __future__ import annotations

from kolmbuild.data.examples import (
    Example,
    ExamplesInvalid,
    LineProblem,
    Unlabeled,
    UnlabeledSet,
    check_rows,
    infer_shape,
    load_examples,
    load_unlabeled,
    parse_lines,
)
from kolmbuild.data.jsonl import canonical_line, read_jsonl, write_json, write_jsonl
from kolmbuild.data.split import Split, id_ranges, seeded_split, three_way_split

__all__ = [
    "Example",
    "ExamplesInvalid",
    "LineProblem",
    "Split",
    "Unlabeled",
    "UnlabeledSet",
    "canonical_line",
    "check_rows",
    "id_ranges",
    "infer_shape",
    "load_examples",
    "load_unlabeled",
    "parse_lines",
    "read_jsonl",
    "seeded_split",
    "three_way_split",
    "write_json",
    "write_jsonl",
]
