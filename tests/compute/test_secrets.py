"""Tokens never reach logs, the ledger, run outputs or the job's environment."""

from __future__ import annotations

import json

from tests.compute.conftest import point_at
from tests.compute.fakes import FakeRunPod, FakeVast


def _all_text(root) -> str:
    return "".join(p.read_text(errors="replace") for p in root.rglob("*") if p.is_file())


def test_token_absent_from_output_ledger_artifacts_and_job_env(project, monkeypatch, _state_dir):
    with FakeVast() as fake:
        point_at(project, "vast", fake.url)
        monkeypatch.setenv("KOLM_VAST_TOKEN", fake.token)
        monkeypatch.setenv("KOLM_TEACHER_TOKEN", "teacher-secret-456")
        show_env = "import os; print(sorted(k for k in os.environ if k.endswith('_TOKEN')))"
        r = project.invoke("--debug", "compute", "rent", "redact", "--backend", "vast", "--confirm",
                           "--command", "python3", "--command", "-c", "--command", show_env)
        assert r.exit_code == 0, r.output
        assert "rent: []" in r.output  # the job saw no *_TOKEN variables
        # a failing run (provider refuses the key) with tracebacks on
        monkeypatch.setenv("KOLM_VAST_TOKEN", "wrong-" + fake.token)
        r2 = project.invoke("--debug", "compute", "rent", "--backend", "vast", "--confirm")
        assert r2.exit_code == 1 and "HTTP 401" in r2.output
    text = r.output + r2.output + _all_text(_state_dir) + _all_text(project.root)
    assert fake.token not in text and "teacher-secret-456" not in text
    ledger = json.loads((_state_dir / "rentals.json").read_text())
    assert len(ledger["rentals"]) == 2
    assert sorted(r["state"] for r in ledger["rentals"].values()) == ["released", "released"]


def test_token_absent_when_a_graphql_call_fails(project, monkeypatch, _state_dir):
    with FakeRunPod() as fake:
        point_at(project, "runpod", fake.url, gpu_type_id=None)
        monkeypatch.setenv("KOLM_RUNPOD_TOKEN", fake.token)
        fake.partition(True)
        r = project.invoke("compute", "rent", "--backend", "runpod", "--confirm")
        assert r.exit_code == 1 and "network error" in r.output
    # the create call's outcome is unknown (no answer): kept live in the ledger for `compute status`
    [row] = json.loads((_state_dir / "rentals.json").read_text())["rentals"].values()
    assert row["state"] == "release-failed" and "outcome unknown" in row["note"]
    assert fake.token not in r.output + _all_text(_state_dir)
