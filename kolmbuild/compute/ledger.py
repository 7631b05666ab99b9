"""The ledger of rentals this machine started: one JSON file in the user's state dir.

Written before anything is waited for (the instance id goes in as soon as the provider returns it),
updated at each step, and never marked ``released`` until the provider confirms. It is also the bill:
``billed_from`` is when the provider returned the instance (its meter starts), ``released_at`` when
the provider confirmed it gone (the meter stops), and the rate is the one the provider quoted for
that instance (:meth:`Rental.billed`). Every write is a
whole-file rewrite (temp + ``os.replace``) under an ``flock``, so two kolmbuilds and a crash mid-write
never leave a torn ledger. Records hold ids and prices, never tokens.
"""

from __future__ import annotations

import fcntl
import json
import os
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field, fields, replace
from pathlib import Path
from typing import Any, Literal

from kolmbuild.errors import ConfigError
from kolmbuild.userconfig import state_dir

State = Literal["provisioning", "running", "releasing", "released", "release-failed"]
LIVE_STATES: tuple[str, ...] = ("provisioning", "running", "releasing", "release-failed")


def new_run_id() -> str:
    return f"kolm-{time.strftime('%Y%m%d%H%M%S', time.gmtime())}-{uuid.uuid4().hex[:8]}"


@dataclass(frozen=True)
class Bill:
    """A rental's cost by the ledger: metered seconds × the hourly rate the provider quoted."""

    seconds: float
    rate_usd_per_hour: float
    cost_usd: float

    def to_json(self) -> dict[str, Any]:
        return {"billed_seconds": round(self.seconds, 3), "rate_usd_per_hour": self.rate_usd_per_hour,
                "cost_usd": round(self.cost_usd, 6)}


@dataclass(frozen=True)
class Rental:
    run_id: str
    backend: str
    state: State
    instance_id: str | None = None
    label: str = ""
    estimate_usd: float = 0.0
    actual_usd: float | None = None
    started_at: float = 0.0
    updated_at: float = 0.0
    released_at: float | None = None
    note: str = ""
    detail: dict[str, Any] = field(default_factory=dict)  # bundle/offer id, image, ssh endpoint
    pid: int | None = None  # the kolmbuild process that holds the rental (reap leaves a living one alone)
    billed_from: float | None = None  # when the provider returned the instance: its meter runs from here

    def billed(self, fallback_rate_usd_per_hour: float = 0.0) -> Bill | None:
        """What the rental cost by the ledger: from ``billed_from`` (else ``started_at``) until the
        provider confirmed release, at the hourly rate the provider quoted for the instance
        (``detail.price_per_hour``, else ``fallback_rate_usd_per_hour``). None until released."""
        if self.released_at is None or self.instance_id is None:
            return None
        start = self.billed_from if self.billed_from is not None else self.started_at
        seconds = max(0.0, self.released_at - start)
        quoted = self.detail.get("price_per_hour")
        rate = float(quoted) if isinstance(quoted, (int, float)) and not isinstance(quoted, bool) else \
            fallback_rate_usd_per_hour
        return Bill(seconds, rate, seconds / 3600.0 * rate)

    @property
    def live(self) -> bool:
        return self.state in LIVE_STATES

    def held(self) -> bool:
        """True while the kolmbuild process that started it still runs on this machine."""
        if self.pid is None or self.state == "release-failed":
            return False
        try:
            os.kill(self.pid, 0)
        except ProcessLookupError:
            return False
        except PermissionError:
            return True
        return True

    @classmethod
    def from_row(cls, row: dict[str, Any]) -> Rental:
        """A ledger row (keys a newer kolmbuild added are ignored)."""
        known = {f.name for f in fields(cls)}
        return cls(**{k: v for k, v in row.items() if k in known})


class Ledger:
    def __init__(self, path: Path | None = None) -> None:
        self.path = path or state_dir() / "rentals.json"

    @contextmanager
    def _locked(self) -> Iterator[None]:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        with open(self.path.with_suffix(".lock"), "a+") as lock:
            fcntl.flock(lock.fileno(), fcntl.LOCK_EX)
            try:
                yield
            finally:
                fcntl.flock(lock.fileno(), fcntl.LOCK_UN)

    def _read(self) -> dict[str, dict[str, Any]]:
        try:
            text = self.path.read_text(encoding="utf-8")
        except FileNotFoundError:
            return {}
        try:
            data = json.loads(text)
        except json.JSONDecodeError as exc:
            raise ConfigError(f"{self.path}: the rental ledger is not valid JSON (line {exc.lineno})") from exc
        rentals = data.get("rentals") if isinstance(data, dict) else None
        if not isinstance(rentals, dict):
            raise ConfigError(f"{self.path}: the rental ledger has no 'rentals' mapping")
        for run_id, row in rentals.items():
            missing = [k for k in ("run_id", "backend", "state") if not isinstance(row, dict) or k not in row]
            if missing:
                raise ConfigError(f"{self.path}: rentals.{run_id}: not a rental record (missing {', '.join(missing)})")
        return rentals

    def _write(self, rentals: dict[str, dict[str, Any]]) -> None:
        tmp = self.path.with_name(f".{self.path.name}.{uuid.uuid4().hex}.tmp")
        try:
            tmp.write_text(json.dumps({"version": 1, "rentals": rentals}, indent=2, sort_keys=True) + "\n")
            os.replace(tmp, self.path)
        finally:
            tmp.unlink(missing_ok=True)

    def all(self) -> list[Rental]:
        with self._locked():
            rows = self._read()
        return [Rental.from_row(r) for r in rows.values()]

    def live(self) -> list[Rental]:
        return [r for r in self.all() if r.live]

    def get(self, run_id: str) -> Rental | None:
        with self._locked():
            row = self._read().get(run_id)
        return Rental.from_row(row) if row else None

    def put(self, rental: Rental) -> Rental:
        stamped = replace(rental, updated_at=time.time(), started_at=rental.started_at or time.time(),
                          pid=rental.pid if rental.pid is not None else os.getpid())
        with self._locked():
            rows = self._read()
            rows[rental.run_id] = asdict(stamped)
            self._write(rows)
        return stamped

    def update(self, run_id: str, **changes: Any) -> Rental:
        with self._locked():
            rows = self._read()
            if run_id not in rows:
                raise KeyError(run_id)
            merged = {**rows[run_id], **changes, "updated_at": time.time()}
            rows[run_id] = merged
            self._write(rows)
        return Rental.from_row(merged)
