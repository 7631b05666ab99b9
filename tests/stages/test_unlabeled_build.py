"""The compile loop end to end (issue 12): a label task with 20 gold examples and 200 unlabelled
inputs, labelled by a scripted OpenAI-compatible teacher on 127.0.0.1 through the real ``openai``
SDK; the build with the teacher's verified labels scores higher on a gold test set than the
gold-only build, and a noisy teacher's disagreeing samples are rejected."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest

from kolmbuild.data import read_jsonl
from tests.stages.loop_project import LoopProject, ScriptedTeacher, Serving


@pytest.fixture
def teacher() -> Iterator[tuple[ScriptedTeacher, str]]:
    fake = ScriptedTeacher(tokens_in=60, tokens_out=2)
    with Serving(fake) as serving:
        yield fake, serving.url


def test_teacher_labels_on_unlabelled_inputs_raise_K_on_the_gold_test_set(
    tmp_path: Path, teacher: tuple[ScriptedTeacher, str]
) -> None:
    fake, url = teacher
    project = LoopProject(tmp_path / "proj", url)
    noisy = {r["input"] for r in project.pool[::10]}  # 20 inputs the teacher cannot make up its mind on
    fake.answer = project.answer(noisy)
    res = project.kolm("--json")
    assert res.exit_code == 0, res.output
    assert fake.count == 3 * (len(read_jsonl(project.stage_output("router", "ingest", "train.jsonl"))) + 200)

    distilled = json.loads(project.stage_output("router", "distill", "distill.json").read_text())
    assert distilled["unlabeled"]["inputs"] == 200
    assert distilled["unlabeled"]["kept"] == 180 and distilled["unlabeled"]["why_rejected"] == {"no clear majority": 20}
    by_line = {r["line"]: r for r in distilled["unlabeled"]["per_input"]}
    for n, row in enumerate(project.pool, 1):
        assert by_line[n]["kept"] is (row["input"] not in noisy), n
        assert by_line[n]["agreement"] == (1.0 if row["input"] not in noisy else 0.333333)
    labels = read_jsonl(project.stage_output("router", "distill", "labels.jsonl"))
    teacher_rows = {r["input"]: r["output"] for r in labels if r["source"] == "teacher" and r["input"] in project.truth
                    and r["input"] not in {g["input"] for g in project.gold}}  # fmt: skip
    assert len(teacher_rows) == 180 and not set(teacher_rows) & noisy
    assert all(project.truth[text] == label for text, label in teacher_rows.items())

    with_teacher, gold_only = project.eval_json("router"), project.eval_json("router-gold")
    assert with_teacher["cases"]["n"] == gold_only["cases"]["n"] == 100  # the same gold test rows
    assert with_teacher["K"] > gold_only["K"]
    assert with_teacher["terms"]["A"] > gold_only["terms"]["A"] and with_teacher["terms"]["A"] >= 0.8
    # K is scored on the test rows only; the select rows' score is reported apart
    assert "selection" in with_teacher and with_teacher["selection"]["cases"] >= 1
    decompose = json.loads(project.stage_output("router", "decompose", "decompose.json").read_text())
    selected = read_jsonl(project.stage_output("router", "ingest", "select.jsonl"))
    assert decompose["pack"]["heldout"] == len(selected) and decompose["train_rows"] >= 180
    test_inputs = {r["input"] for r in project.test}
    assert not test_inputs & {r["input"] for r in labels}  # no test row was trained on
    assert not test_inputs & {r["input"] for r in selected}
