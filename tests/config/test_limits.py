"""Config that would expand without bound, or hold values JSON cannot keep, is refused before it
expands: exit 2, a message naming the file, override or key, no traceback, no hang."""

from __future__ import annotations

import pytest

from tests.conftest import write


def _laughs(indent: int, levels: int = 9) -> str:
    """A YAML list whose aliases stand for 10**levels strings (a few hundred bytes of text)."""
    pad = " " * indent
    lines = [f"{pad}- &l0 [x, x, x, x, x, x, x, x, x, x]"]
    for i in range(1, levels):
        lines.append(f"{pad}- &l{i} [{', '.join([f'*l{i - 1}'] * 10)}]")
    return "\n".join(lines)


def _invoke(project, *args: str):
    r = project.invoke(*args)  # in-process; a traceback would raise here
    return r.exit_code, r.output


@pytest.mark.timeout(60)
def test_billion_laughs_in_the_kolmfile(shell_project) -> None:
    write(shell_project.root / "kolmfile.yaml", "targets:\n  demo:\n    task: demo\n    overrides:\n" + _laughs(6))
    code, out = _invoke(shell_project, "status")
    assert code == 2, out
    assert "kolmfile.yaml: its anchors and aliases expand to 1,234,567,908 nodes, over the limit of 100,000" in out


@pytest.mark.timeout(60)
def test_billion_laughs_in_a_config_group_file(shell_project) -> None:
    write(shell_project.root / "conf/task/demo.yaml",
          "name: demo\nexamples: data/train.jsonl\neval: data/eval.jsonl\ncorpus: corpus\nrecipes:\n  kinds:\n" + _laughs(4))
    code, out = _invoke(shell_project, "status")
    assert code == 2, out
    assert "conf/task/demo.yaml: its anchors and aliases expand to" in out


def test_a_recursive_alias_and_deep_nesting_are_refused(shell_project) -> None:
    kolmfile = shell_project.root / "kolmfile.yaml"
    kolmfile.write_text("targets:\n  demo: &d\n    task: demo\n    overrides: [*d]\n")
    code, out = _invoke(shell_project, "status")
    assert code == 2 and "kolmfile.yaml:2: an alias refers to a node that contains it" in out, out
    kolmfile.write_text("targets:\n  demo:\n    task: demo\n    overrides: " + "[" * 5000 + "]" * 5000 + "\n")
    code, out = _invoke(shell_project, "status")
    assert code == 2 and "kolmfile.yaml: nested too deeply to read" in out, out
    kolmfile.write_text("targets: {demo: {task: demo}}\n# " + "x" * (1 << 20) + "\n")
    code, out = _invoke(shell_project, "status")
    assert code == 2 and "over the limit of 1,048,576 for a config file" in out, out


@pytest.mark.timeout(60)
def test_interpolations_that_double_at_each_level_are_refused_before_resolving(shell_project) -> None:
    levels = ["l0: xxxxxxxx"] + [f"l{i}: ${{.l{i - 1}}}${{.l{i - 1}}}" for i in range(1, 41)]
    write(shell_project.root / "conf/task/demo.yaml",
          "name: demo\nexamples: data/train.jsonl\neval: data/eval.jsonl\ncorpus: corpus\n"
          "description: ${.l40}\n" + "\n".join(levels) + "\n")
    code, out = _invoke(shell_project, "status")
    assert code == 2, out
    assert "target 'demo': the composed config would expand to" in out and "over the limit of 4,194,304" in out


def test_a_computed_interpolation_key_is_refused_with_a_message(shell_project) -> None:
    write(shell_project.root / "conf/task/demo.yaml",
          "name: demo\nexamples: data/train.jsonl\neval: data/eval.jsonl\ncorpus: corpus\n"
          "description: ${oc.select:task.${task.name}}\n")
    code, out = _invoke(shell_project, "status")
    assert code == 2 and "task.description: an interpolation whose key is computed" in out, out


@pytest.mark.timeout(60)
@pytest.mark.parametrize(
    ("args", "expected"),
    [
        (["task.description=" + "a" * 100_000], "is 100,017 characters, over the limit of 65,536"),
        ([f"task.train.rank={i}" for i in range(1001)], "1,001 overrides, over the limit of 1,000"),
        (["-m", "task.train.seed=range(0,1000000000)"], "the sweep has more than 1,000 points"),
        (["-m", "task.train.seed=range(0,40)", "task.train.rank=range(1,40)"], "the sweep has more than 1,000 points"),
        (["task.train.rank=99999999999999999999"],
         "override 'task.train.rank=99999999999999999999': task.train.rank: integer 99999999999999999999 is out of range"),
        (["task.split.seed=-9007199254740993"], "task.split.seed: integer -9007199254740993 is out of range"),
        (["task.train.lr=1e999"], "override 'task.train.lr=1e999': task.train.lr: inf is not a finite number"),
        (["task.train.lr=nan"], "override 'task.train.lr=nan': task.train.lr: nan is not a finite number"),
        (["gates.K_min=-inf"], "override 'gates.K_min=-inf': gates.K_min: -inf is not a finite number"),
        (["-m", "task.train.rank=glob(*)"], "bad sweep: ConfigLoader is not set"),
    ],
    ids=["huge-override", "too-many-overrides", "huge-sweep", "sweep-product", "int-over-2^53", "negative-int",
         "float-overflow", "nan", "negative-inf", "glob-sweep"],
)
def test_overrides_out_of_bounds_exit_2(shell_project, args: list[str], expected: str) -> None:
    code, out = _invoke(shell_project, *args)
    assert code == 2, out
    assert expected in out, out


def test_a_bad_value_in_a_group_file_is_located_there_not_in_an_override(shell_project) -> None:
    write(shell_project.root / "conf/task/demo.yaml",
          "name: demo\nexamples: data/train.jsonl\neval: data/eval.jsonl\ncorpus: corpus\ntrain:\n  lr: .inf\n")
    code, out = _invoke(shell_project, "status", "backend=box-b")
    assert code == 2, out
    assert "conf/task/demo.yaml:6: task.train.lr: inf is not a finite number" in out


def test_an_undecodable_byte_from_the_environment_is_a_message(shell_project, monkeypatch) -> None:
    monkeypatch.setenv("KOLM_TEST_DESCRIPTION", "caf\udce9")  # os.environ's surrogateescape of b"caf\xe9"
    code, out = _invoke(shell_project, "status", "task.description=${oc.env:KOLM_TEST_DESCRIPTION}")
    assert code == 2, out
    assert "task.description: not valid text (character 4 is an undecodable byte" in out
