"""Budgets are finite, paid runs have a wall-clock limit, orphans can be reaped, provider errors are
redacted of tokens, and every backend conf says truthfully what it can do."""

from __future__ import annotations

import json
import sys

import pytest

from kolmbuild.compute.ledger import Ledger, Rental
from tests.compute.conftest import point_at
from tests.compute.fakes import FakeLambda, FakeProvider, FakeVast


@pytest.mark.parametrize("value", ["inf", "1e309", "nan", "-1"])
def test_a_budget_that_is_not_a_finite_number_is_refused_on_the_command_line(project, value):
    for args in (("compute", "rent", "--backend", "vast", "--budget", value), ("compute", "pick", "--budget", value)):
        r = project.invoke(*args)
        assert r.exit_code == 2 and "--budget" in r.output and "finite" in r.output, r.output


@pytest.mark.parametrize("value", [".inf", "1e309", ".nan", "-5"])
def test_a_budget_that_is_not_a_finite_number_is_refused_in_the_kolmfile(project, value):
    path = project.root / "kolmfile.yaml"
    path.write_text(f"version: 1\nbudget:\n  usd: {value}\ntargets:\n  redact:\n    task: redact\n")
    with FakeVast() as fake:
        point_at(project, "vast", fake.url)
        r = project.invoke("build", "backend=vast")
        assert r.exit_code == 2 and "budget.usd" in r.output and "Traceback" not in r.output, r.output
        assert fake.requests == []


def test_a_hung_paid_run_is_torn_down_at_its_wall_clock_limit(project, monkeypatch):
    """$0.0005 at $0.50/h buys 3.6 s: a trainer that hangs is stopped then, and the machine released."""
    with FakeVast() as fake:
        point_at(project, "vast", fake.url, cold_start_seconds=0, effective_tflops=1e9,
                 pricing={"basis": "per-hour", "rate_usd": 0.5}, cost_per_hour_usd=0.5)
        monkeypatch.setenv("KOLM_VAST_TOKEN", fake.token)
        r = project.invoke("compute", "rent", "--spec", str(_tiny_spec(project)), "--backend", "vast",
                           "--budget", "0.0005", "--confirm", "--command", sys.executable, "--command", "-c",
                           "--command", "import time; time.sleep(600)")
        assert r.exit_code == 1 and "wall-clock limit of 4 s" in r.output, r.output
        assert fake.live() == 0 and [x.state for x in Ledger().all()] == ["released"]


def _tiny_spec(project):
    return project.write("job.yaml", {"name": "tiny", "model_params": 1000, "train_tokens": 10, "eval_cases": 1})


def test_reap_ends_orphans_and_a_rent_that_created_nothing_leaves_no_release_failed_row(project, monkeypatch):
    with FakeLambda() as fake:
        point_at(project, "lambda", fake.url)
        monkeypatch.setenv("KOLM_LAMBDA_TOKEN", fake.token)
        fake.partition(True)  # the offer search fails: nothing was created
        r = project.invoke("compute", "rent", "--backend", "lambda", "--confirm")
        assert r.exit_code == 1
        assert [x.state for x in Ledger().all()] == ["released"] and "nothing was created" in Ledger().all()[0].note
        fake.partition(False)
        # an instance left behind by a kolmbuild that died (its pid is gone), and one nobody recorded
        import httpx

        for name in ("kolm-dead", "kolm-unknown"):
            httpx.post(f"{fake.url}/instance-operations/launch", headers={"Authorization": f"Bearer {fake.token}"},
                       json={"region_name": "us-east-1", "instance_type_name": "gpu_1x_a100_sxm4_80gb",
                             "ssh_key_names": ["k"], "name": name})
        dead = next(i for i in fake.instances.values() if i["name"] == "kolm-dead")
        Ledger().put(Rental(run_id="kolm-dead", backend="lambda", state="running", instance_id=dead["id"],
                            label="kolm-dead", pid=2**22 + 12345))
        assert fake.live() == 2
        r = project.invoke("compute", "reap")  # no TTY, no --yes: asks nobody, ends nothing
        assert r.exit_code == 0 and fake.live() == 2 and "kept" in r.output
        r = project.invoke("compute", "reap", "--yes", "--json")
        assert r.exit_code == 0, r.output
        done = json.loads(r.output)["reaped"]
        assert sorted(d["action"] for d in done) == ["terminated", "terminated"] and fake.live() == 0
        assert all(x.state == "released" for x in Ledger().all())


class EchoingProxy(FakeProvider):
    """A provider (or a proxy in front of it) that echoes the request's headers into its error body."""

    def __init__(self) -> None:
        super().__init__()

        @self.route("GET", "/instance-types")
        def echo(f, r):
            return 500, {"error": "upstream failed", "request_headers": r.headers}


def test_a_provider_error_body_is_redacted_of_every_token(project, monkeypatch, _state_dir):
    with EchoingProxy() as fake:
        point_at(project, "lambda", fake.url)
        monkeypatch.setenv("KOLM_LAMBDA_TOKEN", fake.token)
        monkeypatch.setenv("KOLM_TEACHER_TOKEN", "teacher-secret-456")
        proc = project.spawn("compute", "rent", "--backend", "lambda", "--confirm",
                             env={"KOLM_LAMBDA_TOKEN": fake.token, "KOLM_TEACHER_TOKEN": "teacher-secret-456"})
        out, err = proc.communicate(timeout=120)
        assert proc.returncode == 1 and "HTTP 500" in err and "***" in err, err
        for secret in (fake.token, "teacher-secret-456"):
            assert secret not in out + err
            assert secret not in (_state_dir / "rentals.json").read_text()


def test_confs_say_what_each_backend_can_do_and_the_picker_obeys(project):
    from kolmbuild.compute.picker import PickRequest, pick
    from kolmbuild.compute.registry import builtin_conf_dirs, load_registry

    registry = load_registry(builtin_conf_dirs(project.root))
    for name in ("local-mlx", "local-directml", "fal"):
        assert registry.get(name).train is False  # the trainer refuses them: inference only
    result = pick(registry, {}, PickRequest(role="train"))
    ranked = {s.backend for s in result.ranked}
    assert not ranked & {"local-mlx", "local-directml", "fal"}
    assert {f.backend: f.reason for f in result.filtered}["local-mlx"] == "inference only"
    out = project.invoke("compute", "quote").output
    assert "local-mlx" in out and "not eligible: inference only" in out.split("local-mlx", 1)[1].splitlines()[0]


def test_replicate_without_trainer_version_or_destination_exits_2_before_any_call(project, monkeypatch):
    from tests.compute.fakes import FakeReplicate

    with FakeReplicate() as fake:
        point_at(project, "replicate", fake.url)
        monkeypatch.setenv("KOLM_REPLICATE_TOKEN", fake.token)
        r = project.invoke("compute", "rent", "--backend", "replicate", "--confirm")
        assert r.exit_code == 2 and "trainer_version" in r.output and fake.requests == []
        point_at(project, "replicate", fake.url, trainer_version="me/trainer:abc123")
        r = project.invoke("compute", "rent", "--backend", "replicate", "--confirm")
        assert r.exit_code == 2 and "destination" in r.output and fake.requests == []


def test_together_gets_its_documented_conversational_format(project, monkeypatch):
    from tests.compute.fakes import FakeTogether

    with FakeTogether() as fake:
        point_at(project, "together", fake.url)
        monkeypatch.setenv("KOLM_TOGETHER_TOKEN", fake.token)
        r = project.invoke("compute", "rent", "redact", "--backend", "together", "--confirm")
        assert r.exit_code == 0, r.output
        assert fake.rejected == [] and len(fake.instances) == 1


def test_modal_job_runs_a_job_folder_and_its_outputs_come_back(tmp_path):
    import base64

    from kolmbuild.compute.modal_job import run_job, unpack_outputs

    payload = {"run_id": "kolm-m", "files": {"a.txt": base64.b64encode(b"hi").decode()},
               "command": [sys.executable, "-c", "import os; os.makedirs('out'); open('out/b.txt','w').write(open('a.txt').read()*2)"],
               "outputs": ["out"]}
    result = run_job(payload)
    assert result["exit_code"] == 0
    got = unpack_outputs(result, tmp_path / "dest")
    assert got == [tmp_path / "dest" / "out"] and (tmp_path / "dest/out/b.txt").read_text() == "hihi"
    with pytest.raises(ValueError):
        run_job({**payload, "files": {"../x": ""}})


def test_default_checkpoints_are_a_tenth_of_the_run():
    from kolmbuild.config.models import TrainSpec
    from kolmbuild.train.settings import checkpoint_interval, settings_from_spec

    settings = settings_from_spec(TrainSpec())
    assert [checkpoint_interval(settings, n) for n in (1, 8, 40, 1000)] == [1, 1, 4, 100]
    assert checkpoint_interval(settings_from_spec(TrainSpec(checkpoint_every=7)), 40) == 7
