"""Stage ``recall``: index.sqlite and recall.json from a corpus; recall.json alone without one."""

from __future__ import annotations

import json
from pathlib import Path

from kolmbuild.engine.stage import StageContext
from kolmbuild.recall import open_index
from kolmbuild.stages import recall


def ctx_for(root: Path, corpus: str | None, n: int = 1) -> StageContext:
    out = root / f"out{n}"
    out.mkdir()
    return StageContext(
        target="t", stage="recall", key="k", project_dir=root, outdir=out, cache_dir=root / "cache",
        params={"task.corpus": corpus, "task.recall": {"chunk_chars": 120, "overlap_chars": 20, "top_k": 2}},
        inputs={"task.corpus": (root / corpus) if corpus else None}, upstream={}, receipts={},
    )


def test_no_corpus_means_no_index(tmp_path: Path) -> None:
    ctx = ctx_for(tmp_path, None)
    result = recall.run(ctx)
    assert [p.name for p in ctx.outdir.iterdir()] == ["recall.json"]
    assert json.loads(ctx.output("recall.json").read_text()) == dict(result.metrics)
    assert result.metrics["corpus"] is False and result.metrics["chunks"] == 0


def test_corpus_is_indexed_and_rebuild_reuses_embeddings(tmp_path: Path) -> None:
    docs = tmp_path / "docs"
    docs.mkdir()
    (docs / "a.txt").write_text("The refund window is thirty days from delivery. " * 4)
    (docs / "b.md").write_text("# Shipping\n\nOrders ship within two business days.")
    (docs / "c.bin").write_bytes(bytes(range(256)))
    ctx = ctx_for(tmp_path, "docs")
    result = recall.run(ctx)
    m = result.metrics
    assert (m["files"], m["embedder"], m["dim"]) == (2, "all-MiniLM-L6-v2", 384)
    assert m["chunks"] >= 3 and m["skipped"] == [{"file": "c.bin", "reason": "binary file of unknown format"}]
    assert json.loads(ctx.output("recall.json").read_text()) == m
    assert "embedded" in result.summary and "skipped 1: c.bin" in result.summary
    with open_index(ctx.output("index.sqlite")) as index:
        assert index.search("how fast do orders ship", 1)[0].source == "b.md"

    again = ctx_for(tmp_path, "docs", 2)
    result2 = recall.run(again)
    assert result2.metrics == m
    assert f"0 embedded, {m['chunks']} cached" in result2.summary
    assert again.output("index.sqlite").read_bytes() == ctx.output("index.sqlite").read_bytes()


def test_corpus_from_an_fsspec_url(tmp_path: Path) -> None:
    import fsspec

    fs = fsspec.filesystem("memory")
    fs.pipe("/kolm-stage-corpus/faq/returns.txt", b"Returns are accepted within thirty days.")
    fs.pipe("/kolm-stage-corpus/faq/hours.txt", b"The shop opens at nine and closes at five.")
    try:
        out = tmp_path / "out"
        out.mkdir()
        ctx = StageContext(
            target="t", stage="recall", key="k", project_dir=tmp_path, outdir=out, cache_dir=tmp_path / "cache",
            params={"task.corpus": "memory://kolm-stage-corpus", "task.recall": {}},
            inputs={"task.corpus": None},  # the engine names remote inputs, it does not hash them
            upstream={}, receipts={},
        )
        metrics = recall.run(ctx).metrics
        assert (metrics["files"], metrics["chunks"]) == (2, 2)
        with open_index(ctx.output("index.sqlite")) as index:
            assert index.search("when does the store open", 1)[0].source == "faq/hours.txt"
    finally:
        fs.rm("/kolm-stage-corpus", recursive=True)
