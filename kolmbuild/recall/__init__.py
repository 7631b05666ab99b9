"""Recall: corpus files → chunks → MiniLM embeddings → a sqlite-vec index shipped in the artifact.

Pinned API (docs/architecture.md)::

    build_index(files, db_path, spec: RecallSpec, cache_dir, progress) -> IndexStats
    open_index(db_path) -> Index ; Index.search(text, k) -> list[Hit(text, source, score)]
    connect(db_path) -> connection with sqlite-vec loaded (stdlib sqlite3 if it can, else apsw)
"""

from kolmbuild.recall.corpus import CorpusFile, list_corpus
from kolmbuild.recall.db import VecConnection, connect
from kolmbuild.recall.index import Hit, Index, IndexStats, Skipped, build_index, open_index

__all__ = [
    "CorpusFile",
    "Hit",
    "Index",
    "IndexStats",
    "Skipped",
    "VecConnection",
    "build_index",
    "connect",
    "list_corpus",
    "open_index",
]
