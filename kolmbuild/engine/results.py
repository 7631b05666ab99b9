"""What the engine's library calls take and return: small typed values the CLI only prints."""

from __future__ import annotations

import os
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from kolmbuild.engine.fastpath import normalize_args
from kolmbuild.engine.stage import StageReceipt
from kolmbuild.engine.store import BadObject
from kolmbuild.errors import KolmError

TargetStatus = Literal["up-to-date", "built", "failed", "refused"]


@dataclass(frozen=True)
class BuildOptions:
    jobs: int = 1
    keep_going: bool = False


@dataclass(frozen=True)
class StampRequest:
    """Ask the engine to leave a no-op stamp for this command line (see engine/fastpath.py): the
    working folder and argv the console entry point will see next time."""

    cwd: str
    args: tuple[str, ...]

    @classmethod
    def for_argv(cls, argv: Sequence[str], cwd: str | None = None) -> StampRequest:
        return cls(cwd or os.getcwd(), tuple(normalize_args(list(argv))))


@dataclass
class TargetOutcome:
    target: str
    overrides: tuple[str, ...]
    backend: str
    gates: str
    status: TargetStatus
    ran: list[str]
    duration_s: float
    artifact: Path | None = None
    error: KolmError | None = None
    receipts: dict[str, StageReceipt] = field(default_factory=dict)
    pulled: list[str] = field(default_factory=list)  # stages whose runs came from the remote cache
    pushed: list[str] = field(default_factory=list)  # stages this build pushed to the remote cache

    @property
    def ok(self) -> bool:
        return self.status in ("built", "up-to-date")

    @property
    def k_score(self) -> float | None:
        ev = self.receipts.get("evaluate")
        k = ev.metrics.get("K") if ev else None
        return float(k) if isinstance(k, (int, float)) else None

    @property
    def cost_usd(self) -> float:
        total = 0.0
        for r in self.receipts.values():
            compute = r.metrics.get("compute")
            if isinstance(compute, dict) and isinstance(compute.get("cost_usd"), (int, float)):
                total += float(compute["cost_usd"])
            teacher = r.metrics.get("teacher_cost_usd")
            if isinstance(teacher, (int, float)):
                total += float(teacher)
        return total

    def to_json(self, root: Path) -> dict[str, Any]:
        return {
            "target": self.target,
            "overrides": list(self.overrides),
            "backend": self.backend,
            "gates": self.gates,
            "status": self.status,
            "ran": self.ran,
            "pulled": self.pulled,
            "pushed": self.pushed,
            "duration_s": round(self.duration_s, 3),
            "cost_usd": round(self.cost_usd, 6),
            "k_score": self.k_score,
            "artifact": os.path.relpath(self.artifact, root) if self.artifact else None,
            "message": str(self.error) if self.error else "",
        }


def exit_code(outcomes: Sequence[TargetOutcome]) -> int:
    """0 when every target is built; 2 when any error was the user's input; else the worst code."""
    codes = [o.error.exit_code for o in outcomes if o.error is not None]
    if not codes:
        return 0
    return 2 if 2 in codes else max(codes)


def nothing_to_do(n_targets: int) -> str:
    return f"kolmbuild: nothing to do: {n_targets} target(s) up to date"


@dataclass(frozen=True)
class GcReport:
    objects_removed: int
    bytes_freed: int
    runs_removed: int
    temp_removed: int

    def to_json(self) -> dict[str, int]:
        return {"objects_removed": self.objects_removed, "bytes_freed": self.bytes_freed,
                "runs_removed": self.runs_removed, "temp_removed": self.temp_removed}


@dataclass(frozen=True)
class CacheReport:
    """``cache verify``: every object re-hashed; what failed was removed with the runs naming it."""

    objects_checked: int
    bytes_checked: int
    bad: tuple[BadObject, ...]
    runs_dropped: int
    seconds: float

    @property
    def ok(self) -> bool:
        return not self.bad

    def to_json(self) -> dict[str, Any]:
        return {"ok": self.ok, "objects_checked": self.objects_checked, "bytes_checked": self.bytes_checked,
                "removed": [b.to_json() for b in self.bad], "runs_dropped": self.runs_dropped,
                "seconds": round(self.seconds, 3)}


@dataclass
class PushReport:
    """``cache push`` (and a ``--push`` build): the stages whose records were pushed, the objects
    uploaded for them, and what could not be pushed, with why."""

    runs: list[str] = field(default_factory=list)
    objects: int = 0
    skipped: list[tuple[str, str]] = field(default_factory=list)
    entries: int = 0  # shared entries (teacher replies, embeddings) pushed

    def to_json(self) -> dict[str, Any]:
        return {"pushed": self.runs, "objects_uploaded": self.objects, "entries_pushed": self.entries,
                "skipped": [{"stage": s, "reason": r} for s, r in self.skipped]}


@dataclass(frozen=True)
class PullReport:
    """``cache pull``: records adopted from the remote, objects downloaded, what is still missing."""

    pulled: tuple[str, ...]
    objects: int
    bytes: int
    missing: tuple[str, ...]  # "target/stage": neither here nor on the remote

    def to_json(self) -> dict[str, Any]:
        return {"pulled": list(self.pulled), "objects_downloaded": self.objects, "bytes_downloaded": self.bytes,
                "missing": list(self.missing)}


CacheWhere = Literal["local", "pulled", "remote", "missing"]


@dataclass(frozen=True)
class CacheRow:
    """``cache status``: where each stage's current run is. local: recorded here with its outputs;
    pulled: recorded here from the remote (outputs fetched when needed); remote: only the remote
    has it; missing: neither (it would run)."""

    target: str
    stage: str
    key: str | None
    where: CacheWhere

    def to_json(self) -> dict[str, Any]:
        return {"target": self.target, "stage": self.stage, "key": self.key, "where": self.where}
