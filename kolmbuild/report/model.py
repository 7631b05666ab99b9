"""The sweep record the lead's multirun writes: ``sweeps/<UTC timestamp>/summary.json``."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from kolmbuild.errors import UserInputError


class SweepRun(BaseModel):
    model_config = ConfigDict(extra="allow")

    target: str
    overrides: list[str] = []
    backend: str
    gates: str = ""
    status: Literal["ok", "failed", "refused"]
    duration_s: float = Field(default=0.0, ge=0)
    cost_usd: float = Field(default=0.0, ge=0)
    k_score: float | None = None
    artifact: str | None = None
    message: str = ""


class SweepRecord(BaseModel):
    model_config = ConfigDict(extra="allow")

    kind: Literal["kolm-sweep"]
    version: Literal[1]
    created: str
    runs: list[SweepRun]


def load_sweep(path: Path) -> SweepRecord:
    try:
        data = json.loads(Path(path).read_text(encoding="utf-8"))
    except OSError as exc:
        raise UserInputError(f"{path}: cannot read: {exc.strerror or exc}") from exc
    except json.JSONDecodeError as exc:
        raise UserInputError(f"{path}:{exc.lineno}: not JSON: {exc.msg}") from exc
    try:
        return SweepRecord.model_validate(data)
    except ValidationError as exc:
        errs = "; ".join(
            f"{'.'.join(str(x) for x in e['loc']) or '(top)'}: {e['msg']}" for e in exc.errors()[:5]
        )
        raise UserInputError(f"{path}: not a sweep summary: {errs}") from exc
