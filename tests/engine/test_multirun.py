from __future__ import annotations

import json


def test_multirun_over_two_backends_builds_twice_and_summarizes(shell_project) -> None:
    r = shell_project.kolmbuild("-m", "backend=box-a,box-b", "--json")
    assert r.returncode == 0, r.stderr
    summary = json.loads(r.stdout)
    assert summary["kind"] == "kolm-sweep"
    runs = summary["runs"]
    assert [(x["backend"], x["status"]) for x in runs] == [("box-a", "ok"), ("box-b", "ok")]
    assert [x["overrides"] for x in runs] == [["backend=box-a"], ["backend=box-b"]]
    # the echo stage reads backend.name, so it ran once per backend; count/joined ran once.
    assert sorted(shell_project.runs()) == ["count", "echo", "echo", "joined"]
    [sweep] = list((shell_project.root / "sweeps").iterdir())
    assert json.loads((sweep / "summary.json").read_text()) == summary


def test_multirun_range_and_grid(shell_project) -> None:
    r = shell_project.kolmbuild("-m", "backend=box-a,box-b", "gates=default,strict", "--json")
    assert r.returncode == 0, r.stderr
    runs = json.loads(r.stdout)["runs"]
    assert len(runs) == 4
    assert {(x["backend"], x["gates"]) for x in runs} == {
        ("box-a", "default"), ("box-a", "strict"), ("box-b", "default"), ("box-b", "strict")}


def test_dry_run_says_what_would_run(shell_project) -> None:
    r = shell_project.invoke("-n")
    assert r.exit_code == 0
    assert "would run" in r.output and "never built" in r.output
    assert shell_project.runs() == []


def test_dag_text_dot_json(shell_project) -> None:
    r = shell_project.invoke("dag", "--json")
    stages = {s["name"]: s for s in json.loads(r.output)["stages"]}
    assert stages["joined"]["after"] == ["count"]
    assert '"count" -> "joined"' in shell_project.invoke("dag", "--dot").output


def test_clean_and_gc(shell_project) -> None:
    assert shell_project.kolmbuild().returncode == 0
    assert shell_project.kolmbuild("gates=strict").returncode == 0  # an extra echo run
    r = shell_project.invoke("gc", "--json")
    rec = json.loads(r.output)
    assert rec["runs_removed"] == 1
    shell_project.reset_runs()
    assert shell_project.kolmbuild().returncode == 0
    assert shell_project.runs() == []  # what the current config needs survived gc
