"""The compute verbs as a library, without click: kolmbuild.compute.workspace.Workspace.

Every guarantee the CLI gives (budget before any provider call, the teacher's estimate counted,
bad rows refused before renting) holds for a Python caller of the same one call.
"""

from __future__ import annotations

import json

import pytest

from kolmbuild.compute.workspace import Workspace
from kolmbuild.config.kolmfile import load_project
from kolmbuild.errors import BudgetExceeded, ConfigError, DataError, UserInputError
from kolmbuild.wiring import compute_workspace
from tests.compute.conftest import point_at
from tests.compute.fakes import FakeLambda

TEACHER = {"model": "gpt-x", "price_in_per_mtok": 2.0, "price_out_per_mtok": 8.0}


def _never_called(line: str) -> None:  # on_progress: nothing may run
    raise AssertionError(f"a refused rental made progress: {line}")


def test_rent_refuses_over_the_kolmfile_budget_with_zero_provider_requests(project, monkeypatch):
    project.write("kolmfile.yaml", {"version": 1, "budget": {"usd": 0.05}, "targets": {"redact": {"task": "redact"}}})
    with FakeLambda() as fake:
        point_at(project, "lambda", fake.url)
        monkeypatch.setenv("KOLM_LAMBDA_TOKEN", fake.token)
        ws = Workspace.at(project.root, load_project(project.root))
        assert ws.budget("redact") == 0.05
        asked: list[str] = []
        with pytest.raises(BudgetExceeded, match=r"exceeds budget \$0.05"):
            ws.rent("lambda", run_id="kolm-ws1", on_progress=_never_called, confirm=True,
                    ask=lambda q: asked.append(q) or True)
        assert fake.requests == [] and asked == []  # the budget gate comes before the token and confirm gates


def test_the_teacher_estimate_is_the_callers_and_counts_against_the_budget(project):
    project.write("conf/task/redact.yaml", {"name": "redact", "examples": "data/train.jsonl",
                                            "eval": "data/eval.jsonl", "teacher": TEACHER})
    calls: list[int] = []

    def teacher_cost(task, rows):
        calls.append(rows)
        return 0.25

    ws = Workspace.at(project.root, load_project(project.root), teacher_cost=teacher_cost)
    table = ws.quote_all()  # no target named: the kolmfile's only one
    assert table.job.name == "redact" and table.teacher_usd == 0.25 and calls == [40]
    assert table.to_json()["teacher_cost_usd"] == 0.25
    assert {q.backend for q in table.eligible} >= {"local-cpu"}
    # local-cpu is free; the teacher is not: $0.25 > $0.10 is refused before anything runs
    with pytest.raises(BudgetExceeded, match=r"refused: estimate \$0.25 exceeds budget \$0.10"):
        ws.rent("local-cpu", target="redact", budget_usd=0.10, run_id="kolm-ws2", on_progress=_never_called)
    # without the callback (compute never imports the teacher) there is no estimate
    assert Workspace.at(project.root, load_project(project.root)).quote_all().teacher_usd is None
    # the standard wiring hands in the teacher's own estimate
    assert compute_workspace(project.root, load_project(project.root)).quote_all().teacher_usd > 0


def test_jobs_from_a_spec_or_a_target_not_both(project, tmp_path):
    ws = Workspace.at(project.root, load_project(project.root))
    assert ws.job() is None
    assert ws.job(target="redact").rows == 40
    with pytest.raises(UserInputError, match="not both"):
        ws.job(spec="job.yaml", target="redact")
    outside = Workspace.at(tmp_path, None)
    assert outside.root == tmp_path.resolve() and outside.quote_all().job.origin  # the reference job
    with pytest.raises(ConfigError, match="no kolmfile.yaml"):
        outside.job(target="redact")


def test_bad_training_rows_are_refused_before_renting(project):
    (project.root / "data/train.jsonl").write_text('{"input": "a", "output": "b"}\n{"input": "no output"}\n')
    ws = Workspace.at(project.root, load_project(project.root))
    with pytest.raises(DataError, match=r"train.jsonl:2: a row needs 'input' and 'output'"):
        ws.rent("local-cpu", target="redact", run_id="kolm-ws3", on_progress=_never_called)
    assert not (project.root / "kolm-runs").exists()


def test_use_and_info(project, _isolated_user_config):
    ws = Workspace.at(project.root, load_project(project.root))
    path = ws.use("vast")
    assert path.parent == _isolated_user_config and "backend: vast" in path.read_text()
    with pytest.raises(ConfigError):
        ws.use("nope")
    info = ws.info("local-cpu")
    assert info["backend"]["name"] == "local-cpu" and info["reference_quote"]["cost_usd"] == 0
    json.dumps(info)  # plain JSON
