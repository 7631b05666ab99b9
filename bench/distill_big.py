"""Distill with one 1 MB example (issue 16, item 6): bounded work, not minutes.

Usage: python bench/distill_big.py [--reps 3] [--out docs/bench/distill_big.json]

Runs the distill stage's action (no teacher: the verifier synthesis and gold labels, which is
where the quadratic pass was) on the PHI redactor's 200 examples — the baseline, measured in the
same run — and on the same examples plus one ~1 MB example. Also times the verifier's former
edit-task check (difflib over the whole texts) on 2, 4 and 8 KB prefixes of that example and
extrapolates it to 1 MB as a lower bound (it grows faster than quadratically; running it on 1 MB
does not finish in hours); the current check cuts each side to
``EDIT_WINDOW`` characters and compares at most ``EDIT_SAMPLE`` pairs.
"""

from __future__ import annotations

import argparse
import difflib
import importlib.util
import json
import os
import platform
import sys
import tempfile
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from _record import emit, median_time  # noqa: E402  (bench/ is sys.path[0])

from kolmbuild.data import write_jsonl  # noqa: E402
from kolmbuild.engine.stage import StageContext  # noqa: E402
from kolmbuild.stages import distill  # noqa: E402
from kolmbuild.verifier import core  # noqa: E402

PHI = REPO / "examples" / "phi-redactor"


def rows_of(extra: dict[str, object] | None) -> list[dict[str, object]]:
    rows = [{"id": i, **json.loads(line)} for i, line in enumerate((PHI / "train.jsonl").read_text().splitlines())]
    return rows + ([{"id": len(rows), **extra}] if extra else [])


def distill_once(work: Path, rows: list[dict[str, object]]) -> None:
    train = work / "train.jsonl"
    write_jsonl(train, rows)
    out = Path(tempfile.mkdtemp(dir=work))
    ctx = StageContext(
        target="bench", stage="distill", key="k", project_dir=work, outdir=out, cache_dir=work / "cache",
        params={"task.teacher": None, "task.shape": {"input": "text", "output": "text"},
                "task.verifier": {"kind": "auto", "path": None}, "task.recall": {}, "task.description": ""},
        inputs={"task.verifier.path": None}, upstream={"ingest": {"train.jsonl": train}}, receipts={},
    )  # fmt: skip
    distill.run(ctx)


def big_example(chars: int) -> dict[str, str]:
    """About ``chars`` characters of distinct PHI sentences (the example's own generator) as one
    example, with its redaction as the output."""
    spec = importlib.util.spec_from_file_location("phi_generate", PHI / "generate.py")
    assert spec is not None and spec.loader is not None
    gen = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(gen)
    rows = gen.generate(seed=99, n=chars // 60)
    return {"input": " ".join(r["input"] for r in rows), "output": " ".join(r["output"] for r in rows)}


def old_edit_ratio(a: str, b: str) -> float:
    """The check as it was: difflib over the whole texts."""
    return difflib.SequenceMatcher(None, a, b, autojunk=False).ratio()


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--reps", type=int, default=3)
    ap.add_argument("--out", default=None)
    args = ap.parse_args()
    big = big_example(1_000_000)
    big_in = big["input"]
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        base = median_time(lambda: distill_once(work, rows_of(None)), args.reps)
        with_big = median_time(lambda: distill_once(work, rows_of(big)), args.reps)
    old: dict[str, float] = {}
    for size in (2_048, 4_096, 8_192):
        a, b = big["input"][:size], big["output"][:size]
        old[str(size)] = round(median_time(lambda a=a, b=b: old_edit_ratio(a, b), 1), 3)
    grow = len(big_in) / 8_192
    record = {
        "bench": "distill_big",
        "what": "distill stage action (no teacher) on the PHI examples, and with one ~1 MB example added",
        "example_bytes": len(big_in.encode()),
        "baseline_s": round(base, 3),
        "with_1mb_example_s": round(with_big, 3),
        "ratio_to_baseline": round(with_big / base, 2),
        "edit_check_window_chars": core.EDIT_WINDOW,
        "edit_check_max_pairs": core.EDIT_SAMPLE,
        "before": {
            "difflib_whole_text_s": old,
            "extrapolated_1mb_s_at_least": round(old["8192"] * grow**2, 0),
            "note": "the former check, timed on prefixes of the 1 MB example; at least quadratic (measured: worse), so ≥ ×(1 MB / 8 KB)² at 1 MB",
        },
        "machine": {"python": platform.python_version(), "cpus": os.cpu_count(), "platform": platform.platform()},
        "reps": args.reps,
    }
    emit(record, args.out)


if __name__ == "__main__":
    main()
