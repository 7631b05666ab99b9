"""Embeddings addressed by content: one small file per (embedder, chunk text).

The key is the sha256 of the embedder's ident and the chunk's text, so an unchanged chunk is
never embedded twice, whichever file or build it comes from. Each entry is written to a temp file
and renamed, so a killed build leaves whole entries or none; a damaged entry is recomputed.
"""

from __future__ import annotations

import hashlib
from pathlib import Path

import numpy as np

from kolmbuild.atomic import write_atomic


class EmbeddingCache:
    def __init__(self, root: Path, embedder_ident: str, dim: int) -> None:
        self.root = root
        self.ident = embedder_ident
        self.dim = dim

    def key(self, text: str) -> str:
        return hashlib.sha256(f"{self.ident}\x00{text}".encode()).hexdigest()

    def _path(self, key: str) -> Path:
        return self.root / key[:2] / f"{key}.f32"

    def get(self, text: str) -> np.ndarray | None:
        try:
            data = self._path(self.key(text)).read_bytes()
        except OSError:
            return None
        if len(data) != 4 * self.dim:
            return None
        return np.frombuffer(data, dtype=np.float32)

    def put(self, text: str, vector: np.ndarray) -> None:
        # not durable: an embedding is recomputed when missing, and get() checks its length
        write_atomic(self._path(self.key(text)), np.asarray(vector, dtype=np.float32).tobytes(), durable=False)
