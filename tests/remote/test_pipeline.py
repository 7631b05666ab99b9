"""The real pipeline (examples/support-router, every built-in stage) through an S3 remote cache:
two fresh checkouts with separate caches and separate config folders (separate signing keys). The
second pulls every stage and runs none, and installs the first's artifact byte for byte."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from tests.remote.conftest import Machine

REPO = Path(__file__).resolve().parents[2]
STAGES = ["ingest", "recall", "distill", "decompose", "train", "evaluate", "package"]


def _checkout(tmp_path: Path, name: str) -> Machine:
    root = tmp_path / name / "support-router"
    shutil.copytree(REPO / "examples" / "support-router", root, ignore=shutil.ignore_patterns("cache", "artifacts"))
    return Machine(root, tmp_path / f"config-{name}")


@pytest.mark.slow
@pytest.mark.timeout(1200)  # the example trains a LoRA on CPU (train.enabled: always): minutes on a busy 2-core machine
def test_support_router_second_checkout_pulls_every_stage_and_runs_none(tmp_path, s3):
    ci, laptop = _checkout(tmp_path, "ci"), _checkout(tmp_path, "laptop")
    first = ci.build("--remote", "s3://team/kolm", "--push")
    assert first["ran"] == STAGES and first["pushed"] == STAGES

    laptop.trust(ci)
    second = laptop.build("--remote", "s3://team/kolm")
    assert second["ran"] == [] and second["pulled"] == STAGES and second["status"] == "built"
    assert second["k_score"] == first["k_score"]
    a, b = ci.root / first["artifact"], laptop.root / second["artifact"]
    assert a.read_bytes() == b.read_bytes()
    assert laptop.objects() == {ci.outputs()["package"]["artifact.kolm"]}  # only the artifact came down

    # the artifact verifies with the CI key, offline, on the laptop
    r = laptop.invoke("verify", str(b), "--pubkey", str(ci.public_key), "--json")
    assert r.exit_code == 0, r.output
    assert json.loads(r.stdout)["ok"] is True
    assert laptop.build("--remote", "s3://team/kolm")["status"] == "up-to-date"
