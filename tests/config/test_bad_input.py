"""Every bad input exits 2 with one message naming the file, line or key — and no traceback."""

from __future__ import annotations

import pytest

from tests.conftest import write

CASES = {
    "yaml-syntax": ("kolmfile.yaml", "targets:\n  demo: [unclosed\n", ["kolmfile.yaml:", "invalid YAML"]),
    "empty": ("kolmfile.yaml", "", ["kolmfile.yaml is empty"]),
    "not-a-mapping": ("kolmfile.yaml", "- a\n- b\n", ["expected a mapping", "list"]),
    "unknown-key": ("kolmfile.yaml", "targets:\n  demo:\n    task: demo\n    taks: x\n", ["kolmfile.yaml:4", "targets.demo.taks", "unknown key"]),
    "no-targets": ("kolmfile.yaml", "targets: {}\n", ["targets", "at least one target"]),
    "wrong-type-in-group": ("conf/task/demo.yaml", "name: demo\nexamples: data/train.jsonl\ntrain:\n  rank: lots\n",
                            ["conf/task/demo.yaml:4", "task.train.rank", "integer"]),
    "unknown-key-in-group": ("conf/task/demo.yaml", "name: demo\nexamples: data/train.jsonl\nteacher:\n  modle: x\n",
                             ["conf/task/demo.yaml:4", "task.teacher.modle", "unknown key"]),
}


@pytest.mark.parametrize("case", sorted(CASES))
def test_bad_files_exit_2_with_location(shell_project, case: str) -> None:
    rel, text, expected = CASES[case]
    write(shell_project.root / rel, text) if text else (shell_project.root / rel).write_text("")
    r = shell_project.kolmbuild()
    assert r.returncode == 2, (r.stdout, r.stderr)
    assert "Traceback" not in r.stderr
    for piece in expected:
        assert piece in r.stderr, r.stderr


@pytest.mark.parametrize(
    ("args", "expected"),
    [
        (["backend=nope"], ["unknown backend option 'nope'", "box-a, box-b"]),
        (["gates=nope"], ["unknown gates option 'nope'"]),
        (["task.train.rnak=3"], ["task.train.rnak"]),
        (["task.train.rank=[1"], ["bad override"]),
        (["backend=box-a,box-b"], ["is a sweep", "-m"]),
        (["nosuchtarget"], ["no target named 'nosuchtarget'", "demo"]),
        (["task.train.rank=abc"], ["task.train.rank", "integer"]),
    ],
)
def test_bad_overrides_exit_2(shell_project, args: list[str], expected: list[str]) -> None:
    r = shell_project.kolmbuild(*args)
    assert r.returncode == 2, (r.stdout, r.stderr)
    assert "Traceback" not in r.stderr
    for piece in expected:
        assert piece in r.stderr, r.stderr


def test_missing_input_file_exits_2_and_names_key(shell_project) -> None:
    (shell_project.root / "data/eval.jsonl").unlink()
    r = shell_project.kolmbuild()
    assert r.returncode == 2
    assert "task.eval" in r.stderr and "data/eval.jsonl" in r.stderr and "Traceback" not in r.stderr


def test_missing_kolmfile(tmp_path) -> None:
    from click.testing import CliRunner

    from kolmbuild.cli.main import cli

    r = CliRunner().invoke(cli, ["-C", str(tmp_path)])
    assert r.exit_code == 2
    assert "no kolmfile.yaml" in r.output


def test_debug_shows_traceback(shell_project) -> None:
    r = shell_project.kolmbuild("--debug", "backend=nope")
    assert r.returncode == 2 and "Traceback" in r.stderr


def test_cfg_prints_composed_config_with_overrides(shell_project) -> None:
    r = shell_project.invoke("--cfg", "--json", "task.train.rank=32", "+extra=1", "~task.corpus")
    assert r.exit_code == 0, r.output
    import json

    cfg = json.loads(r.output)["demo"]
    assert cfg["task"]["train"]["rank"] == 32
    assert cfg["extra"] == 1
    assert cfg["task"]["corpus"] is None
    assert cfg["backend"]["name"] == "box-a"
