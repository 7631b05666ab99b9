"""``kolmbuild seeds validate``: an examples file's row count and shape, or every bad line."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

from kolmbuild.config.models import ShapeSpec
from kolmbuild.data.examples import LineProblem, check_rows, infer_shape, parse_file


@dataclass(frozen=True)
class SeedsReport:
    """What :func:`validate_examples` found in one file (``ok``: no bad line, at least one row)."""

    file: Path
    rows: int
    shape: ShapeSpec
    problems: tuple[LineProblem, ...]
    labels: tuple[str, ...] | None = None  # the distinct labels, for a label output
    error: str | None = None  # the file as a whole is unusable (empty)

    @property
    def ok(self) -> bool:
        return not self.problems and self.error is None

    def to_json(self) -> dict[str, Any]:
        doc: dict[str, Any] = {
            "file": str(self.file),
            "rows": self.rows,
            "shape": {"input": self.shape.input, "output": self.shape.output},
            "problems": [{"line": p.line, "reason": p.reason} for p in self.problems],
        }
        if self.labels is not None:
            doc["labels"] = list(self.labels)
        if self.error is not None:
            doc["error"] = self.error
        return doc


def validate_examples(path: Path, output: Literal["text", "json", "label"] | None = None) -> SeedsReport:
    """Check every line of ``path`` against a shape: its input inferred from the rows, its output
    ``output`` (inferred too when None)."""
    rows, problems = parse_file(path)
    inferred = infer_shape(rows)
    shape = inferred if output is None else ShapeSpec(input=inferred.input, output=output)
    examples, more = check_rows(rows, shape)
    labels = tuple(sorted({str(e.output) for e in examples})) if shape.output == "label" else None
    return SeedsReport(
        file=path,
        rows=len(examples),
        shape=shape,
        problems=tuple(sorted([*problems, *more], key=lambda p: p.line)),
        labels=labels,
        error="no examples (the file is empty)" if not examples and not problems and not more else None,
    )
