"""Recall index rebuild after a one-file change vs a cold build, and search latency.

Usage: python bench/recall.py [--files 40] [--chars 3000] [--reps 3] [--out docs/bench/recall.json]

Prints one JSON record (and writes it to --out). All in this one run, with the real MiniLM
embedder (loaded once, its load time reported apart):
  * cold: an empty embedding cache, every chunk embedded (the baseline);
  * one_change: the same corpus with one file edited, the cache warm: only that file's changed
    chunks are embedded; ``ratio_cold_to_one_change`` is how many times faster that is;
  * search: median seconds per top-k query (embedding the query included) on the built index.
"""

from __future__ import annotations

import argparse
import platform
import random
import shutil
import statistics
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from _record import emit  # noqa: E402  (bench/ is sys.path[0])

from kolmbuild.config.models import RecallSpec  # noqa: E402
from kolmbuild.recall import build_index, list_corpus, open_index  # noqa: E402
from kolmbuild.recall.embedder import load_embedder  # noqa: E402

WORDS = ("patient dose tablet daily refund order shipping capital river mountain protein enzyme "
         "contract clause invoice payment server latency cache index vector embedding query").split()


def make_corpus(root: Path, files: int, chars: int, seed: int = 0) -> None:
    rng = random.Random(seed)
    for i in range(files):
        words: list[str] = []
        while sum(len(w) + 1 for w in words) < chars:
            words.append(rng.choice(WORDS))
            if rng.random() < 0.08:
                words[-1] += "."
        (root / f"doc{i:03d}.txt").write_text(" ".join(words))


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--files", type=int, default=40)
    ap.add_argument("--chars", type=int, default=3000)
    ap.add_argument("--reps", type=int, default=3)
    ap.add_argument("--out", type=Path, default=ROOT / "docs/bench/recall.json")
    args = ap.parse_args()

    t = time.perf_counter()
    embedder = load_embedder("all-MiniLM-L6-v2")
    load_s = time.perf_counter() - t
    spec = RecallSpec()
    work = Path(tempfile.mkdtemp(prefix="kolm-bench-recall-"))
    try:
        corpus = work / "corpus"
        corpus.mkdir()
        make_corpus(corpus, args.files, args.chars)
        cold, change = [], []
        chunks = embedded = 0
        for rep in range(args.reps):
            cache = work / f"emb{rep}"
            t = time.perf_counter()
            stats = build_index(list_corpus(str(corpus), work), work / "index.sqlite", spec, cache, embedder=embedder)
            cold.append(time.perf_counter() - t)
            chunks = stats.chunks
            edited = corpus / "doc000.txt"
            edited.write_text(edited.read_text() + f" edit {rep}.")
            t = time.perf_counter()
            stats = build_index(list_corpus(str(corpus), work), work / "index.sqlite", spec, cache, embedder=embedder)
            change.append(time.perf_counter() - t)
            embedded = stats.embedded
        queries = [" ".join(random.Random(i).sample(WORDS, 4)) for i in range(20)]
        with open_index(work / "index.sqlite", embedder=embedder) as index:
            index.search(queries[0], 4)
            lat = []
            for q in queries:
                t = time.perf_counter()
                index.search(q, 4)
                lat.append(time.perf_counter() - t)
            driver = index.driver
    finally:
        shutil.rmtree(work, ignore_errors=True)
    record = {
        "bench": "recall",
        "files": args.files,
        "chars_per_file": args.chars,
        "chunks": chunks,
        "reps": args.reps,
        "machine": platform.machine(),
        "python": platform.python_version(),
        "sqlite_driver": driver,
        "embedder_load_s": round(load_s, 3),
        "cold_build_s": round(statistics.median(cold), 4),
        "one_change_build_s": round(statistics.median(change), 4),
        "one_change_chunks_embedded": embedded,
        "ratio_cold_to_one_change": round(statistics.median(cold) / statistics.median(change), 2),
        "search_p50_s": round(statistics.median(lat), 5),
    }
    emit(record, args.out)


if __name__ == "__main__":
    main()
