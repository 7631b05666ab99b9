"""Embeddings addressed by content: one small file per (embedder, chunk text).

The key is the sha256 of the embedder's ident and the chunk's text, so an unchanged chunk is
never embedded twice, whichever file or build it comes from. Each entry is written to a temp file
and renamed, so a killed build leaves whole entries or none; a damaged entry is recomputed.

With ``shared`` (the remote cache's shared entries, ``ctx.shared``), :meth:`prefetch` fetches the
entries missing here from the remote's ``embeddings/`` prefix (concurrently), and every vector
computed here is shared there when pushing is on. A shared entry is signed (the remote checks
that) and used only when it names this key and has this embedder's dimension.
"""

from __future__ import annotations

import base64
import hashlib
import json
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from kolmbuild.atomic import write_atomic
from kolmbuild.sharing import SharedEntries

SHARED_KIND = "embeddings"


class EmbeddingCache:
    def __init__(self, root: Path, embedder_ident: str, dim: int, shared: SharedEntries | None = None) -> None:
        self.root = root
        self.ident = embedder_ident
        self.dim = dim
        self.shared = shared

    def key(self, text: str) -> str:
        return hashlib.sha256(f"{self.ident}\x00{text}".encode()).hexdigest()

    def _path(self, key: str) -> Path:
        return self.root / key[:2] / f"{key}.f32"

    def get(self, text: str) -> np.ndarray | None:
        return self._read(self.key(text))

    def _read(self, key: str) -> np.ndarray | None:
        try:
            data = self._path(key).read_bytes()
        except OSError:
            return None
        if len(data) != 4 * self.dim:
            return None
        return np.frombuffer(data, dtype=np.float32)

    def prefetch(self, texts: Sequence[str]) -> int:
        """Bring the shared entries of ``texts`` that are missing here; return how many came."""
        if self.shared is None:
            return 0
        missing = [k for k in dict.fromkeys(self.key(t) for t in texts) if self._read(k) is None]
        got = 0
        for key, payload in self.shared.get_entries(SHARED_KIND, missing).items():
            try:
                doc = json.loads(payload)
                raw = base64.b64decode(doc["f32"], validate=True)
                if doc["key"] != key or doc["ident"] != self.ident or len(raw) != 4 * self.dim:
                    continue
            except (ValueError, KeyError, TypeError):
                continue
            self._write(key, raw)
            got += 1
        return got

    def put(self, text: str, vector: np.ndarray) -> None:
        key = self.key(text)
        raw = np.asarray(vector, dtype=np.float32).tobytes()
        self._write(key, raw)
        if self.shared is not None:
            payload = json.dumps({"key": key, "ident": self.ident, "f32": base64.b64encode(raw).decode("ascii")},
                                 sort_keys=True).encode()
            self.shared.put_entry(SHARED_KIND, key, payload)

    def _write(self, key: str, raw: bytes) -> None:
        # not durable: an embedding is recomputed when missing, and _read() checks its length
        write_atomic(self._path(key), raw, durable=False)
