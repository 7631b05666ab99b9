"""Bounded work in decompose: learning the PHI recipes with one long example among the 200.

Usage: python bench/decompose_bound.py [--sizes 0,100000,1000000,20000000] [--timeout 900]
       [--before RECORD.json] [--out docs/bench/decompose_bound.json]

The long example is a redaction of a long note (PHI sentences from the example's generator joined
into one text of about SIZE characters, and its redacted form). For each size the script prints
CPU seconds of ``kolmbuild.recipes.learn``, the peak of Python allocations during it (tracemalloc)
and the work given to ``difflib`` (the largest product of sequence lengths one diff received:
the quadratic term), with ratios to the run without the long example measured in the same run.
A size whose learning does not finish within --timeout seconds is recorded as such (run in a
child process, so a runaway diff is stopped). ``--before`` embeds a record this script wrote for
an earlier commit (run there with PYTHONPATH pointing at that tree), to show before and after.
"""

from __future__ import annotations

import argparse
import json
import multiprocessing
import runpy
import sys
import time
import tracemalloc
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from _record import emit, machine  # noqa: E402  (bench/ is sys.path[0])

PHI = REPO / "examples" / "phi-redactor"


def long_example(size: int) -> dict[str, str]:
    """About ``size`` characters: up to 2,000 distinct generated sentences, repeated."""
    gen = runpy.run_path(str(PHI / "generate.py"))
    rows = gen["generate"](99, min(2000, size // 60 + 1))
    src, dst, total = [], [], 0
    while total < size:
        for row in rows:
            src.append(row["input"])
            dst.append(row["output"])
            total += len(row["input"]) + 1
            if total >= size:
                break
    return {"input": " ".join(src), "output": " ".join(dst)}


def measure(size: int, queue: Any) -> None:
    import kolmbuild.recipes.align as align
    from kolmbuild.config.models import RecipesSpec, ShapeSpec, VerifierSpec
    from kolmbuild.data import Example, load_examples
    from kolmbuild.recipes import learn
    from kolmbuild.verifier import synthesize

    shape = ShapeSpec()
    train = load_examples(PHI / "train.jsonl", shape)
    heldout = load_examples(PHI / "eval.jsonl", shape)
    verifier = synthesize(train, shape, VerifierSpec(), PHI)  # from the 200 rows: the verifier is not measured here
    if size:
        row = long_example(size)
        train = [*train, Example(len(train), row["input"], row["output"])]
    work = {"max_product": 0, "calls": 0}
    real = align.difflib.SequenceMatcher

    class Counting(real):  # type: ignore[misc, valid-type]
        def __init__(self, isjunk: Any = None, a: Any = "", b: Any = "", autojunk: bool = True) -> None:
            work["calls"] += 1
            work["max_product"] = max(work["max_product"], len(a) * len(b))
            super().__init__(isjunk, a, b, autojunk)

    align.difflib.SequenceMatcher = Counting
    tracemalloc.start()
    t = time.process_time()
    pack = learn(train, heldout, verifier, RecipesSpec(kinds=["span", "lookup"]), shape)
    cpu = time.process_time() - t
    peak = tracemalloc.get_traced_memory()[1]
    tracemalloc.stop()
    queue.put({"size": size, "cpu_s": round(cpu, 3), "peak_mb": round(peak / 2**20, 2),
               "diff_calls": work["calls"], "diff_max_product": work["max_product"],
               "kept": [r.kind for r in pack.recipes], "accuracy": pack.report.get("accuracy")})


def run(size: int, timeout: float) -> dict[str, Any]:
    ctx = multiprocessing.get_context("fork")
    queue = ctx.Queue()
    proc = ctx.Process(target=measure, args=(size, queue))
    t = time.perf_counter()
    proc.start()
    proc.join(timeout)
    if proc.is_alive():
        proc.kill()
        proc.join()
        return {"size": size, "finished": False, "timeout_s": timeout}
    result = queue.get(timeout=10)
    return {**result, "finished": True, "wall_s": round(time.perf_counter() - t, 2)}


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--sizes", default="0,100000,1000000,20000000")
    ap.add_argument("--before", type=Path, help="a record of this script from an earlier commit, embedded as is")
    ap.add_argument("--timeout", type=float, default=900)
    ap.add_argument("--out", type=Path, default=REPO / "docs" / "bench" / "decompose_bound.json")
    args = ap.parse_args(argv)
    sizes = [int(s) for s in args.sizes.split(",")]
    if 0 not in sizes:
        sizes.insert(0, 0)
    runs = [run(size, args.timeout) for size in sizes]
    base = runs[0]
    for r in runs[1:]:
        if r["finished"] and base["finished"]:
            r["ratio_cpu_vs_none"] = round(r["cpu_s"] / max(base["cpu_s"], 1e-9), 2)
            r["ratio_peak_vs_none"] = round(r["peak_mb"] / max(base["peak_mb"], 1e-9), 2)
    record = {
        "bench": "decompose_bound",
        "task": "phi-redactor + one long example",
        "runs": runs,
        **({"before": json.loads(args.before.read_text())} if args.before else {}),
        "machine": machine(),
    }
    emit(record, args.out)
    return 0


if __name__ == "__main__":
    sys.exit(main())
