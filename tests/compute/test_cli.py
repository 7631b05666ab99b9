"""compute list / detect / use / info / quote / status, and the registry behind them."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest

from kolmbuild.compute.job import Job
from kolmbuild.compute.quote import SLACK, quote
from kolmbuild.compute.registry import builtin_conf_dirs, load_registry

NAMES = ["fal", "lambda", "local-cpu", "local-cuda", "local-directml", "local-mlx", "local-mps", "local-rocm",
         "modal", "remote-ssh", "replicate", "runpod", "together", "vast"]


def test_list_groups_fourteen_backends(project):
    r = project.invoke("compute", "list", "--json")
    doc = json.loads(r.output)
    assert sorted(b["name"] for b in doc["backends"]) == NAMES
    assert doc["registry"].startswith("v1 catalog 2026-11-01")
    groups = {b["name"]: b["group"] for b in doc["backends"]}
    assert groups["local-cpu"] == "LOCAL" and groups["vast"] == "CLOUD" and groups["remote-ssh"] == "SELF-HOSTED"
    text = project.invoke("compute", "list").output
    assert text.splitlines()[0].startswith("registry v1")
    assert text.index("LOCAL") < text.index("CLOUD") < text.index("SELF-HOSTED")
    assert "$2.50/h" in text and "$0.48/1M tok" in text and "infer only" in text


def test_detect_degrades_without_errors(project, monkeypatch):
    r = project.invoke("compute", "detect", "--json")
    assert r.exit_code == 0
    got = {d["backend"]: d["status"] for d in json.loads(r.output)}
    assert got["local-cpu"] == "ok"
    assert got["vast"] == "no token" and got["modal"] == "no token"
    for name in ("local-cuda", "local-mps", "local-mlx", "local-rocm", "local-directml"):
        assert got[name] in ("ok", "not detected")
    monkeypatch.setenv("KOLM_VAST_TOKEN", "x")
    r = project.invoke("compute", "detect", "vast")
    assert r.output.split()[:2] == ["vast", "ok"]
    r = project.invoke("compute", "detect", "nope")
    assert r.exit_code == 2 and "unknown backend 'nope'" in r.output


def test_cli_start_and_detect_do_not_import_torch(project):
    code = ("import sys; from kolmbuild.cli.main import main; rc = main(['-C', sys.argv[1], 'compute', 'detect']);"
            "print('TORCH' if 'torch' in sys.modules else 'NO-TORCH')")
    out = subprocess.run([sys.executable, "-c", code, str(project.root)], capture_output=True, text=True,
                         env=dict(os.environ), timeout=120)
    assert out.stdout.strip().endswith("NO-TORCH"), out.stdout + out.stderr


def test_use_writes_user_config_and_precedence(project, monkeypatch, _isolated_user_config):
    r = project.invoke("compute", "use", "vast", "--json")
    assert json.loads(r.output)["backend"] == "vast"
    assert "backend: vast" in (_isolated_user_config / "config.yaml").read_text()
    from kolmbuild.compute import default_backend_name
    from kolmbuild.config.compose import Composer
    from kolmbuild.config.kolmfile import load_project
    from kolmbuild.wiring import composer

    assert default_backend_name() == "vast"
    project.write("kolmfile.yaml", {"version": 1, "targets": {"redact": {"task": "redact"}}})
    # the caller passes the `compute use` choice in; kolmbuild.wiring.composer is the standard caller
    assert composer(load_project(project.root)).compose("redact").config.backend.name == "vast"
    assert Composer(load_project(project.root)).compose("redact").config.backend.name == "local-cpu"
    shown = project.invoke("build", "--cfg", "--json")  # the CLI composes through kolmbuild.wiring
    assert json.loads(shown.output)["redact"]["backend"]["name"] == "vast"
    monkeypatch.setenv("KOLM_BACKEND", "lambda")  # the environment beats `compute use`
    assert composer(load_project(project.root)).compose("redact").config.backend.name == "lambda"
    project.write("kolmfile.yaml", {"version": 1, "defaults": {"backend": "runpod"},
                                    "targets": {"redact": {"task": "redact"}}})  # the kolmfile beats both
    assert composer(load_project(project.root)).compose("redact").config.backend.name == "runpod"
    assert project.invoke("compute", "use", "nope").exit_code == 2


def test_broken_user_config_does_not_stop_composition(project, _isolated_user_config):
    from kolmbuild.config.kolmfile import load_project
    from kolmbuild.wiring import composer

    (_isolated_user_config / "config.yaml").write_bytes(b"backend: [unclosed\n\xff")
    project.write("kolmfile.yaml", {"version": 1, "targets": {"redact": {"task": "redact"}}})
    assert composer(load_project(project.root)).compose("redact").config.backend.name == "local-cpu"
    r = project.invoke("compute", "use", "vast")
    assert r.exit_code == 2 and "cannot read the user config" in r.output


def test_info(project):
    doc = json.loads(project.invoke("compute", "info", "lambda", "--json").output)
    assert doc["backend"]["cost_per_hour_usd"] == 2.0 and doc["backend"]["cold_start_seconds"] == 90
    assert doc["detect"]["status"] == "no token" and doc["reference_quote"]["cost_usd"] > 0
    assert "reference quote" in project.invoke("compute", "info", "vast").output


def test_quote_arithmetic_per_basis():
    reg = load_registry(builtin_conf_dirs())
    job = Job(name="j", model_params=1_000_000_000, train_tokens=1_000_000, epochs=2.0, eval_cases=100,
              eval_tokens_per_case=100)
    work = 4 * 1e9 * 1e6 * 2 + 2 * 1e9 * 100 * 100
    lam = quote(reg.get("lambda"), job)
    dur = (90 + 300 + work / 100e12) * SLACK  # cold start + the catalog's bootstrap setup (nothing measured)
    assert lam.duration_s == pytest.approx(dur) and lam.cost_usd == pytest.approx(dur / 3600 * 2.0)
    assert "90 s cold + 300 s setup" in lam.basis and "x2 slack" in lam.basis
    measured = quote(reg.get("lambda"), job, setup_s=12.0)
    assert measured.duration_s == pytest.approx((90 + 12 + work / 100e12) * SLACK)
    assert "12 s setup (measured)" in measured.basis
    rep = quote(reg.get("replicate"), job)
    assert rep.cost_usd == pytest.approx(rep.duration_s * 0.001525)
    tog = quote(reg.get("together"), job)
    assert tog.cost_usd == pytest.approx((2_000_000 + 10_000) / 1e6 * 0.48)
    fal = quote(reg.get("fal"), job)
    assert not fal.eligible and fal.reason == "inference only"
    infer = Job(name="i", model_params=1_000_000_000, train_tokens=0, epochs=1, eval_cases=50, kind="infer")
    assert quote(reg.get("fal"), infer).cost_usd == pytest.approx(50 * 0.002)
    assert quote(reg.get("local-cpu"), job).cost_usd == 0.0


def test_quote_target_table_and_json(project):
    r = project.invoke("compute", "quote", "redact")
    assert r.exit_code == 0, r.output
    lines = r.output.splitlines()
    assert lines[1].split() == ["BACKEND", "DURATION", "COST", "BASIS"]
    assert "fal" in r.output and "not eligible: inference only" in r.output
    doc = json.loads(project.invoke("compute", "quote", "redact", "--json").output)
    assert len(doc["quotes"]) == 11 and doc["job"]["train_tokens"] > 0 and doc["job"]["eval_cases"] == 10
    assert {q["backend"] for q in doc["quotes"]} == set(NAMES) - {"fal", "local-mlx", "local-directml"}


def test_quote_spec_file_and_bad_spec(project):
    project.write("job.yaml", {"name": "big", "model": "meta-llama/Llama-3.1-8B", "train_tokens": 5_000_000,
                               "epochs": 2, "eval_cases": 200})
    doc = json.loads(project.invoke("compute", "quote", "--spec", "job.yaml", "--json").output)
    assert doc["job"]["model_params"] == 8_000_000_000 and doc["job"]["min_vram_gb"] == pytest.approx(21.8)
    project.write("bad.yaml", {"name": "x", "model_params": 10, "trian_tokens": 5})
    r = project.invoke("compute", "quote", "--spec", "bad.yaml")
    assert r.exit_code == 2 and "bad.yaml" in r.output and "trian_tokens: unknown key" in r.output


def test_user_override_changes_price_without_code(project):
    project.override_backend("vast", cost_per_hour_usd=0.30, pricing={"basis": "per-hour", "rate_usd": 0.30})
    project.write("conf/backend/my-box.yaml", {"name": "my-box", "kind": "self-hosted", "adapter": "remote-ssh",
                                               "auth": ["KOLM_REMOTE_HOST"], "effective_tflops": 50})
    doc = json.loads(project.invoke("compute", "list", "--json").output)
    by = {b["name"]: b for b in doc["backends"]}
    assert by["vast"]["price"] == "$0.30/h" and "my-box" in by and len(by) == 15


def test_malformed_backend_yaml_names_file_and_line(project):
    (project.root / "conf/backend").mkdir(parents=True, exist_ok=True)
    (project.root / "conf/backend/vast.yaml").write_text("name: vast\nkind: cloud-marketplace\nperf_bias: 7\n")
    r = project.invoke("compute", "list")
    assert r.exit_code == 2 and "vast.yaml:3" in r.output and "perf_bias" in r.output
    (project.root / "conf/backend/vast.yaml").write_text("name: [unclosed\n")
    r = project.invoke("compute", "list")
    assert r.exit_code == 2 and "vast.yaml" in r.output and "invalid YAML" in r.output


def test_status_empty_and_test_without_token(project):
    r = project.invoke("compute", "status")
    assert r.exit_code == 0 and "no live rentals" in r.output
    r = project.invoke("compute", "test", "vast")
    assert r.exit_code == 1 and "FAIL  auth check" in r.output and "set KOLM_VAST_TOKEN" in r.output
    r = project.invoke("compute", "test", "local-cpu", "--json")
    assert r.exit_code == 0 and json.loads(r.output)["passed"]


@pytest.mark.parametrize("row", [5, {"run_id": "x"}])
def test_status_with_a_malformed_ledger_row_names_it(project, _state_dir, row):
    _state_dir.mkdir(parents=True, exist_ok=True)
    (_state_dir / "rentals.json").write_text(json.dumps({"version": 1, "rentals": {"x": row}}))
    r = project.invoke("compute", "status", "--no-remote")
    assert r.exit_code == 2, r.output
    assert "rentals.json: rentals.x: not a rental record" in r.output


def test_rent_checks_the_data_before_renting(project, _state_dir, tmp_path):
    bad = tmp_path / "rows.jsonl"
    bad.write_text('{"input": "a", "output": "b"}\n{"input": "no output"}\n')
    r = project.invoke("compute", "rent", "--backend", "local-cpu", "--confirm", "--data", str(bad))
    assert r.exit_code == 2, r.output
    assert f"{bad}:2: a row needs 'input' and 'output'" in r.output
    assert not (_state_dir / "rentals.json").exists()  # nothing was rented
    bad.write_text('{"input": "a", "output": "b"}\n{oops\n')
    r = project.invoke("compute", "rent", "--backend", "local-cpu", "--confirm", "--data", str(bad))
    assert r.exit_code == 2 and f"{bad}:2: not JSON" in r.output


@pytest.mark.parametrize(("key", "value"), [("effective_tflops", 0), ("effective_tflops", "fast"),
                                            ("effective_tflops", ".inf"), ("min_charge_usd", -1)])
def test_a_bad_number_in_a_backend_conf_is_named(project, key, value):
    path = project.write("conf/backend/my-box.yaml", {"name": "my-box", "kind": "self-hosted", "adapter": "remote-ssh",
                                                      "auth": ["KOLM_REMOTE_HOST"], key: value})
    if value == ".inf":
        path.write_text(path.read_text().replace("'.inf'", ".inf"))
    r = project.invoke("compute", "quote")
    assert r.exit_code == 2, r.output
    assert f"{path}:6: {key}: " in r.output and "backend 'my-box'" in r.output and "Traceback" not in r.output


def test_a_timing_knob_that_is_not_a_number_is_named(project):
    path = project.write("conf/backend/my-box.yaml", {"name": "my-box", "kind": "self-hosted", "adapter": "remote-ssh",
                                                      "auth": ["KOLM_REMOTE_HOST"], "poll_seconds": "often"})
    r = project.invoke("compute", "rent", "--backend", "my-box", "--confirm")
    assert r.exit_code == 2, r.output
    assert f"{path}:6: poll_seconds: " in r.output and "backend 'my-box'" in r.output


def test_an_unknown_backend_setting_is_a_located_error(project):
    """A typo in an adapter setting is refused (it used to be ignored silently)."""
    path = project.override_backend("vast", polll_seconds=1)
    for args in (("compute", "list"), ("compute", "quote"), ("build", "backend=vast", "--budget", "5")):
        r = project.invoke(*args)
        assert r.exit_code == 2, (args, r.output)
        assert "polll_seconds: unknown setting for backend 'vast' (vast adapter)" in r.output
        assert "poll_seconds" in r.output.split("known settings:")[1]
    assert str(path) in project.invoke("compute", "list").output


def test_settings_model_per_adapter_rejects_keys_of_another_adapter():
    from kolmbuild.compute.settings import settings_for
    from kolmbuild.config.models import BackendSpec
    from kolmbuild.errors import ConfigError

    base = {"name": "together", "kind": "cloud-managed", "model": "m"}
    assert settings_for(BackendSpec.model_validate(base)).model == "m"
    with pytest.raises(ConfigError, match="image: unknown setting"):  # a vast key on the together adapter
        settings_for(BackendSpec.model_validate({**base, "image": "x"}))
