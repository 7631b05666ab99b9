"""The eval record (``kolmbuild eval --json``), validated when read back.

{"kind":"kolm-eval","version":1,"subject":str,"examples":str,
 "cases":[{"id","input","expected","output","passed","latency_ms","route"}],
 "summary":{"n","passed","pass_rate","p50_ms","p95_ms"}}
Unknown keys are kept (a newer writer may add some); missing or mistyped ones are errors that name
the file and the key.
"""

from __future__ import annotations

import json
import math
from collections.abc import Sequence
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from kolmbuild.errors import UserInputError


class EvalCase(BaseModel):
    model_config = ConfigDict(extra="allow")

    id: int
    input: Any
    expected: Any = None
    output: Any = None
    passed: bool
    latency_ms: float = Field(ge=0)
    route: str = ""


class EvalSummary(BaseModel):
    model_config = ConfigDict(extra="allow")

    n: int = Field(ge=0)
    passed: int = Field(ge=0)
    pass_rate: float = Field(ge=0, le=1)
    p50_ms: float = Field(ge=0)
    p95_ms: float = Field(ge=0)


class EvalRecord(BaseModel):
    model_config = ConfigDict(extra="allow")

    kind: Literal["kolm-eval"]
    version: Literal[1]
    subject: str
    examples: str = ""
    cases: list[EvalCase]
    summary: EvalSummary


def percentile(values: Sequence[float], q: float) -> float:
    """Linear-interpolated percentile (numpy's default), 0.0 for no values."""
    if not values:
        return 0.0
    xs = sorted(values)
    pos = (len(xs) - 1) * q / 100.0
    lo, hi = math.floor(pos), math.ceil(pos)
    return xs[lo] + (xs[hi] - xs[lo]) * (pos - lo)


def summarize(cases: Sequence[dict[str, Any]]) -> dict[str, Any]:
    lat = [float(c["latency_ms"]) for c in cases]
    passed = sum(1 for c in cases if c["passed"])
    n = len(cases)
    return {
        "n": n,
        "passed": passed,
        "pass_rate": passed / n if n else 0.0,
        "p50_ms": round(percentile(lat, 50), 3),
        "p95_ms": round(percentile(lat, 95), 3),
    }


def load_eval(path: Path) -> EvalRecord:
    path = Path(path)
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except OSError as exc:
        raise UserInputError(f"{path}: cannot read: {exc.strerror or exc}") from exc
    except json.JSONDecodeError as exc:
        raise UserInputError(f"{path}:{exc.lineno}: not JSON: {exc.msg}") from exc
    return parse_eval(data, source=str(path))


def parse_eval(data: Any, *, source: str) -> EvalRecord:
    try:
        record = EvalRecord.model_validate(data)
    except ValidationError as exc:
        errs = "; ".join(
            f"{'.'.join(str(x) for x in e['loc']) or '(top)'}: {e['msg']}" for e in exc.errors()[:5]
        )
        raise UserInputError(
            f"{source}: not an eval record: {errs}", hint="produce one with: kolmbuild eval FILE.kolm --json"
        ) from exc
    if record.summary.n != len(record.cases):
        raise UserInputError(
            f"{source}: summary.n is {record.summary.n} but there are {len(record.cases)} cases"
        )
    return record
