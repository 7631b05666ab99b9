"""Fuzz the kolmfile, config group files and overrides through ``kolmbuild status`` (in-process):
exit 0 or 2, never a traceback, never a hang."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml
from hypothesis import given
from hypothesis import strategies as st

from tests.conftest import ShellProject

from .conftest import TIMEOUT, fuzz, invoke

KEYS = ["targets", "demo", "task", "backend", "gates", "overrides", "budget", "usd", "defaults", "pipeline",
        "version", "out", "name", "examples", "train", "rank", "lr", "shape", "input", "output", "labels",
        "split", "holdout", "seed", "limits", "max_example_bytes", "teacher", "model", "api_key", "k"]
scalars = st.one_of(
    st.none(), st.booleans(), st.integers(-(2**70), 2**70), st.floats(allow_nan=True, allow_infinity=True),
    st.text(max_size=12), st.sampled_from(["demo", "box-a", "box-b", "strict", "${oc.env:HOME}", "${task.name}",
                                           "${oc.env:KOLM_FUZZ_UNSET}", "${oc.env:${x}}", "${..a}", "${oc.select:a.b,1}",
                                           "${oc.decode:'[1,2]'}", "${a.${b}}", "???", "\x1b[2J", "\ud800", "1e999", ".inf"]),
)
trees = st.recursive(scalars, lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.sampled_from(KEYS) | st.text(max_size=5), inner, max_size=4), max_leaves=15)
kolmfiles = st.one_of(
    trees.map(lambda t: {"targets": {"demo": {"task": "demo", **(t if isinstance(t, dict) else {"overrides": t})}}}),
    trees.map(lambda t: {"targets": t}),
    trees,
)
yaml_snippets = st.sampled_from([
    "a: &a [x, x]\nb: &b [*a, *a, *a]\nc: [*b, *b]\n", "a: &a [*a]\n", "[" * 300 + "]" * 300, "a: !!python/object:os.system x\n",
    "%YAML 1.1\n---\na: 1\n---\nb: 2\n", "a: b: c\n", "\t- x\n", "key: 'unterminated\n", "? [a, b]\n: c\n", "a: 1\na: 2\n",
    "<<: {a: 1}\n", "a: 0o777\nb: 0x1F\nc: 1_000\n", "!!binary aGVsbG8=\n", "\ufeffa: 1\n",
])


def _dump(doc: object) -> str:
    try:
        return yaml.safe_dump(doc, allow_unicode=True)
    except (yaml.YAMLError, UnicodeEncodeError):
        return "targets: {}\n"


@pytest.fixture(scope="module")
def project(tmp_path_factory: pytest.TempPathFactory) -> ShellProject:
    return ShellProject(Path(tmp_path_factory.mktemp("fuzzproj")) / "p")


def _status_with(project: ShellProject, rel: str, text: str) -> None:
    """``status`` with the project's file ``rel`` holding ``text`` (restored after)."""
    path = project.root / rel
    original = path.read_bytes()
    try:
        path.write_bytes(text.encode("utf-8", "surrogatepass"))
        invoke("-C", str(project.root), "status")
    finally:
        path.write_bytes(original)


@pytest.mark.timeout(TIMEOUT)
@fuzz(60)
@given(text=st.one_of(kolmfiles.map(_dump), yaml_snippets, st.text(max_size=80)))
def test_kolmfile(project: ShellProject, text: str) -> None:
    _status_with(project, "kolmfile.yaml", text)


@pytest.mark.timeout(TIMEOUT)
@fuzz(50)
@given(text=st.one_of(trees.map(lambda t: _dump({"name": "demo", "examples": "data/train.jsonl", "eval": "data/eval.jsonl",
                                                  "corpus": "corpus", **(t if isinstance(t, dict) else {"train": t})})),
                      yaml_snippets, st.text(max_size=80)))
def test_config_group_file(project: ShellProject, text: str) -> None:
    _status_with(project, "conf/task/demo.yaml", text)


override_keys = st.sampled_from(["task.train.rank", "task.train.lr", "task.description", "task.split.holdout", "gates.K_min",
                                 "backend", "gates", "task.shape.labels", "+task.x", "~task.eval", "task", "task.train",
                                 "budget.usd", "task.limits.max_example_bytes", "task.teacher.api_key", "a.b.c", ""])
override_values = st.one_of(
    scalars.map(lambda v: "" if v is None else str(v)),
    st.sampled_from(["[1,2", "{a: 1}", "range(0,1000000000)", "1,2,3", "choice(a,b)", "glob(*)", "interval(0,1)",
                     "${oc.env:HOME}", "'quoted", "null", "\\", "${", "}", "=", "x" * 70000]),
    st.text(max_size=20),
)
overrides = st.lists(st.tuples(override_keys, st.sampled_from(["=", "@x=", ""]), override_values).map("".join), max_size=3)


@pytest.mark.timeout(TIMEOUT)
@fuzz(80)
@given(args=overrides, multirun=st.booleans())
def test_overrides(project: ShellProject, args: list[str], multirun: bool) -> None:
    invoke("-C", str(project.root), *(["-m"] if multirun else []), *(["-n"] if multirun else ["status"]), *args)
