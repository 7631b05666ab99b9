"""Teacher replies by the CID of their canonical request: pay for a request once, ever.

One JSON file per request under ``<root>/<last 2 chars>/<cid>.json`` holding the canonical request
(for audit) and the reply with its token usage. Written to a temp file and renamed, so a build
killed mid-write leaves whole entries or none; an unreadable entry counts as a miss.
"""

from __future__ import annotations

import json
from pathlib import Path

from kolmbuild.atomic import write_text_atomic
from kolmbuild.teacher.request import ChatRequest, Reply


class RequestCache:
    def __init__(self, root: Path) -> None:
        self.root = root

    def _path(self, cid: str) -> Path:
        return self.root / cid[-2:] / f"{cid}.json"

    def get(self, request: ChatRequest) -> Reply | None:
        try:
            doc = json.loads(self._path(request.cid()).read_text(encoding="utf-8"))
            return Reply.from_json(doc["reply"])
        except (OSError, ValueError, KeyError, TypeError):
            return None

    def put(self, request: ChatRequest, reply: Reply) -> None:
        doc = {"request": request.canonical(), "reply": reply.to_json()}
        # durable: a reply was paid for; losing it to a crash would mean paying again
        write_text_atomic(self._path(request.cid()), json.dumps(doc, sort_keys=True, ensure_ascii=False))

    def __len__(self) -> int:
        return sum(1 for _ in self.root.glob("*/*.json")) if self.root.is_dir() else 0
