"""Teacher replies by the CID of their canonical request: pay for a request once, ever.

One JSON file per request under ``<root>/<last 2 chars>/<cid>.json`` holding the canonical request
(for audit) and the reply with its token usage. Written to a temp file and renamed, so a build
killed mid-write leaves whole entries or none; an unreadable entry counts as a miss.

With ``shared`` (the remote cache's shared entries, ``ctx.shared``), a miss here is looked up under
the remote's ``teacher/`` prefix, and every reply bought here is shared there when pushing is on:
a reply paid for on one machine is never paid for on another. A shared entry is signed (the remote
checks that) and used only when the request it holds is exactly the request asked.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from kolmbuild.atomic import write_atomic
from kolmbuild.sharing import SharedEntries
from kolmbuild.teacher.request import ChatRequest, Reply

SHARED_KIND = "teacher"


class RequestCache:
    def __init__(self, root: Path, shared: SharedEntries | None = None) -> None:
        self.root = root
        self.shared = shared

    def _path(self, cid: str) -> Path:
        return self.root / cid[-2:] / f"{cid}.json"

    def get(self, request: ChatRequest) -> Reply | None:
        try:
            doc = json.loads(self._path(request.cid()).read_text(encoding="utf-8"))
            return Reply.from_json(doc["reply"])
        except (OSError, ValueError, KeyError, TypeError):
            pass
        return self._from_shared(request)

    def _from_shared(self, request: ChatRequest) -> Reply | None:
        if self.shared is None:
            return None
        payload = self.shared.get_entry(SHARED_KIND, request.cid())
        if payload is None:
            return None
        try:
            doc = json.loads(payload)
            if doc["request"] != request.canonical():  # a reply to another request, under this name
                return None
            reply = Reply.from_json(doc["reply"])
        except (ValueError, KeyError, TypeError):
            return None
        self._write(request, doc)
        return reply

    def put(self, request: ChatRequest, reply: Reply) -> None:
        doc = {"request": request.canonical(), "reply": reply.to_json()}
        data = self._write(request, doc)
        if self.shared is not None:
            self.shared.put_entry(SHARED_KIND, request.cid(), data)

    def _write(self, request: ChatRequest, doc: dict[str, Any]) -> bytes:
        data = json.dumps(doc, sort_keys=True, ensure_ascii=False).encode("utf-8")
        # durable: a reply was paid for; losing it to a crash would mean paying again
        write_atomic(self._path(request.cid()), data)
        return data

    def __len__(self) -> int:
        return sum(1 for _ in self.root.glob("*/*.json")) if self.root.is_dir() else 0
