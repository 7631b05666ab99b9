"""`kolmbuild` itself refuses an over-budget build (kolmfile budget.usd or --budget) with zero provider calls."""

from __future__ import annotations

import json

from tests.compute.conftest import point_at
from tests.compute.fakes import FakeLambda


def test_build_refuses_over_budget_before_any_provider_call(project, monkeypatch):
    with FakeLambda() as fake:
        point_at(project, "lambda", fake.url)
        monkeypatch.setenv("KOLM_LAMBDA_TOKEN", fake.token)
        project.write("kolmfile.yaml", {"version": 1, "defaults": {"backend": "lambda"}, "budget": {"usd": 0.0001},
                                        "targets": {"redact": {"task": "redact"}}})
        r = project.invoke("build")
        assert r.exit_code == 2, r.output
        assert "refused: estimate $0.10 exceeds budget $0.0001" in r.output
        project.write("kolmfile.yaml", {"version": 1, "defaults": {"backend": "lambda"},
                                        "targets": {"redact": {"task": "redact"}}})
        r = project.invoke("build", "--budget", "0.01", "--json")
        assert r.exit_code == 2
        assert "refused: estimate $0.10 exceeds budget $0.01" in r.output
        assert json.loads(r.output[r.output.index("["):])[0]["status"] == "refused"
        assert fake.requests == []


def test_subprocess_refusal_has_no_traceback(project):
    project.write("kolmfile.yaml", {"version": 1, "defaults": {"backend": "modal"},
                                    "targets": {"redact": {"task": "redact"}}})
    proc = project.spawn("--budget", "0.001")
    out, err = proc.communicate(timeout=120)
    assert proc.returncode == 2, err
    assert "refused: estimate $" in err and "exceeds budget $0.0010" in err and "Traceback" not in err


def test_check_budget_api_and_local_backend_never_refuses(project):
    from kolmbuild.compute import check_budget
    from kolmbuild.config.compose import Composer
    from kolmbuild.config.kolmfile import load_project
    from kolmbuild.errors import BudgetExceeded

    project.write("kolmfile.yaml", {"version": 1, "budget": {"usd": 0.0}, "targets": {"redact": {"task": "redact"}}})
    cfg = Composer(load_project(project.root)).compose("redact").config
    check_budget(cfg, root=project.root)  # local-cpu costs $0: within a $0 budget
    cfg2 = Composer(load_project(project.root)).compose("redact", ["backend=vast"]).config
    try:
        check_budget(cfg2, root=project.root)
    except BudgetExceeded as exc:
        assert exc.exit_code == 2 and str(exc).startswith("refused: estimate $")
    else:
        raise AssertionError("vast with a $0 budget must be refused")
