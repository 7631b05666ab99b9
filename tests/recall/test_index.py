"""The sqlite-vec index with the real MiniLM embedder: top-k on both SQLite paths, incremental
embedding, skipped files, fsspec corpora, bad index files."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import fsspec
import numpy as np
import pytest
from kolm_recall_helpers import Counting, make_pdf

from kolmbuild.config.models import RecallSpec
from kolmbuild.errors import DataError
from kolmbuild.recall import build_index, connect, list_corpus, open_index
from kolmbuild.recall import db as dbmod

REPO = Path(__file__).resolve().parents[2]
DOCS = {
    "geo/france.txt": "Paris is the capital of France. The Seine flows through Paris.",
    "geo/japan.md": "# Japan\n\nTokyo is the capital of Japan and its largest city.",
    "kitchen/eggs.md": "## Boiling eggs\n\nSimmer an egg for nine minutes for a firm yolk, then cool it in ice water.",
    "pharmacy/aspirin.json": json.dumps({"drug": {"name": "aspirin", "max_daily_mg": 4000, "use": "pain and fever"}}),
    "astro/mars.jsonl": '{"planet": "Mars", "fact": "Mars has two small moons, Phobos and Deimos."}\n',
}
SPEC = RecallSpec(chunk_chars=200, overlap_chars=20)


def write_corpus(root: Path) -> Path:
    for name, text in DOCS.items():
        (root / name).parent.mkdir(parents=True, exist_ok=True)
        (root / name).write_text(text)
    (root / "pharmacy/leaflet.pdf").write_bytes(make_pdf(["Ibuprofen: take 200 mg every six hours with food."]))
    (root / "img/logo.png").parent.mkdir(parents=True, exist_ok=True)
    (root / "img/logo.png").write_bytes(b"\x89PNG\r\n\x1a\n\x00\x00")
    (root / "broken.json").write_text('{"oops": ')
    (root / ".git").mkdir()
    (root / ".git/HEAD").write_text("ref: refs/heads/main")
    return root


@pytest.fixture
def corpus(tmp_path: Path) -> Path:
    return write_corpus(tmp_path / "corpus")


def test_top_k_answers_and_unsupported_files_are_listed(corpus: Path, tmp_path: Path, counting: Counting) -> None:
    stats = build_index(list_corpus(str(corpus), tmp_path), tmp_path / "index.sqlite", SPEC, tmp_path / "emb", embedder=counting)
    assert stats.files == 6 and stats.chunks == 6
    assert [(s.file, s.reason.split(" ")[0]) for s in stats.skipped] == [("broken.json", "invalid"), ("img/logo.png", "image")]
    assert stats.modalities == {"json": 1, "jsonl": 1, "markdown": 2, "pdf": 1, "text": 1}
    assert stats.to_json()["embedder"] == "all-MiniLM-L6-v2" and stats.dim == 384
    with open_index(tmp_path / "index.sqlite", embedder=counting) as index:
        assert len(index) == 6
        cases = {
            "How long should I boil an egg?": "kitchen/eggs.md",
            "What is the capital city of France?": "geo/france.txt",
            "maximum daily dose of aspirin": "pharmacy/aspirin.json",
            "how often can I take ibuprofen": "pharmacy/leaflet.pdf",
            "moons of the red planet": "astro/mars.jsonl",
        }
        for query, source in cases.items():
            hits = index.search(query, 3)
            assert len(hits) == 3 and hits[0].source == source, (query, hits)
            assert hits[0].score > hits[1].score >= hits[2].score
        assert len(index.search("anything", 50)) == 6
        batch = index.search_many(list(cases), 1)
        assert [h[0].source for h in batch] == list(cases.values())


def test_only_changed_files_are_reembedded(corpus: Path, tmp_path: Path, counting: Counting) -> None:
    db = tmp_path / "index.sqlite"
    first = build_index(list_corpus(str(corpus), tmp_path), db, SPEC, tmp_path / "emb", embedder=counting)
    assert first.embedded == 6 and first.cached == 0
    counting.texts.clear()

    again = build_index(list_corpus(str(corpus), tmp_path), db, SPEC, tmp_path / "emb", embedder=counting)
    assert (again.embedded, again.cached, counting.texts) == (0, 6, [])

    (corpus / "geo/japan.md").write_text("# Japan\n\nKyoto was the capital of Japan for over a thousand years.")
    (corpus / "geo/peru.txt").write_text("Lima is the capital of Peru.")
    third = build_index(list_corpus(str(corpus), tmp_path), db, SPEC, tmp_path / "emb", embedder=counting)
    assert sorted(counting.texts) == ["# Japan\n\nKyoto was the capital of Japan for over a thousand years.", "Lima is the capital of Peru."]
    assert (third.embedded, third.cached, third.chunks) == (2, 5, 7)
    with open_index(db, embedder=counting) as index:
        assert index.search("former imperial capital Kyoto", 1)[0].source == "geo/japan.md"


def test_stdlib_sqlite3_path_with_an_extension_capable_dbapi(corpus: Path, tmp_path: Path, counting: Counting, monkeypatch: pytest.MonkeyPatch) -> None:
    """The ``sqlite3`` path: the DB-API module that Python's stdlib sqlite3 is, built with extension
    loading (pysqlite3 is the same module packaged separately)."""
    pysqlite3 = pytest.importorskip("pysqlite3.dbapi2")
    monkeypatch.setattr(dbmod, "sqlite3_module", lambda: pysqlite3)
    assert dbmod.pick_driver() == "sqlite3"
    db = tmp_path / "index.sqlite"
    build_index(list_corpus(str(corpus), tmp_path), db, SPEC, tmp_path / "emb", embedder=counting)
    with open_index(db, embedder=counting) as index:
        assert index.driver == "sqlite3"
        assert index.search("boiled egg timing", 2)[0].source == "kitchen/eggs.md"
    with connect(db) as conn:
        assert conn.driver == "sqlite3"
        assert conn.execute("SELECT vec_version()").fetchone()[0].startswith("v")


def test_apsw_path_when_stdlib_cannot_load_extensions(corpus: Path, tmp_path: Path, counting: Counting, monkeypatch: pytest.MonkeyPatch) -> None:
    class NoExtensions:
        class Connection:
            pass

    monkeypatch.setattr(dbmod, "sqlite3_module", lambda: NoExtensions)
    assert dbmod.pick_driver() == "apsw"
    db = tmp_path / "index.sqlite"
    build_index(list_corpus(str(corpus), tmp_path), db, SPEC, tmp_path / "emb", embedder=counting)
    with open_index(db, embedder=counting) as index:
        assert index.driver == "apsw"
        assert index.search("capital of Japan", 2)[0].source == "geo/japan.md"
    with pytest.raises(Exception, match="cannot load extensions"):
        connect(db, driver="sqlite3")


def _interpreter_with_extension_loading() -> str | None:
    for exe in ("/usr/bin/python3", "/usr/local/bin/python3"):
        if not os.path.exists(exe) or os.path.realpath(exe) == os.path.realpath(sys.executable):
            continue
        probe = subprocess.run([exe, "-c", "import sys, sqlite3; print(sys.version_info[:2] == (3, 11) and hasattr(sqlite3.Connection, 'enable_load_extension'))"],
                               capture_output=True, text=True)
        if probe.stdout.strip() == "True":
            return exe
    return None


def test_real_stdlib_sqlite3_in_another_interpreter(corpus: Path, tmp_path: Path, counting: Counting) -> None:
    """The index built here (apsw) answers top-k under a Python whose own stdlib sqlite3 loads sqlite-vec."""
    exe = _interpreter_with_extension_loading()
    if exe is None:
        pytest.skip("no second Python 3.11 whose stdlib sqlite3 can load extensions")
    db = tmp_path / "index.sqlite"
    build_index(list_corpus(str(corpus), tmp_path), db, SPEC, tmp_path / "emb", embedder=counting)
    query = counting.embed(["What is the capital city of France?"])[0]
    np.save(tmp_path / "q.npy", query)
    site = next(p for p in sys.path if p.endswith("site-packages") and Path(p, "sqlite_vec").is_dir())
    script = textwrap.dedent(f"""
        import json, sqlite3, numpy as np
        from kolmbuild.recall.db import pick_driver
        from kolmbuild.recall import open_index
        assert sqlite3.Connection.enable_load_extension
        with open_index({str(db)!r}) as ix:
            hits = ix.search_vector(np.load({str(tmp_path / 'q.npy')!r}), 2)
            print(json.dumps({{"auto": pick_driver(), "driver": ix.driver, "sources": [h.source for h in hits]}}))
    """)
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(REPO), site])}
    proc = subprocess.run([exe, "-c", script], capture_output=True, text=True, env=env, timeout=120)
    assert proc.returncode == 0, proc.stderr
    out = json.loads(proc.stdout)
    assert out["auto"] == "sqlite3" and out["driver"] == "sqlite3"
    assert out["sources"][0] == "geo/france.txt"


def test_fsspec_corpus(tmp_path: Path, counting: Counting) -> None:
    fs = fsspec.filesystem("memory")
    for name, text in DOCS.items():
        fs.pipe(f"/kolm-test-corpus/{name}", text.encode())
    try:
        files = list_corpus("memory://kolm-test-corpus", tmp_path)
        assert sorted(f.name for f in files) == sorted(DOCS)
        stats = build_index(files, tmp_path / "index.sqlite", SPEC, tmp_path / "emb", embedder=counting)
        assert stats.files == 5 and not stats.skipped
        with open_index(tmp_path / "index.sqlite", embedder=counting) as index:
            assert index.search("egg cooking time", 1)[0].source == "kitchen/eggs.md"
    finally:
        fs.rm("/kolm-test-corpus", recursive=True)
    with pytest.raises(DataError, match="task.corpus: memory://kolm-test-corpus: no such file or folder"):
        list_corpus("memory://kolm-test-corpus", tmp_path)


def test_missing_local_corpus_names_the_key(tmp_path: Path) -> None:
    with pytest.raises(DataError, match=r"task.corpus: .*nope: no such file or folder"):
        list_corpus("nope", tmp_path)


def test_not_an_index_is_a_data_error(tmp_path: Path) -> None:
    bad = tmp_path / "random.sqlite"
    bad.write_bytes(b"this is not sqlite at all" * 100)
    with pytest.raises(DataError, match="random.sqlite: not a kolmbuild recall index"):
        open_index(bad)
    other = tmp_path / "other.sqlite"
    with connect(other) as conn:
        conn.execute("CREATE TABLE t (x)")
    with pytest.raises(DataError, match="other.sqlite: not a kolmbuild recall index"):
        open_index(other)
    with pytest.raises(DataError, match="no such recall index"):
        open_index(tmp_path / "absent.sqlite")


def test_failed_build_leaves_the_old_index_whole(corpus: Path, tmp_path: Path, counting: Counting) -> None:
    db = tmp_path / "index.sqlite"
    build_index(list_corpus(str(corpus), tmp_path), db, SPEC, tmp_path / "emb", embedder=counting)
    before = db.read_bytes()

    class Failing(Counting):
        def embed(self, texts):  # type: ignore[no-untyped-def]
            raise RuntimeError("embedder crashed")

    (corpus / "new.txt").write_text("A brand new document that needs embedding.")
    with pytest.raises(RuntimeError):
        build_index(list_corpus(str(corpus), tmp_path), db, SPEC, tmp_path / "emb", embedder=Failing(counting.inner))
    assert db.read_bytes() == before
    assert sorted(p.name for p in tmp_path.iterdir() if p.name.startswith(".")) == []


def test_same_corpus_same_index_bytes(corpus: Path, tmp_path: Path, counting: Counting) -> None:
    a, b = tmp_path / "a.sqlite", tmp_path / "b.sqlite"
    build_index(list_corpus(str(corpus), tmp_path), a, SPEC, tmp_path / "emb1", embedder=counting)
    build_index(list_corpus(str(corpus), tmp_path), b, SPEC, tmp_path / "emb2", embedder=counting)
    assert a.read_bytes() == b.read_bytes()
