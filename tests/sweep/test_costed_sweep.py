"""A real three-backend sweep of the PHI pipeline that compares real things.

Every stage is the real one except train, which runs on the backend (a project-local rule with
``remote: true`` that waits like a GPU job, then reports the task as recipe-only). local-cpu runs it
here; vast and lambda are fake providers on loopback that meter their machines per second and
charge different rates. The sweep must leave three artifacts, measured costs that match what the
providers' meters say, a report whose plot shows them, and the default install path untouched; a
second identical sweep answers from the cache with byte-identical artifacts and rents nothing.
"""

from __future__ import annotations

import json
import re
import subprocess
import zipfile
from pathlib import Path
from typing import Any

import pytest

from kolmbuild.artifact import verify_artifact
from kolmbuild.hashing.files import file_cid
from tests.compute.fakes import FakeLambda, FakeVast
from tests.report.test_report import CHROMIUM_FLAGS
from tests.sweep.conftest import kolmbuild, phi_project, rented, summary_of

SLEEP = 2.0
RATES = {"vast": 36.0, "lambda": 72.0}  # USD per hour the fakes meter (a cent and two cents a second)


def _manifest(path: Path) -> dict[str, Any]:
    with zipfile.ZipFile(path) as z:
        return json.loads(z.read("manifest.json"))


@pytest.mark.timeout(900)
def test_three_backends_three_artifacts_measured_costs_and_a_report(tmp_path: Path, chromium: str,
                                                                    png_reader) -> None:
    root = phi_project(tmp_path / "proj", remote_train=True)
    default = root / "artifacts" / "phi-redactor-0.1.0.kolm"
    default.parent.mkdir()
    default.write_bytes(b"an artifact a sweep must not touch")
    with FakeVast() as vast, FakeLambda() as lam:
        vast.price_per_hour, lam.price_per_hour = RATES["vast"], RATES["lambda"]
        rented(root, "vast", vast.url, 40.0)
        rented(root, "lambda", lam.url, 80.0)
        env = {"KOLM_VAST_TOKEN": vast.token, "KOLM_LAMBDA_TOKEN": lam.token, "SWEEP_SLEEP": str(SLEEP)}
        args = ("-m", "backend=local-cpu,vast,lambda", "--budget", "20", "-j", "3", "--json")
        first = summary_of(kolmbuild(root, *args, env=env))
        billed = {"vast": vast.billed_usd(), "lambda": lam.billed_usd()}
        assert (len(vast.instances), len(lam.instances), vast.live(), lam.live()) == (1, 1, 0, 0)
        again = summary_of(kolmbuild(root, *args, env=env))
        assert (len(vast.instances), len(lam.instances)) == (1, 1)  # the cache answered: nothing rented
        vast_id = next(iter(vast.instances))

    runs = {r["backend"]: r for r in first["runs"]}
    assert [r["status"] for r in first["runs"]] == ["ok"] * 3 and all(r["k_score"] == 1.0 for r in runs.values())
    # three artifacts, in folders that say which point they are, listed with their CIDs
    sweep = root / Path(runs["vast"]["artifact"]).parents[1]
    assert sorted(p.relative_to(sweep).as_posix() for p in sweep.glob("*/*.kolm")) == [
        "01-phi-redactor-backend-local-cpu/phi-redactor-0.1.0.kolm",
        "02-phi-redactor-backend-vast/phi-redactor-0.1.0.kolm",
        "03-phi-redactor-backend-lambda/phi-redactor-0.1.0.kolm"]
    for r in runs.values():
        art = root / r["artifact"]
        assert str(file_cid(art)) == r["artifact_cid"] and verify_artifact(art).ok
        assert _manifest(art)["compute"]["backend"] == r["backend"]
    assert len({r["artifact_cid"] for r in runs.values()}) == 3
    assert default.read_bytes() == b"an artifact a sweep must not touch"
    assert sorted(p.name for p in default.parent.iterdir()) == [default.name]

    # local-cpu: every stage ran here, measured in seconds (not the quote), free
    local = _manifest(root / runs["local-cpu"]["artifact"])["compute"]
    assert local["ran"] == ["decompose", "distill", "evaluate", "ingest", "recall", "train"]
    assert SLEEP <= local["actual"]["duration_seconds"] < 120 and local["actual"]["cost_usd"] == 0.0
    assert local["actual"]["duration_seconds"] != local["estimate"]["duration_seconds"]
    assert runs["local-cpu"]["cost_usd"] == 0.0 and runs["local-cpu"]["compute_cost_usd"] == 0.0

    # the rented ones: train ran there, billed by the ledger at what the provider's meter says
    for name in ("vast", "lambda"):
        block = _manifest(root / runs[name]["artifact"])["compute"]
        assert block["ran"] == ["train"] and block["device"] == "cuda"
        assert block["actual"]["stages"]["train"] >= SLEEP and block["actual"]["cost_basis"] == "ledger"
        cost = block["actual"]["cost_usd"]
        assert cost == pytest.approx(billed[name], rel=0.1, abs=0.5 * RATES[name] / 3600), (name, cost, billed)
        assert runs[name]["compute_cost_usd"] == pytest.approx(cost, abs=1e-6) and runs[name]["cost_usd"] > 0
        assert block["estimate"]["cost_usd"] != cost  # the estimate stays what it was
    assert _manifest(root / runs["vast"]["artifact"])["compute"]["provenance"]["instance_id"] == vast_id
    assert runs["lambda"]["cost_usd"] > runs["vast"]["cost_usd"]  # twice the rate for about the same time

    # the second sweep: everything from the cache, same bytes, nothing spent
    assert [r["ran"] for r in again["runs"]] == [[], [], []] and again["spent_usd"] == 0.0
    for a, b in zip(first["runs"], again["runs"], strict=True):
        assert (root / a["artifact"]).read_bytes() == (root / b["artifact"]).read_bytes()
        assert b["cost_usd"] == a["cost_usd"]  # the cost of the artifact, measured once

    # the report: the three measured costs plotted, local-cpu alone on the Pareto front (free, same K)
    report = sweep / "report.html"
    html = report.read_text()
    assert html.count('<g class="point front">') == 1 and html.count('<g class="point">') == 2
    for name in ("vast", "lambda"):
        assert f"${runs[name]['cost_usd']:.4f}" in html
    profile = tmp_path / "profile"
    common = [chromium, *CHROMIUM_FLAGS, f"--user-data-dir={profile}", "--window-size=1400,1000"]
    dom = subprocess.run([*common, "--dump-dom", report.as_uri()], capture_output=True, text=True, timeout=120)
    assert dom.returncode == 0, dom.stderr[-2000:]
    assert len(re.findall(r'<g class="point[ "]', dom.stdout)) == 3 and "Measured cost vs K-score" in dom.stdout
    shot = tmp_path / "shot.png"
    r = subprocess.run([*common, f"--screenshot={shot}", report.as_uri()], capture_output=True, text=True,
                       timeout=120)
    assert r.returncode == 0 and shot.is_file(), r.stderr[-2000:]
    _, _, rows = png_reader(shot)

    def painted(rgb: tuple[int, int, int], tol: int = 6) -> bool:
        return any(all(abs(row[x + k] - rgb[k]) <= tol for k in range(3)) for row in rows
                   for x in range(0, len(row), 3))

    # the three backends' colors (points, legend, bars) are on screen
    assert painted((0x1F, 0x77, 0xB4)) and painted((0xFF, 0x7F, 0x0E)) and painted((0x2C, 0xA0, 0x2C))


def test_a_recipe_only_build_on_a_paid_backend_names_it_as_chosen_not_as_the_device(tmp_path: Path) -> None:
    """The built-in train stage does not train the PHI task (recipes cover it), so nothing is rented:
    the manifest names vast as the backend chosen, without its GPU, and carries no measured cost."""
    root = phi_project(tmp_path / "proj", remote_train=False)
    with FakeVast() as vast:
        rented(root, "vast", vast.url, 0.5)
        r = kolmbuild(root, "backend=vast", "--budget", "5", "--json", env={"KOLM_VAST_TOKEN": vast.token})
        assert r.returncode == 0, r.stderr[-3000:]
        assert vast.requests == []  # nothing rented, not even asked
    [doc] = json.loads(r.stdout)
    block = _manifest(root / doc["artifact"])["compute"]
    assert block["backend"] == "vast" and block["ran"] == [] and block["actual"] is None
    assert "device" not in block and "gpu" not in block and "nothing ran on vast" in block["note"]
    out = kolmbuild(root, "inspect", str(root / doc["artifact"]))
    assert out.returncode == 0 and "backend=vast" in out.stdout and "gpu=" not in out.stdout


def test_inspect_on_a_recipe_only_build_shows_measured_seconds_not_the_quote(tmp_path: Path) -> None:
    root = phi_project(tmp_path / "proj", remote_train=False)
    r = kolmbuild(root, "--json")
    assert r.returncode == 0, r.stderr[-3000:]
    [doc] = json.loads(r.stdout)
    art = str(root / doc["artifact"])
    compute = json.loads(kolmbuild(root, "inspect", art, "--json").stdout)["manifest"]["compute"]
    measured, quoted = compute["actual"]["duration_seconds"], compute["estimate"]["duration_seconds"]
    assert 0 < measured < 30 and quoted == 51.7 and compute["actual"]["cost_basis"].startswith("measured time")
    assert set(compute["actual"]["stages"]) == set(compute["ran"]) and "train" in compute["ran"]
    text = kolmbuild(root, "inspect", art).stdout
    assert f"actual.duration_seconds={measured:.3f}" in text and "estimate.duration_seconds=51.700" in text
