"""The recall index: corpus chunks and their embeddings in one SQLite file with a sqlite-vec table.

Tables: ``kolm_meta`` (key/value: format, embedder, dim, chunking), ``kolm_chunks`` (id, source,
ordinal, text) and the vec0 table ``kolm_vec`` (rowid = chunk id, cosine distance). The file is
written beside its destination and renamed when complete, so a reader sees a whole index or none.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from kolmbuild.atomic import atomic_path
from kolmbuild.config.models import RecallSpec
from kolmbuild.errors import DataError
from kolmbuild.progress import NullProgress, Progress
from kolmbuild.recall.chunking import chunk_text
from kolmbuild.recall.corpus import CorpusFile
from kolmbuild.recall.db import Driver, VecConnection, connect
from kolmbuild.recall.embcache import EmbeddingCache
from kolmbuild.recall.embedder import Embedder, as_unit_rows, canonical_name, load_embedder
from kolmbuild.recall.modality import Document, Unsupported, extract
from kolmbuild.sharing import SharedEntries

FORMAT = "kolm-recall/1"
_EMBED_BATCH = 64


@dataclass(frozen=True)
class Hit:
    text: str
    source: str
    score: float  # cosine similarity, 1.0 = same direction


@dataclass(frozen=True)
class Skipped:
    file: str
    reason: str


@dataclass(frozen=True)
class Chunk:
    source: str
    ordinal: int
    text: str


@dataclass(frozen=True)
class IndexStats:
    files: int
    chunks: int
    skipped: tuple[Skipped, ...]
    embedder: str
    dim: int
    embedded: int  # chunks embedded in this build
    cached: int  # chunks whose embedding came from the cache
    modalities: dict[str, int] = field(default_factory=dict)

    def to_json(self) -> dict[str, Any]:
        """The deterministic part (a function of the corpus and the spec): what recall.json holds."""
        return {
            "files": self.files,
            "chunks": self.chunks,
            "skipped": [{"file": s.file, "reason": s.reason} for s in self.skipped],
            "embedder": self.embedder,
            "dim": self.dim,
            "modalities": dict(sorted(self.modalities.items())),
        }


def _as_corpus_file(item: CorpusFile | Path) -> CorpusFile:
    return item if isinstance(item, CorpusFile) else CorpusFile.local(Path(item))


def read_documents(files: Iterable[CorpusFile | Path], progress: Progress) -> tuple[list[Document], list[Skipped]]:
    docs: list[Document] = []
    skipped: list[Skipped] = []
    for item in sorted((_as_corpus_file(f) for f in files), key=lambda f: f.name):
        try:
            docs.append(extract(item.name, item.read()))
        except Unsupported as exc:
            skipped.append(Skipped(item.name, exc.reason))
            progress.log(f"skipped {item.name}: {exc.reason}")
        except OSError as exc:
            skipped.append(Skipped(item.name, f"cannot read: {exc.strerror or exc}"))
            progress.log(f"skipped {item.name}: cannot read")
    return docs, skipped


def chunk_documents(docs: Sequence[Document], spec: RecallSpec) -> list[Chunk]:
    return [
        Chunk(doc.name, i, text)
        for doc in docs
        for i, text in enumerate(chunk_text(doc.text, spec.chunk_chars, spec.overlap_chars))
    ]


def embed_chunks(texts: Sequence[str], embedder: Embedder, cache: EmbeddingCache, progress: Progress) -> tuple[np.ndarray, int]:
    """Vectors for ``texts``, from the cache where it has them; returns (vectors, number embedded)."""
    vectors = np.zeros((len(texts), embedder.dim), dtype=np.float32)
    cache.prefetch(texts)  # what another machine embedded, from the remote cache (when one is shared)
    missing: dict[str, list[int]] = {}
    for i, text in enumerate(texts):
        hit = cache.get(text)
        if hit is None:
            missing.setdefault(text, []).append(i)
        else:
            vectors[i] = hit
    todo = list(missing)
    progress.start("embedding chunks", total=len(todo))
    for start in range(0, len(todo), _EMBED_BATCH):
        batch = todo[start : start + _EMBED_BATCH]
        rows = as_unit_rows(embedder.embed(batch), embedder.dim)
        for text, row in zip(batch, rows, strict=True):
            cache.put(text, row)
            vectors[missing[text]] = row
        progress.advance(len(batch))
    return vectors, len(todo)


def _write_db(path: Path, chunks: Sequence[Chunk], vectors: np.ndarray, meta: dict[str, str], driver: Driver) -> None:
    with connect(path, driver=driver) as db:
        with db.transaction():
            db.execute("CREATE TABLE kolm_meta (key TEXT PRIMARY KEY, value TEXT NOT NULL)")
            db.execute("CREATE TABLE kolm_chunks (id INTEGER PRIMARY KEY, source TEXT NOT NULL, ordinal INTEGER NOT NULL, text TEXT NOT NULL)")
            dim = int(meta["dim"])
            db.execute(f"CREATE VIRTUAL TABLE kolm_vec USING vec0(embedding float[{dim}] distance_metric=cosine)")
            db.executemany("INSERT INTO kolm_meta (key, value) VALUES (?, ?)", sorted(meta.items()))
            db.executemany(
                "INSERT INTO kolm_chunks (id, source, ordinal, text) VALUES (?, ?, ?, ?)",
                [(i + 1, c.source, c.ordinal, c.text) for i, c in enumerate(chunks)],
            )
            db.executemany(
                "INSERT INTO kolm_vec (rowid, embedding) VALUES (?, ?)",
                [(i + 1, vectors[i].tobytes()) for i in range(len(chunks))],
            )
        db.execute("VACUUM")


def build_index(
    files: Iterable[CorpusFile | Path],
    db_path: Path,
    spec: RecallSpec,
    cache_dir: Path,
    progress: Progress | None = None,
    *,
    embedder: Embedder | None = None,
    driver: Driver = "auto",
    shared: SharedEntries | None = None,
) -> IndexStats:
    """Read, chunk and embed ``files`` into a new index at ``db_path`` (replacing any old one).

    Embeddings are looked up by content under ``cache_dir`` first: only chunks never seen before
    with this embedder are embedded. Unsupported files are listed in the stats, not fatal.
    """
    progress = progress or NullProgress()
    docs, skipped = read_documents(files, progress)
    chunks = chunk_documents(docs, spec)
    emb = embedder or load_embedder(spec.embedder)
    cache = EmbeddingCache(Path(cache_dir), emb.ident, emb.dim, shared)  # shared: the remote cache's embeddings/
    vectors, embedded = embed_chunks([c.text for c in chunks], emb, cache, progress)
    meta = {
        "format": FORMAT,
        "embedder": emb.name,
        "embedder_ident": emb.ident,
        "dim": str(emb.dim),
        "chunk_chars": str(spec.chunk_chars),
        "overlap_chars": str(spec.overlap_chars),
    }
    with atomic_path(Path(db_path)) as tmp:
        _write_db(tmp, chunks, vectors, meta, driver)
    modalities: dict[str, int] = {}
    for doc in docs:
        modalities[doc.modality.value] = modalities.get(doc.modality.value, 0) + 1
    return IndexStats(
        files=len(docs),
        chunks=len(chunks),
        skipped=tuple(skipped),
        embedder=emb.name,
        dim=emb.dim,
        embedded=embedded,
        cached=len(chunks) - embedded,
        modalities=modalities,
    )


class Index:
    """A read-only recall index. ``search`` embeds the query with the index's own embedder."""

    def __init__(self, db: VecConnection, meta: dict[str, str], embedder: Embedder | None = None) -> None:
        self.db = db
        self.meta = meta
        self.dim = int(meta["dim"])
        self._embedder = embedder

    @property
    def driver(self) -> str:
        return self.db.driver

    @property
    def embedder(self) -> Embedder:
        if self._embedder is None:
            self._embedder = load_embedder(self.meta["embedder"])
        if self._embedder.dim != self.dim:
            raise DataError(f"{self.db.path}: index has {self.dim}-d vectors but embedder {self._embedder.name} makes {self._embedder.dim}-d")
        return self._embedder

    def __len__(self) -> int:
        return int(self.db.execute("SELECT count(*) FROM kolm_chunks").fetchone()[0])

    def search(self, text: str, k: int) -> list[Hit]:
        """The ``k`` chunks closest to ``text``, best first."""
        return self.search_vector(self.embedder.embed([text])[0], k)

    def search_many(self, texts: Sequence[str], k: int) -> list[list[Hit]]:
        """``search`` for each text, embedding them in one batch."""
        if not texts:
            return []
        vectors = as_unit_rows(self.embedder.embed(list(texts)), self.dim)
        return [self.search_vector(v, k) for v in vectors]

    def search_vector(self, vector: np.ndarray, k: int) -> list[Hit]:
        if k < 1:
            return []
        vec = np.asarray(vector, dtype=np.float32)
        if vec.shape != (self.dim,):
            raise ValueError(f"query vector has shape {vec.shape}, index wants ({self.dim},)")
        rows = self.db.execute(
            "SELECT c.text, c.source, v.distance FROM "
            "(SELECT rowid, distance FROM kolm_vec WHERE embedding MATCH ? AND k = ?) AS v "
            "JOIN kolm_chunks AS c ON c.id = v.rowid ORDER BY v.distance, c.id",
            (vec.tobytes(), int(k)),
        ).fetchall()
        return [Hit(text, source, round(1.0 - float(dist), 6)) for text, source, dist in rows]

    def close(self) -> None:
        self.db.close()

    def __enter__(self) -> Index:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def open_index(db_path: Path | str, *, embedder: Embedder | None = None, driver: Driver = "auto") -> Index:
    """Open an index read-only; DataError naming the file when it is not a kolmbuild recall index."""
    db = connect(db_path, driver=driver, readonly=True)
    try:
        rows = db.execute("SELECT key, value FROM kolm_meta").fetchall()
    except Exception as exc:  # sqlite3.DatabaseError / apsw.SQLError: not our file
        db.close()
        raise DataError(f"{db_path}: not a kolmbuild recall index ({type(exc).__name__}: {exc})") from exc
    meta = {str(k): str(v) for k, v in rows}
    if meta.get("format") != FORMAT or "dim" not in meta or "embedder" not in meta:
        db.close()
        raise DataError(f"{db_path}: not a kolmbuild recall index (format {meta.get('format')!r})")
    if embedder is not None and canonical_name(embedder.name) != canonical_name(meta["embedder"]):
        db.close()
        raise DataError(f"{db_path}: built with embedder {meta['embedder']!r}, not {embedder.name!r}")
    return Index(db, meta, embedder)
