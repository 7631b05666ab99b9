"""A run record as a remote cache holds it: the payload of its signed envelope.

Kept apart from :mod:`kolmbuild.remote.cache` (which loads the signing code) so the engine can name
it without paying for that import when no remote is configured.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from kolmbuild.hashing import canonical_json

# One DSSE payload type per kind of signed entry (kolmbuild.remote.envelope): a signature over one
# kind never validates another.
RUN_TYPE = "application/vnd.kolmbuild.run.v1+json"
TEACHER_TYPE = "application/vnd.kolmbuild.teacher-reply.v1+json"
EMBEDDING_TYPE = "application/vnd.kolmbuild.embedding.v1+json"
CHECKPOINTS_TYPE = "application/vnd.kolmbuild.checkpoints.v1+json"

_CID = re.compile(r"b[a-z2-7]{50,70}")
_OUTPUT = re.compile(r"[A-Za-z0-9._-]{1,255}")


def is_cid(text: object) -> bool:
    return isinstance(text, str) and _CID.fullmatch(text) is not None


@dataclass(frozen=True)
class RunDoc:
    """A run record as the remote holds it (the payload of its signed envelope)."""

    key: str
    stage: str
    outputs: Mapping[str, str]
    sizes: Mapping[str, int] = field(default_factory=dict)
    metrics: Mapping[str, Any] = field(default_factory=dict)
    duration_s: float = 0.0

    def payload(self) -> bytes:
        return canonical_json({
            "kind": "kolmbuild/run", "v": 1, "key": self.key, "stage": self.stage,
            "outputs": dict(self.outputs), "sizes": dict(self.sizes), "metrics": dict(self.metrics),
            "duration_s": round(float(self.duration_s), 6),
        })

    @classmethod
    def parse(cls, payload: bytes, key: str) -> RunDoc:
        """The record in ``payload``; ValueError (with the reason) when it is malformed or is the
        record of another key (a record copied under another name must not be used)."""
        try:
            doc = json.loads(payload)
        except (UnicodeDecodeError, ValueError) as exc:
            raise ValueError("the signed payload is not JSON") from exc
        if not isinstance(doc, dict) or doc.get("kind") != "kolmbuild/run" or doc.get("v") != 1:
            raise ValueError("the signed payload is not a kolmbuild run record")
        if doc.get("key") != key:
            raise ValueError(f"it is the record of another stage key ({str(doc.get('key'))[:24]}…)")
        outputs, sizes, metrics = doc.get("outputs"), doc.get("sizes"), doc.get("metrics")
        if not isinstance(doc.get("stage"), str) or not isinstance(outputs, dict) or not isinstance(sizes, dict) \
                or not isinstance(metrics, dict):
            raise ValueError("the record is malformed")
        for name, cid in outputs.items():
            if not _OUTPUT.fullmatch(name) or name in (".", "..") or not is_cid(cid):
                raise ValueError(f"the record names an invalid output {name!r}")
        for cid, size in sizes.items():
            if not is_cid(cid) or not isinstance(size, int) or isinstance(size, bool) or size < 0:
                raise ValueError("the record has malformed sizes")
        duration = doc.get("duration_s", 0.0)
        if not isinstance(duration, (int, float)) or isinstance(duration, bool):
            raise ValueError("the record has a malformed duration")
        return cls(key, doc["stage"], outputs, sizes, metrics, float(duration))
