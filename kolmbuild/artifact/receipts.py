"""Receipts against components: a component made by a stage must be byte for byte that stage's output.

The manifest's receipt chain records, per stage, the CIDs of the outputs it made; the package
stage copies some of those outputs in as components. Both lists are signed, so they can only
disagree if the bytes changed between the stage and the package (a damaged cache object) or the
file was made by hand; either way the artifact must not be trusted. :func:`receipt_mismatches`
is checked when an artifact is sealed and again by ``verify``.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

# component name -> (stage, output file) that the package stage takes it from
COMPONENT_SOURCES: dict[str, tuple[str, str]] = {
    "heldout": ("ingest", "heldout.jsonl"),
    "index": ("recall", "index.sqlite"),
    "verifier": ("distill", "verifier.json"),
    "recipes": ("decompose", "recipes.json"),
    "adapter": ("train", "adapter_model.safetensors"),
    "adapter_config": ("train", "adapter_config.json"),
    "adapter_gguf": ("train", "adapter.gguf"),
    "base_gguf": ("train", "base.gguf"),
    "eval": ("evaluate", "eval.json"),
}


def receipt_mismatches(manifest: Mapping[str, Any]) -> list[str]:
    """What disagrees between the receipts and the components ([] when all agree).

    Where a stage's receipt lists the output a component is made from, the two CIDs must be
    equal, and the component must be there (the package stage ships every such output). A
    component whose stage has no receipt, or whose receipt does not list that output, has nothing
    to be compared with (an artifact written outside a build).
    """
    components = manifest.get("components")
    receipts = manifest.get("receipts")
    if not isinstance(components, Mapping) or not isinstance(receipts, list):
        return ["the manifest has no component table or no receipt list"]
    by_stage: dict[str, Mapping[str, Any]] = {}
    problems: list[str] = []
    for i, r in enumerate(receipts):
        if not isinstance(r, Mapping) or not isinstance(r.get("stage"), str) or not isinstance(r.get("outputs"), Mapping):
            problems.append(f"receipt {i} is not a {{stage, outputs}} record")
            continue
        if r["stage"] in by_stage:
            problems.append(f"stage {r['stage']!r} has two receipts")
        by_stage[r["stage"]] = r["outputs"]
    for component, (stage, output) in COMPONENT_SOURCES.items():
        outputs = by_stage.get(stage)
        if outputs is None:
            continue
        entry = components.get(component)
        recorded = outputs.get(output)
        cid = entry.get("cid") if isinstance(entry, Mapping) else None
        if recorded is None:
            continue
        if entry is None:
            problems.append(f"the {stage} receipt lists {output} ({recorded}) but component {component!r} is absent")
        elif cid != recorded:
            problems.append(f"component {component!r} is {cid}, but the {stage} receipt's {output} is {recorded}")
    return problems
