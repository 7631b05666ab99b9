from __future__ import annotations

import json

import pytest

from kolmbuild.config.compose import Composer, schema_defaults, split_sweeps
from kolmbuild.config.kolmfile import load_project
from kolmbuild.config.models import TaskSpec
from tests.conftest import write


def _no_default_backend(root):
    write(root / "kolmfile.yaml", "pipeline: [echo]\ntargets:\n  demo:\n    task: demo\n")


def test_backend_precedence_env_then_kolmfile(shell_project, monkeypatch: pytest.MonkeyPatch) -> None:
    _no_default_backend(shell_project.root)
    monkeypatch.setenv("KOLM_BACKEND", "box-b")
    assert Composer(load_project(shell_project.root)).compose("demo").config.backend.name == "box-b"
    write(shell_project.root / "kolmfile.yaml",
          "pipeline: [echo]\ndefaults: {backend: box-a}\ntargets:\n  demo:\n    task: demo\n")
    assert Composer(load_project(shell_project.root)).compose("demo").config.backend.name == "box-a"
    # the command line beats both
    c = Composer(load_project(shell_project.root)).compose("demo", ["backend=box-b"])
    assert c.config.backend.name == "box-b" and c.choice("backend") == "box-b"


def test_project_conf_overrides_builtin_option(shell_project) -> None:
    write(shell_project.root / "conf/gates/default.yaml", "K_min: 0.33\n")
    c = Composer(load_project(shell_project.root)).compose("demo")
    assert c.config.gates.K_min == 0.33


def test_per_target_overrides_in_kolmfile(shell_project) -> None:
    write(shell_project.root / "kolmfile.yaml", """
        pipeline: [echo]
        defaults: {backend: box-a}
        targets:
          small: {task: demo, overrides: ["task.train.rank=4"]}
          big: {task: demo, gates: strict, overrides: ["task.train.rank=64"]}
    """)
    comp = Composer(load_project(shell_project.root))
    assert comp.compose("small").config.task.train.rank == 4
    big = comp.compose("big", ["task.train.alpha=8"])
    assert (big.config.task.train.rank, big.config.task.train.alpha, big.config.gates.K_min) == (64, 8, 0.9)


def test_schema_defaults_cover_every_optional_key() -> None:
    d = schema_defaults(TaskSpec)
    assert "name" not in d and "examples" not in d
    assert d["train"]["rank"] == 8 and d["shape"]["schema"] is None


def test_sweep_grammar_range_and_choice() -> None:
    pts = split_sweeps(["backend=choice(a,b)", "task.train.rank=range(8,25,8)"])
    assert len(pts) == 6 and ["backend=a", "task.train.rank=8"] in pts


def test_help_lists_verbs_without_importing_them(shell_project) -> None:
    r = shell_project.invoke("--help")
    assert r.exit_code == 0
    for verb in ("build", "status", "verify", "compute", "serve"):
        assert verb in r.output


def test_build_verb_is_implied(shell_project) -> None:
    r = shell_project.invoke("--json")
    assert r.exit_code == 0, r.output
    assert json.loads(r.output)[0]["status"] == "built"
    r = shell_project.invoke("status", "--json")
    assert {s["status"] for s in json.loads(r.output)} == {"up-to-date"}
