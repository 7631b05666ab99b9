"""The sweep record the lead's multirun writes: ``sweeps/<UTC timestamp>/summary.json``."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from kolmbuild.errors import UserInputError


class SweepRun(BaseModel):
    """One run of a sweep. Version 1 summaries have the first block of fields only; version 2
    (kolmbuild.sweep.record) adds the point, the measured times, the cost's parts and the CIDs."""

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
    # version 2
    point: int | None = None
    name: str | None = None
    stage_seconds: float | None = Field(default=None, ge=0)
    backend_seconds: float | None = Field(default=None, ge=0)
    compute_cost_usd: float | None = Field(default=None, ge=0)
    teacher_cost_usd: float | None = Field(default=None, ge=0)
    cost_known: bool = True
    artifact_cid: str | None = None

    @property
    def measured_s(self) -> float:
        """The artifact's measured build time (every stage, each timed when it ran); version 1
        summaries only had this sweep's wall time."""
        return self.stage_seconds if self.stage_seconds is not None else self.duration_s


class SweepRecord(BaseModel):
    model_config = ConfigDict(extra="allow")

    kind: Literal["kolm-sweep"]
    version: Literal[1, 2]
    created: str
    complete: bool = True
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
