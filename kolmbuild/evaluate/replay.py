"""Replay: does an artifact still answer its own test rows the way it did when it was built?

At build time the evaluate stage records, for each test row it scored, the sha256 of the row's
input and of the runtime's output (RFC 8785 canonical JSON of each value): :func:`replay_record`.
That record is part of the evaluate stage's receipt, which the package stage signs into the
manifest. :func:`replay_artifact` opens a ``.kolm`` file (signature checked first), runs each shipped
test row (``components/heldout.jsonl``) through the same runtime with the same options, and
compares. Any row whose output hash differs, or whose input is missing or changed, is a difference.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from kolmbuild.errors import ArtifactError, KolmError
from kolmbuild.evaluate.cases import CaseResult
from kolmbuild.hashing.jcs import canonical_json
from kolmbuild.progress import NullProgress, Progress

HASH = "sha256-jcs"  # sha256 of the RFC 8785 canonical JSON of the value


class ReplayDiffers(KolmError):
    """Some test row's output is not the one the build recorded (exit 1)."""


def value_sha(value: Any) -> str:
    """sha256 (hex) of ``value``'s canonical JSON; a value with no canonical form by its repr."""
    try:
        data = canonical_json(value)
    except (TypeError, ValueError):
        data = repr(value).encode("utf-8", "surrogatepass")
    return hashlib.sha256(data).hexdigest()


def replay_record(results: Sequence[CaseResult]) -> dict[str, Any]:
    """What the evaluate stage's receipt records: per test row its id, input and output hashes and
    the route that answered it."""
    rows = [
        {"id": r.id, "input_sha": value_sha(r.input), "output_sha": value_sha(r.output), "route": r.route}
        for r in results
    ]
    return {"hash": HASH, "rows": rows}


@dataclass(frozen=True)
class RowDiff:
    id: int
    problem: str  # "output", "input changed", "missing row"
    expected_route: str | None = None
    route: str | None = None

    def to_json(self) -> dict[str, Any]:
        out: dict[str, Any] = {"id": self.id, "problem": self.problem}
        if self.expected_route is not None:
            out["expected_route"] = self.expected_route
        if self.route is not None:
            out["route"] = self.route
        return out


@dataclass(frozen=True)
class ReplayReport:
    artifact: str
    manifest: str  # the manifest CID
    rows: int
    same: int
    differences: tuple[RowDiff, ...]

    @property
    def ok(self) -> bool:
        return not self.differences

    def to_json(self) -> dict[str, Any]:
        return {"kind": "kolm-replay", "version": 1, "artifact": self.artifact, "manifest": self.manifest,
                "rows": self.rows, "same": self.same, "ok": self.ok,
                "differences": [d.to_json() for d in self.differences]}  # fmt: skip


def recorded(manifest: Mapping[str, Any], where: str) -> list[dict[str, Any]]:
    """The replay rows of the manifest's evaluate receipt; ArtifactError when it has none."""
    receipts = manifest.get("receipts")
    if not isinstance(receipts, list):
        raise ArtifactError(f"{where}: the manifest has no receipts")
    for receipt in receipts:
        if isinstance(receipt, Mapping) and receipt.get("stage") == "evaluate":
            metrics = receipt.get("metrics")
            block = metrics.get("replay") if isinstance(metrics, Mapping) else None
            break
    else:
        raise ArtifactError(f"{where}: the manifest has no evaluate receipt, so nothing to replay")
    if not isinstance(block, Mapping) or block.get("hash") != HASH or not isinstance(block.get("rows"), list):
        raise ArtifactError(f"{where}: the evaluate receipt records no replay hashes (built before kolmbuild recorded them)")
    rows = block["rows"]
    for n, row in enumerate(rows):
        if not (isinstance(row, Mapping) and isinstance(row.get("id"), int)
                and isinstance(row.get("input_sha"), str) and isinstance(row.get("output_sha"), str)):  # fmt: skip
            raise ArtifactError(f"{where}: receipts.evaluate.metrics.replay.rows[{n}]: expected id, input_sha, output_sha")
    return [dict(r) for r in rows]


def _shipped_rows(raw: bytes, where: str) -> dict[int, Any]:
    out: dict[int, Any] = {}
    for n, line in enumerate(raw.decode("utf-8", "replace").splitlines(), 1):
        if not line.strip():
            continue
        try:
            row = json.loads(line)
            out[int(row["id"])] = row["input"]
        except (ValueError, KeyError, TypeError) as exc:
            raise ArtifactError(f"{where}:{n}: a test row needs id and input ({exc})") from None
    return out


def replay_artifact(path: Path, *, pubkey: Any = None, progress: Progress | None = None) -> ReplayReport:
    """Re-run ``path``'s shipped test rows and compare each output with the recorded hash."""
    from kolmbuild.artifact import open_artifact
    from kolmbuild.runtime import Predictor, RuntimeOptions

    progress = progress or NullProgress()
    path = Path(path)
    with open_artifact(path, verify=True, pubkey=pubkey) as art:
        where = f"{path}: manifest.json"
        rows = recorded(art.manifest, where)
        if not art.has("heldout"):
            raise ArtifactError(f"{path}: the artifact ships no test rows (components/heldout.jsonl)")
        shipped = _shipped_rows(art.read("heldout"), f"{path}: components/heldout.jsonl")
        manifest_cid = art.manifest_cid
    diffs: list[RowDiff] = []
    same = 0
    # the evaluate stage's runtime options (RuntimeParts' defaults), not the environment's
    with Predictor.open(path, verify=True, pubkey=pubkey, options=RuntimeOptions(), drift=False) as predictor:
        progress.start(f"replaying {len(rows)} test rows", total=len(rows))
        for row in rows:
            progress.advance(1)
            if row["id"] not in shipped:
                diffs.append(RowDiff(row["id"], "missing row"))
                continue
            value = shipped[row["id"]]
            if value_sha(value) != row["input_sha"]:
                diffs.append(RowDiff(row["id"], "input changed"))
                continue
            try:
                pred = predictor.predict(value)
                output, route = pred.output, str(pred.route)
            except Exception as exc:  # noqa: BLE001 - the evaluate stage records a failing call the same way
                output, route = None, "error"
                progress.log(f"row {row['id']}: the runtime raised {type(exc).__name__}: {exc}")
            if value_sha(output) == row["output_sha"]:
                same += 1
            else:
                diffs.append(RowDiff(row["id"], "output", row.get("route"), route))
    return ReplayReport(str(path), manifest_cid, len(rows), same, tuple(diffs))
