"""Recipe speed for the PHI redactor: calls/s in batch and single-call latency, on one core,
side by side with a naive redactor (one compiled regex per placeholder, applied one after the
other to each input) built from the same learned rules, and with the pack learned under
``recipes.generalize: exact`` (the formats the examples show: what the default learned before
the broad library) to show what broad shapes cost.

Usage: python bench/recipe.py [--inputs 20000] [--reps 7] [--out docs/bench/recipe.json]

The pack is learned from examples/phi-redactor/{train,eval}.jsonl (as the build does); the
inputs are fresh sentences from the example's generator with another seed. Both redactors, and
the exact pack, must give identical outputs on every input, else the run fails. Prints one JSON
record (and writes it to --out): best-of-``reps`` throughput in wall time and per CPU second of
this process (the packs timed in alternation; CPU time is what a loaded, shared machine bends least),
p50/p99 of single calls (timer overhead included and reported), the ratios to the naive baseline
and to the exact pack, the issue's targets and whether they were met.
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import os
import re
import sys
import time
from collections.abc import Callable, Sequence
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from _record import emit, machine  # noqa: E402  (bench/ is sys.path[0])

from kolmbuild.config.models import RecipesSpec, ShapeSpec, VerifierSpec  # noqa: E402
from kolmbuild.data import load_examples  # noqa: E402
from kolmbuild.recipes import RecipePack, SpanRecipe, learn  # noqa: E402
from kolmbuild.recipes.shape import FLAGS  # noqa: E402
from kolmbuild.verifier import synthesize  # noqa: E402

TARGET_BATCH = 1_200_000
TARGET_P99_US = 3.0
PHI = REPO / "examples" / "phi-redactor"


def fresh_inputs(n: int, seed: int) -> list[str]:
    spec = importlib.util.spec_from_file_location("phi_generate", PHI / "generate.py")
    assert spec is not None and spec.loader is not None
    gen = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(gen)
    return [r["input"] for r in gen.generate(seed, n)]


def naive(span: SpanRecipe) -> Callable[[str], str]:
    rules = [(re.compile(r.pattern, FLAGS), r.token) for r in span.rules]

    def redact(text: str) -> str:
        for rx, token in rules:
            text = rx.sub(token, text)
        return text

    return redact


def best_rate(fn: Callable[[], object], calls: int, reps: int, clock: Callable[[], float] = time.perf_counter) -> float:
    best = float("inf")
    for _ in range(reps):
        t = clock()
        fn()
        best = min(best, clock() - t)
    return calls / best


def latencies_us(fn: Callable[[str], object], inputs: Sequence[str], reps: int) -> tuple[float, float, float]:
    """(p50, p99, timer overhead) in µs over ``reps`` passes of single calls."""
    clock = time.perf_counter_ns
    samples: list[int] = []
    empty: list[int] = []
    for _ in range(reps):
        for x in inputs:
            t0 = clock()
            fn(x)
            samples.append(clock() - t0)
            t0 = clock()
            empty.append(clock() - t0)
    samples.sort()
    empty.sort()
    pick = lambda xs, q: xs[min(len(xs) - 1, int(q * len(xs)))] / 1000  # noqa: E731
    return pick(samples, 0.50), pick(samples, 0.99), pick(empty, 0.50)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--inputs", type=int, default=20000)
    ap.add_argument("--reps", type=int, default=7)
    ap.add_argument("--out", type=Path, default=REPO / "docs" / "bench" / "recipe.json")
    args = ap.parse_args(argv)
    if hasattr(os, "sched_setaffinity"):
        os.sched_setaffinity(0, {sorted(os.sched_getaffinity(0))[0]})  # one core

    shape = ShapeSpec()
    train = load_examples(PHI / "train.jsonl", shape)
    heldout = load_examples(PHI / "eval.jsonl", shape)
    verifier = synthesize(train, shape, VerifierSpec(), PHI)
    t = time.perf_counter()
    pack = learn(train, heldout, verifier, RecipesSpec(kinds=["span", "lookup"]), shape)
    learn_s = time.perf_counter() - t
    pack = RecipePack.from_json(json.loads(json.dumps(pack.to_json())))  # as shipped
    span = pack.recipes[0]
    assert isinstance(span, SpanRecipe) and len(pack.recipes) == 1
    exact = learn(train, heldout, verifier, RecipesSpec(kinds=["span", "lookup"], generalize="exact"), shape)
    exact = RecipePack.from_json(json.loads(json.dumps(exact.to_json())))

    inputs = fresh_inputs(args.inputs, seed=20261124)
    slow = naive(span)
    ours = pack.answer_batch(inputs)
    base = [slow(x) for x in inputs]
    if ours != base:
        bad = next(i for i, (a, b) in enumerate(zip(ours, base, strict=True)) if a != b)
        raise SystemExit(f"outputs differ on input {bad}: {inputs[bad]!r}: {ours[bad]!r} vs {base[bad]!r}")
    singles = [pack.answer(x) for x in inputs[:2000]]
    assert singles == ours[:2000]
    assert exact.answer_batch(inputs) == ours  # the fresh sentences use the examples' own formats

    n = len(inputs)
    rates: dict[str, float] = {}
    cpu: dict[str, float] = {}  # per CPU second of this process: what other load on a shared core does not bend
    for _ in range(args.reps):  # alternate, so that load on a shared machine hits every variant alike
        for name, fn in (("batch", lambda: pack.answer_batch(inputs)), ("exact_batch", lambda: exact.answer_batch(inputs)),
                         ("loop", lambda: [pack.answer(x) for x in inputs]),
                         ("exact_loop", lambda: [exact.answer(x) for x in inputs]),
                         ("naive", lambda: [slow(x) for x in inputs])):
            rates[name] = max(rates.get(name, 0.0), best_rate(fn, n, 1))
            cpu[name] = max(cpu.get(name, 0.0), best_rate(fn, n, 1, time.process_time))
    batch, batch_naive, loop = rates["batch"], rates["naive"], rates["loop"]
    sample = inputs[:5000]
    p50, p99, overhead = latencies_us(pack.answer, sample, 3)
    e50, e99, _ = latencies_us(exact.answer, sample, 3)
    n50, n99, _ = latencies_us(slow, sample, 3)
    record = {
        "bench": "recipe",
        "task": "phi-redactor",
        "inputs": n,
        "mean_chars": round(sum(map(len, inputs)) / n, 1),
        "placeholders": [r.token for r in span.rules],
        "learn_s": round(learn_s, 3),
        "batch_calls_per_s": round(batch),
        "single_loop_calls_per_s": round(loop),
        "naive_calls_per_s": round(batch_naive),
        "ratio_batch_vs_naive": round(batch / batch_naive, 2),
        "single_p50_us": round(p50, 2),
        "single_p99_us": round(p99, 2),
        "naive_p50_us": round(n50, 2),
        "naive_p99_us": round(n99, 2),
        "ratio_p99_naive_vs_single": round(n99 / p99, 2),
        "timer_overhead_us": round(overhead, 3),
        "exact": {
            "pattern_chars": {r.token: len(r.shape.regex()) for r in exact.recipes[0].rules},  # type: ignore[attr-defined]
            "batch_calls_per_s": round(rates["exact_batch"]),
            "single_loop_calls_per_s": round(rates["exact_loop"]),
            "single_p50_us": round(e50, 2),
            "single_p99_us": round(e99, 2),
        },
        "cpu_calls_per_s": {k: round(v) for k, v in cpu.items()},
        "ratio_batch_exact_vs_broad": round(rates["exact_batch"] / batch, 2),
        "ratio_loop_exact_vs_broad": round(rates["exact_loop"] / loop, 2),
        "cpu_ratio_batch_exact_vs_broad": round(cpu["exact_batch"] / cpu["batch"], 2),
        "cpu_ratio_loop_exact_vs_broad": round(cpu["exact_loop"] / cpu["loop"], 2),
        "targets": {"batch_calls_per_s": TARGET_BATCH, "single_p99_us": TARGET_P99_US},
        "met": {"batch": batch >= TARGET_BATCH, "single_p99": p99 <= TARGET_P99_US},
        "machine": machine(cores_pinned=1),
    }
    emit(record, args.out)
    return 0


if __name__ == "__main__":
    sys.exit(main())
