"""The compute block the package stage signs: estimated and measured values kept apart, each saying
what it was computed from; deterministic for the same receipts."""

from __future__ import annotations

import json

import pytest

from kolmbuild.compute import compute_block, measured, teacher_cost
from kolmbuild.compute.ledger import Rental
from kolmbuild.compute.receipt import OMITTED
from kolmbuild.compute.registry import builtin_conf_dirs, load_registry
from kolmbuild.engine.stage import StageReceipt


def spec(name: str):
    return load_registry(builtin_conf_dirs()).get(name)


def receipts(rows: int = 400, trained: bool = True, compute: dict | None = None) -> dict[str, StageReceipt]:
    train = {"trained": trained, "base": {"name": "smollm2"}, "device": "cpu", "steps": 100}
    if compute is not None:
        train["compute"] = compute
    return {
        # ingest's rows are a mapping of the three parts (the old code read it as a number: 0 tokens)
        "ingest": StageReceipt("ingest", 1, "k1", {}, {"rows": {"train": rows, "select": 50, "test": 50}},
                               duration_s=0.25),
        "train": StageReceipt("train", 1, "k2", {}, train, duration_s=12.5),
        "evaluate": StageReceipt("evaluate", 1, "k3", {}, {"K": 0.9, "cases": 50}, duration_s=0.5),
    }


RENTED = {"backend": "vast", "kind": "cloud-marketplace", "ran": "remote", "instance_id": "1000",
          "run_id": "kolm-x", "offer_id": "5551", "cost_usd": 0.0042, "cost_source": "ledger",
          "billed_seconds": 36.0, "rate_usd_per_hour": 0.42}


def test_train_tokens_come_from_ingests_train_rows():
    block = compute_block(spec("lambda"), receipts(rows=100))
    assert block["estimate"]["work"]["train_tokens"] == 100 * 64
    big = compute_block(spec("lambda"), receipts(rows=100_000))
    assert big["estimate"]["duration_seconds"] > block["estimate"]["duration_seconds"]
    assert compute_block(spec("lambda"), receipts(trained=False))["estimate"]["work"]["train_tokens"] == 0


def test_local_build_measures_every_stage_it_ran_and_keeps_the_estimate_apart():
    a = compute_block(spec("local-cpu").model_dump(mode="json"), receipts())
    assert json.dumps(a, sort_keys=True) == json.dumps(compute_block(spec("local-cpu"), receipts()), sort_keys=True)
    assert a["backend"] == "local-cpu" and a["ran"] == ["evaluate", "ingest", "train"] and a["device"] == "cpu"
    assert a["actual"] == {"duration_seconds": 13.25, "cost_usd": 0.0, "cost_basis": "measured time x $0.00/h",
                           "stages": {"evaluate": 0.5, "ingest": 0.25, "train": 12.5}}
    assert a["estimate"]["duration_seconds"] != a["actual"]["duration_seconds"]  # the quote is not the measure
    assert "duration_seconds" not in a and "cost_usd" not in a  # no top-level value that could be either
    assert "x2 slack" in a["estimate"]["basis"] and a["estimate"]["work"]["train_tokens"] == 400 * 64
    assert a["provenance"]["picker_version"].startswith("picker/1") and "/work" not in json.dumps(a)


def test_rented_stage_carries_its_bill_and_the_machine():
    block = compute_block(spec("vast"), receipts(compute=RENTED))
    assert block["ran"] == ["train"] and block["device"] == "cpu" and block["gpu"]
    assert block["actual"] == {"duration_seconds": 12.5, "cost_usd": 0.0042, "cost_basis": "ledger",
                               "stages": {"train": 12.5}}
    assert block["estimate"]["cost_usd"] > 0 and block["price"] == {"basis": "per-hour", "rate_usd": 0.5}
    assert {k: block["provenance"][k] for k in ("instance_id", "run_id", "offer_id")} == {
        "instance_id": "1000", "run_id": "kolm-x", "offer_id": "5551"}


def test_backend_that_ran_nothing_is_named_as_chosen_not_as_the_device():
    block = compute_block(spec("vast"), receipts(trained=False))  # recipe-only: train stayed here
    assert block["backend"] == "vast" and block["ran"] == [] and block["actual"] is None
    assert "device" not in block and "gpu" not in block and "nothing ran on vast" in block["note"]
    assert block["estimate"]["cost_usd"] >= 0  # the estimate is still there, named as one
    # a run record made on another backend (same stage key) did not run on this one
    other = compute_block(spec("lambda"), receipts(compute=RENTED))
    assert other["ran"] == [] and other["actual"] is None and "instance_id" not in other["provenance"]


def test_time_priced_self_hosted_and_unpriced_serverless():
    ssh = {"backend": "remote-ssh", "kind": "self-hosted", "ran": "remote", "host": "127.0.0.1:22"}
    m = measured(spec("remote-ssh"), receipts(compute=ssh))
    assert m is not None and m.stages == {"train": 12.5} and m.cost_usd == 0.0
    paid = spec("remote-ssh").model_copy(update={"pricing": spec("runpod").pricing})
    m = measured(paid, receipts(compute=ssh))
    assert m is not None and m.cost_usd == pytest.approx(12.5 / 3600 * 1.20)
    tok = {"backend": "together", "kind": "serverless", "ran": "remote"}  # per-token, nothing reported
    m = measured(spec("together"), receipts(compute=tok))
    assert m is not None and m.cost_usd is None and m.cost_basis.startswith("unknown")


def test_measured_values_can_be_left_out_for_bit_for_bit_builds():
    block = compute_block(spec("local-cpu"), receipts(), measured_values=False)
    assert block["actual"] == {"omitted": OMITTED} and block["ran"] == ["evaluate", "ingest", "train"]


def test_teacher_cost_is_what_the_labels_cost_when_bought():
    r = receipts()
    r["distill"] = StageReceipt("distill", 1, "k4", {}, {"teacher_cost_usd": 0.0,
                                                       "teacher": {"labels_cost_usd": 0.0125}})
    assert teacher_cost(r) == 0.0125  # this run spent nothing (cached replies), the labels cost that
    r["distill"] = StageReceipt("distill", 1, "k4", {}, {"teacher_cost_usd": 0.003})
    assert teacher_cost(r) == 0.003 and teacher_cost(receipts()) == 0.0


def test_ledger_bill_is_metered_from_create_to_confirmed_release():
    r = Rental("kolm-1", "vast", "released", instance_id="7", started_at=100.0, billed_from=110.0,
               released_at=146.0, detail={"price_per_hour": 0.42})
    bill = r.billed(fallback_rate_usd_per_hour=0.5)
    assert bill is not None and bill.seconds == 36.0 and bill.rate_usd_per_hour == 0.42
    assert bill.cost_usd == pytest.approx(36 / 3600 * 0.42)
    assert Rental("kolm-2", "vast", "running", instance_id="8", started_at=1.0).billed() is None  # not released
    assert Rental("kolm-3", "vast", "released", started_at=1.0, released_at=2.0).billed() is None  # nothing made
