"""How the PHI redactor's recipes generalize: per entity, the share of variant sentences that
leave it (partly) in clear, and the share where its placeholder replaced other text.

Usage: python bench/variants.py [--seed 20260611] [--rows 3000] [--before RECORD.json] [--out docs/bench/variants.json]

The pack is learned from examples/phi-redactor/{train,eval}.jsonl as the build does, under each
``recipes.generalize`` policy the tree knows (``broad``, the default, and ``exact``: the formats
the examples show), and run on sentences from examples/phi-redactor/variants.py (other
separators, case, spacing, word order and locales than the 200 examples show, and decoy
sentences). ``exact`` in the same run is the baseline. ``--before`` embeds the record this
script wrote on an earlier commit (run there with PYTHONPATH at that tree; it measures the
default policy only when the tree has no ``recipes.generalize``).
"""

from __future__ import annotations

import argparse
import json
import runpy
import sys
import time
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from _record import emit, machine  # noqa: E402  (bench/ is sys.path[0])

from kolmbuild.config.models import RecipesSpec, ShapeSpec, VerifierSpec  # noqa: E402
from kolmbuild.data import load_examples  # noqa: E402
from kolmbuild.recipes import learn  # noqa: E402
from kolmbuild.verifier import synthesize  # noqa: E402

PHI = REPO / "examples" / "phi-redactor"


def policies() -> list[str]:
    field = RecipesSpec.model_fields.get("generalize")
    return ["broad", "exact"] if field is not None else ["default"]


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--seed", type=int, default=20260611)
    ap.add_argument("--rows", type=int, default=3000)
    ap.add_argument("--before", type=Path)
    ap.add_argument("--out", type=Path, default=REPO / "docs" / "bench" / "variants.json")
    args = ap.parse_args(argv)
    variants: dict[str, Any] = runpy.run_path(str(PHI / "variants.py"))
    rows = variants["generate"](args.seed, args.rows)
    shape = ShapeSpec()
    train = load_examples(PHI / "train.jsonl", shape)
    heldout = load_examples(PHI / "eval.jsonl", shape)
    verifier = synthesize(train, shape, VerifierSpec(), PHI)
    results: dict[str, Any] = {}
    for policy in policies():
        spec = RecipesSpec(kinds=["span", "lookup"]) if policy == "default" else RecipesSpec(kinds=["span", "lookup"],
                                                                                          generalize=policy)
        t = time.perf_counter()
        pack = learn(train, heldout, verifier, spec, shape)
        learn_s = time.perf_counter() - t
        scored = variants["score"](rows, pack.answer_batch([r["input"] for r in rows]))
        entities = {k: {key: e[key] for key in ("sentences", "leaked", "leak_rate", "over_redacted", "over_rate")}
                    for k, e in scored["entities"].items()}
        results[policy] = {"entities": entities, "negatives": scored["negatives"],
                           "negatives_changed": scored["negatives_changed"], "learn_s": round(learn_s, 3),
                           "heldout_accuracy": pack.report.get("accuracy"),
                           "leak_examples": {k: e["leak_examples"][:2] for k, e in scored["entities"].items()}}
    record: dict[str, Any] = {"bench": "variants", "task": "phi-redactor", "seed": args.seed, "rows": len(rows),
                              "policies": results}
    if "broad" in results and "exact" in results:
        record["leak_rate_exact_minus_broad"] = {
            k: round(results["exact"]["entities"][k]["leak_rate"] - results["broad"]["entities"][k]["leak_rate"], 4)
            for k in results["broad"]["entities"]}
    if args.before:
        record["before"] = json.loads(args.before.read_text())
    record["machine"] = machine()
    emit(record, args.out)
    return 0


if __name__ == "__main__":
    sys.exit(main())
