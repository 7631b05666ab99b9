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
    assert [(x["point"], x["name"]) for x in runs] == [(1, "01-demo-backend-box-a"), (2, "02-demo-backend-box-b")]
    assert summary["version"] == 2 and summary["complete"] is True and summary["executor"]["kind"] == "serial"
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


def test_points_built_at_once_share_the_stages_they_have_in_common(shell_project) -> None:
    """-j 4 builds four points at once on one engine: count and joined (the same key for all of them)
    run once, echo once per point, and every point ends with all its outputs."""
    r = shell_project.kolmbuild("-m", "backend=box-a,box-b", "gates=default,strict", "-j", "4", "--json")
    assert r.returncode == 0, r.stderr
    summary = json.loads(r.stdout)
    assert summary["executor"] == {"kind": "threads", "workers": 4}
    assert [x["status"] for x in summary["runs"]] == ["ok"] * 4
    assert sorted(shell_project.runs()) == ["count", "echo", "echo", "echo", "echo", "joined"]
    assert sum("count" in x["ran"] for x in summary["runs"]) == 1  # the others took its run from the cache


def test_a_sweep_leaves_the_default_install_alone(shell_project) -> None:
    from tests.engine.conftest import ARTIFACT, add_pack_rule

    add_pack_rule(shell_project)
    assert shell_project.kolmbuild().returncode == 0
    installed = (shell_project.root / ARTIFACT).read_bytes()
    r = shell_project.kolmbuild("-m", "gates=default,strict", "--json")
    assert r.returncode == 0, r.stderr
    runs = json.loads(r.stdout)["runs"]
    assert [x["artifact"].split("/", 2)[2] for x in runs] == [
        "01-demo-gates-default/demo-0.1.0.kolm", "02-demo-gates-strict/demo-0.1.0.kolm"]
    assert (shell_project.root / ARTIFACT).read_bytes() == installed
    assert sorted(p.name for p in (shell_project.root / "artifacts").iterdir()) == ["demo-0.1.0.kolm"]
    r = shell_project.kolmbuild("-m", "gates=default,strict", "--out", "x.kolm")
    assert r.returncode == 2 and "each point's artifact in its own folder" in r.stderr
