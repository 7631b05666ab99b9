"""The compute block the package stage signs: deterministic, and it says what it was computed from."""

from __future__ import annotations

import json

from kolmbuild.compute import compute_block
from kolmbuild.compute.registry import builtin_conf_dirs, load_registry
from kolmbuild.engine.stage import StageReceipt


def receipts(rows: int = 400, trained: bool = True) -> dict[str, StageReceipt]:
    return {
        "ingest": StageReceipt("ingest", 1, "k1", {}, {"rows": rows}),
        "train": StageReceipt("train", 1, "k2", {}, {"trained": trained, "base": {"name": "smollm2"},
                                                     "device": "cpu", "steps": 100}),
        "evaluate": StageReceipt("evaluate", 1, "k3", {}, {"K": 0.9}),
    }


def test_block_is_deterministic_and_complete():
    spec = load_registry(builtin_conf_dirs()).get("vast")
    a = compute_block(spec.model_dump(mode="json"), receipts())
    b = compute_block(spec, receipts())
    assert json.dumps(a, sort_keys=True) == json.dumps(b, sort_keys=True)
    assert a["backend"] == "vast" and a["price"] == {"basis": "per-hour", "rate_usd": 0.5}
    assert a["cost_usd"] == a["estimate"]["cost_usd"] and a["duration_seconds"] == a["estimate"]["duration_seconds"]
    assert a["catalog_date"] == "2026-11-01" and a["device"] == "cpu"
    assert a["provenance"]["picker_version"].startswith("picker/1")
    assert a["estimate"]["work"]["train_tokens"] == 400 * 64 and a["estimate"]["cost_usd"] > 0
    assert "x2 slack" in a["estimate"]["basis"]
    text = json.dumps(a)
    assert "/work" not in text and "time" not in a["provenance"]


def test_block_tracks_work_and_reported_cost():
    spec = load_registry(builtin_conf_dirs()).get("lambda")
    small = compute_block(spec, receipts(rows=100))
    big = compute_block(spec, receipts(rows=100_000))
    assert big["estimate"]["duration_seconds"] > small["estimate"]["duration_seconds"]
    untrained = compute_block(spec, receipts(trained=False))
    assert untrained["estimate"]["work"]["train_tokens"] == 0
    r = receipts()
    r["train"] = StageReceipt("train", 1, "k2", {}, {"trained": True, "compute": {
        "cost_usd": 0.12, "duration_seconds": 301.5, "instance_id": "i-7", "image": "img@sha256:ab"}})
    block = compute_block(spec, r)
    assert block["actual"] == {"cost_usd": 0.12} and block["cost_usd"] == 0.12
    assert block["duration_seconds"] == 301.5 and block["estimate"]["cost_usd"] > 0
    assert block["provenance"]["instance_id"] == "i-7" and block["provenance"]["image"] == "img@sha256:ab"
