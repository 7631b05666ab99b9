"""rent against each provider's fake: gates first, then provision → run → release; zero live after."""

from __future__ import annotations

import json
import sys

import pytest

from tests.compute.conftest import point_at
from tests.compute.fakes import (
    FakeFal,
    FakeLambda,
    FakeModalClient,
    FakeProvider,
    FakeReplicate,
    FakeRunPod,
    FakeTogether,
    FakeVast,
)

TOKENS = {"lambda": "KOLM_LAMBDA_TOKEN", "vast": "KOLM_VAST_TOKEN", "runpod": "KOLM_RUNPOD_TOKEN",
          "together": "KOLM_TOGETHER_TOKEN", "replicate": "KOLM_REPLICATE_TOKEN", "fal": "KOLM_FAL_TOKEN"}
FAKES = {"lambda": FakeLambda, "vast": FakeVast, "runpod": FakeRunPod, "together": FakeTogether,
         "replicate": FakeReplicate}


def test_budget_refusal_exits_2_with_zero_provider_requests(project, monkeypatch):
    with FakeLambda() as fake:
        point_at(project, "lambda", fake.url)
        monkeypatch.setenv("KOLM_LAMBDA_TOKEN", fake.token)
        r = project.invoke("compute", "rent", "--backend", "lambda", "--budget", "0.05", "--confirm")
        assert r.exit_code == 2
        assert "refused: estimate $0.19 exceeds budget $0.05" in r.output
        assert fake.requests == []  # not one call reached the provider
    # same refusal from the kolmfile's budget.usd
    project.write("kolmfile.yaml", {"version": 1, "budget": {"usd": 0.01}, "targets": {"redact": {"task": "redact"}}})
    r = project.invoke("compute", "rent", "--backend", "modal", "--confirm")
    assert r.exit_code == 2 and "exceeds budget $0.01" in r.output


def test_confirm_gate_refuses_without_a_tty_and_on_no(project, monkeypatch):
    with FakeVast() as fake:
        point_at(project, "vast", fake.url)
        monkeypatch.setenv("KOLM_VAST_TOKEN", fake.token)
        r = project.invoke("compute", "rent", "--backend", "vast")
        assert r.exit_code == 2 and "pass --confirm" in r.output
        monkeypatch.setattr("kolmbuild.cli.compute_cmds._stdin_is_tty", lambda: True)
        r = project.invoke("compute", "rent", "--backend", "vast", input="n\n")
        assert r.exit_code == 2 and "not confirmed" in r.output
        assert fake.requests == []


def test_missing_token_is_a_user_error_before_any_call(project):
    with FakeVast() as fake:
        point_at(project, "vast", fake.url)
        r = project.invoke("compute", "rent", "--backend", "vast", "--confirm")
        assert r.exit_code == 2 and "set KOLM_VAST_TOKEN" in r.output and fake.requests == []


@pytest.mark.parametrize("name", ["lambda", "vast", "runpod"])
def test_provisioned_rent_runs_the_dry_run_and_releases(project, monkeypatch, name):
    with FAKES[name]() as fake:
        point_at(project, name, fake.url)
        monkeypatch.setenv(TOKENS[name], fake.token)
        r = project.invoke("compute", "rent", "redact", "--backend", name, "--confirm", "--json")
        assert r.exit_code == 0, r.output
        doc = json.loads(r.output[r.output.index("{"):])
        assert doc["exit_code"] == 0 and doc["instance_id"]
        receipt = json.loads((project.root / "kolm-runs" / doc["run_id"] / "out" / "receipt.json").read_text())
        assert receipt["rows"] == 40 and receipt["weights_loaded"] is False and receipt["run_id"] == doc["run_id"]
        assert len(fake.instances) == 1 and fake.live() == 0
        assert all(ok for _, _, ok in fake.requests)  # every call authenticated
        ledger = json.loads((project.root.parent / "state" / "rentals.json").read_text())
        [row] = ledger["rentals"].values()
        assert row["state"] == "released" and row["instance_id"] == doc["instance_id"]
        assert fake.token not in json.dumps(ledger) and fake.token not in r.output
        label = next(iter(fake.instances.values())).get("name") or next(iter(fake.instances.values())).get("label")
        assert label == doc["run_id"]  # every rental carries the build's run id


@pytest.mark.parametrize("name", ["together", "replicate"])
def test_serverless_training_rent_completes(project, monkeypatch, name, _state_dir):
    with FAKES[name]() as fake:
        extra = {"destination": "me/redactor", "trainer_version": "me/trainer:abc123"} if name == "replicate" else {}
        point_at(project, name, fake.url, **extra)
        monkeypatch.setenv(TOKENS[name], fake.token)
        r = project.invoke("compute", "rent", "redact", "--backend", name, "--confirm", "--json")
        assert r.exit_code == 0, r.output
        assert fake.live() == 0 and len(fake.instances) == 1
        [t] = fake.instances.values()
        if name == "replicate":
            assert t["destination"] == "me/redactor" and t["input"]["train_data"].endswith("/download")
            assert b"call me at" in next(iter(fake.files.values()))  # the SDK uploaded the labels
            reported = t["metrics"]["predict_time"] * 0.001525  # seconds billed x the per-second price
        else:
            reported = t["total_price"] / 1e9  # Together reports nanodollars
        assert fake.token not in r.output
        # the actual cost is the provider's own figure, kept in the ledger
        [rental] = json.loads((_state_dir / "rentals.json").read_text())["rentals"].values()
        assert reported > 0 and rental["actual_usd"] == pytest.approx(reported, abs=1e-6)
        assert json.loads(r.output)["detail"] == {"cost_source": "provider"}


def test_serverless_interrupted_job_is_cancelled(project, monkeypatch):
    """A failure mid-poll cancels the job at the provider (teardown = cancel, confirmed)."""
    from kolmbuild.compute.adapters import adapter_for
    from kolmbuild.compute.ledger import Ledger
    from kolmbuild.compute.registry import builtin_conf_dirs, load_registry
    from kolmbuild.compute.rent import payload_dir
    from kolmbuild.compute.selftest import TINY_JOB

    with FakeTogether() as fake:
        fake.run_polls = 10_000
        point_at(project, "together", fake.url)
        monkeypatch.setenv("KOLM_TOGETHER_TOKEN", fake.token)
        spec = load_registry(builtin_conf_dirs(project.root)).get("together")
        adapter = adapter_for(spec, workdir=project.root / "runs")
        seen = []

        def progress(line: str) -> None:
            seen.append(line)
            if "submitted" in line:
                raise KeyboardInterrupt

        data = project.root / "data/train.jsonl"
        with payload_dir(TINY_JOB, "kolm-t1", None, data) as job, pytest.raises(KeyboardInterrupt):
            adapter.run(job, progress, run_id="kolm-t1")
        assert fake.live() == 0
        [inst] = fake.instances.values()
        assert inst["status"] == "cancelled"
        assert Ledger().get("kolm-t1").state == "released"


def test_fal_inference_follows_returned_urls(project, monkeypatch):
    from kolmbuild.compute.adapters import adapter_for
    from kolmbuild.compute.job import Job
    from kolmbuild.compute.registry import builtin_conf_dirs, load_registry

    with FakeFal() as fake:
        point_at(project, "fal", fake.url, fal_app="fal-ai/echo")
        monkeypatch.setenv("KOLM_FAL_TOKEN", fake.token)
        adapter = adapter_for(load_registry(builtin_conf_dirs(project.root)).get("fal"), workdir=project.root / "r")
        job = Job(name="q", model_params=1, train_tokens=0, epochs=1, eval_cases=2, kind="infer",
                  inputs=({"prompt": "hi"}, {"prompt": "yo"}))
        res = adapter.run(job, lambda s: None, run_id="kolm-f1")
        assert res.exit_code == 0 and res.actual_usd == pytest.approx(0.004)
        answers = [json.loads(x) for x in res.outputs[0].read_text().splitlines()]
        assert answers == [{"output": "HI"}, {"output": "YO"}]
        assert fake.live() == 0
        paths = [p for _, p, _ in fake.requests]
        assert any(p.endswith("/status") for p in paths)  # the SDK's handle polled the returned status_url


def test_modal_through_its_client_boundary(project, monkeypatch):
    from kolmbuild.compute.adapters.modal_functions import ModalAdapter
    from kolmbuild.compute.registry import builtin_conf_dirs, load_registry
    from kolmbuild.compute.rent import payload_dir
    from kolmbuild.compute.selftest import TINY_JOB

    project.override_backend("modal", poll_seconds=0.01)
    spec = load_registry(builtin_conf_dirs(project.root)).get("modal")
    env = {"MODAL_TOKEN_ID": "id", "MODAL_TOKEN_SECRET": "secret"}
    client = FakeModalClient()
    adapter = ModalAdapter(spec, environ=env, client=client, workdir=project.root / "r")
    with payload_dir(TINY_JOB, "kolm-m1", None, None) as job:
        res = adapter.run(job, lambda s: None, run_id="kolm-m1")
    assert res.exit_code == 0 and client.live() == 0
    [call] = client.calls.values()
    assert call["app"] == "kolmbuild-trainer" and "kolm_payload.py" in call["payload"]["files"]
    # interrupted: the call is cancelled
    client2 = FakeModalClient(polls=10_000)
    adapter2 = ModalAdapter(spec, environ=env, client=client2, workdir=project.root / "r")

    def boom(line: str) -> None:
        if "submitted" in line:
            raise KeyboardInterrupt

    with payload_dir(TINY_JOB, "kolm-m2", None, None) as job, pytest.raises(KeyboardInterrupt):
        adapter2.run(job, boom, run_id="kolm-m2")
    assert client2.live() == 0 and next(iter(client2.calls.values()))["state"] == "cancelled"


def test_status_lists_live_rentals_and_orphans(project, monkeypatch):
    from kolmbuild.compute.ledger import Ledger, Rental

    with FakeVast() as fake:
        point_at(project, "vast", fake.url)
        monkeypatch.setenv("KOLM_VAST_TOKEN", fake.token)
        # an instance this machine's ledger does not know, labelled by kolmbuild: an orphan
        fake.instances["77"] = {"id": 77, "label": "kolm-lost-run", "actual_status": "running"}
        Ledger().put(Rental(run_id="kolm-live", backend="vast", state="running", instance_id="5", label="kolm-live"))
        r = project.invoke("compute", "status", "--json")
        doc = json.loads(r.output)
        assert [x["run_id"] for x in doc["rentals"]] == ["kolm-live"]
        assert doc["orphans"] == [{"backend": "vast", "instance_id": "77", "label": "kolm-lost-run",
                                   "status": "running"}]
        r = project.invoke("compute", "status")
        assert "ORPHAN vast instance 77" in r.output


def test_base_url_env_overrides_conf(project, monkeypatch):
    from kolmbuild.compute.adapters import adapter_for
    from kolmbuild.compute.registry import builtin_conf_dirs, load_registry

    spec = load_registry(builtin_conf_dirs()).get("vast")
    assert adapter_for(spec, environ={}).base_url() == "https://console.vast.ai"
    assert adapter_for(spec, environ={"VAST_URL": "http://127.0.0.1:9/"}).base_url() == "http://127.0.0.1:9"


def test_fake_counts_unauthenticated_calls():
    import httpx

    with FakeProvider() as fake:
        assert httpx.get(fake.url + "/x").status_code == 401
        assert fake.requests == [("GET", "/x", False)]


def test_fal_interrupted_request_is_cancelled(project, monkeypatch):
    from kolmbuild.compute.adapters import adapter_for
    from kolmbuild.compute.job import Job
    from kolmbuild.compute.ledger import Ledger
    from kolmbuild.compute.registry import builtin_conf_dirs, load_registry

    with FakeFal() as fake:
        fake.run_polls = 10_000
        point_at(project, "fal", fake.url, fal_app="fal-ai/echo", ready_timeout_seconds=0.3)
        monkeypatch.setenv("KOLM_FAL_TOKEN", fake.token)
        adapter = adapter_for(load_registry(builtin_conf_dirs(project.root)).get("fal"), workdir=project.root / "r")
        job = Job(name="q", model_params=1, train_tokens=0, epochs=1, eval_cases=1, kind="infer",
                  inputs=({"prompt": "hi"},))
        with pytest.raises(Exception, match="still running"):
            adapter.run(job, lambda s: None, run_id="kolm-f2")
        assert fake.live() == 0 and next(iter(fake.instances.values())).get("cancelled") is True
        assert Ledger().get("kolm-f2").state == "released"
        assert any(m == "PUT" and p.endswith("/cancel") for m, p, _ in fake.requests)


def test_quote_adds_the_teacher_estimate(project):
    project.write("conf/task/redact.yaml", {
        "name": "redact", "examples": "data/train.jsonl", "eval": "data/eval.jsonl",
        "teacher": {"model": "gpt-x", "price_in_per_mtok": 2.0, "price_out_per_mtok": 8.0}})
    doc = json.loads(project.invoke("compute", "quote", "redact", "--json").output)
    assert doc["teacher_cost_usd"] > 0
    assert "teacher: $" in project.invoke("compute", "quote", "redact").output
    # and the budget gate counts it: local-cpu is free, the teacher is not
    r = project.invoke("compute", "rent", "redact", "--backend", "local-cpu", "--budget", "0.0001")
    assert r.exit_code == 2 and "refused: estimate $" in r.output


@pytest.mark.parametrize("name", ["lambda", "vast", "runpod", "together", "replicate", "fal"])
def test_compute_test_passes_against_each_fake(project, monkeypatch, name):
    cls = {**FAKES, "fal": FakeFal}[name]
    with cls() as fake:
        extra = {"destination": "me/redactor", "trainer_version": "me/trainer:abc123"} if name == "replicate" else {}
        point_at(project, name, fake.url, **extra)
        monkeypatch.setenv(TOKENS[name], fake.token)
        r = project.invoke("compute", "test", name)
        assert r.exit_code == 2 and "pass --confirm" in r.output and fake.requests == []  # paid: gated
        r = project.invoke("compute", "test", name, "--confirm", "--json")
        doc = json.loads(r.output)
        assert r.exit_code == 0 and doc["passed"], r.output
        assert fake.live() == 0 and len(fake.instances) >= 1


def test_compute_test_modal_without_sdk_says_how_to_enable_it(project, monkeypatch):
    monkeypatch.setitem(sys.modules, "modal", None)  # the SDK absent, whether or not it is installed here
    monkeypatch.setenv("MODAL_TOKEN_ID", "a")
    monkeypatch.setenv("MODAL_TOKEN_SECRET", "b")
    r = project.invoke("compute", "test", "modal")
    assert r.exit_code == 1 and "FAIL  auth check" in r.output and "pip install modal" in r.output
    assert "not detected" in project.invoke("compute", "detect", "modal").output
