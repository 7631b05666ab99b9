"""Drift comes back (issue 12): inputs ``run`` and ``serve`` logged are listed (deduplicated, with
counts and first/last seen), accepted into the task's unlabelled set, and the next build has the
teacher label them; ``status`` shows what a pending accepted drift makes stale; ``clear`` forgets."""

from __future__ import annotations

import json
import re
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import openai
import pytest

from kolmbuild.data import read_jsonl
from kolmbuild.runtime.drift import drift_log_path, input_id
from tests.stages.loop_project import LoopProject, ScriptedTeacher, Serving, jsonl

# messages in words the gold examples never use: no recipe covers them
DRIFT = {
    "Ola, onde esta minha encomenda": "shipping",
    "Quero meu dinheiro de volta agora": "billing",
    "Nao consigo entrar na minha conta": "account",
}


@pytest.fixture
def project(tmp_path: Path) -> Iterator[tuple[LoopProject, ScriptedTeacher]]:
    fake = ScriptedTeacher(tokens_in=60, tokens_out=2)
    with Serving(fake) as serving:
        p = LoopProject(tmp_path / "proj", serving.url, n_unlabeled=40, n_test=30)
        p.truth.update(DRIFT)
        fake.answer = p.answer()
        yield p, fake


def _routes(p: LoopProject, inputs: list[str]) -> list[dict[str, object]]:
    src = jsonl(p.root / "asked.jsonl", [{"input": t} for t in inputs])
    res = p.kolm("run", str(p.artifact("router")), "--file", str(src), "--json")
    assert res.exit_code == 0, res.output
    return [json.loads(line) for line in res.output.splitlines() if line.startswith("{")]


def test_drift_from_run_is_accepted_and_labelled_by_the_next_build(project: tuple[LoopProject, ScriptedTeacher]) -> None:
    p, fake = project
    assert p.kolm("router").exit_code == 0
    asked = [*DRIFT, next(iter(DRIFT)), p.test[0]["input"]]  # one drift input twice, one covered input
    answers = _routes(p, asked)
    assert [a["route"] for a in answers[:4]] == ["none"] * 4, answers  # uncovered: logged
    assert answers[4]["route"] == "recipe"  # covered: not logged

    listed = json.loads(p.kolm("drift", "list", "router", "--json").output)["router"]
    assert [(e["input"], e["count"], e["routes"]) for e in listed] == [
        (t, 2 if i == 0 else 1, {"none": 2 if i == 0 else 1}) for i, t in enumerate(DRIFT)]
    assert all(e["first_seen"] <= e["last_seen"] and e["id"] == input_id(e["input"]) for e in listed)
    human = p.kolm("drift", "list").output  # no TARGET: every target of the kolmfile
    assert "router: 3 distinct input(s), 4 logged" in human and "router-gold: 0 distinct" in human

    before = set(p.root.joinpath("data/unlabeled.jsonl").read_text().splitlines())
    res = p.kolm("drift", "accept", "router", "--all")
    assert res.exit_code == 0, res.output
    assert "accepted 3 input(s) into data/unlabeled.jsonl" in res.output and "router-teacher" in res.output
    after = p.root.joinpath("data/unlabeled.jsonl").read_text().splitlines()
    assert set(after) - before == {json.dumps({"input": t}, ensure_ascii=False, separators=(",", ":")) for t in DRIFT}
    assert json.loads(p.kolm("drift", "list", "router", "--json").output) == {"router": []}  # taken off the log

    status = json.loads(p.kolm("status", "router", "--json").output)
    stale = {s["stage"]: s for s in status if s["status"] != "up-to-date"}
    assert "input task.unlabeled changed" in stale["ingest"]["reasons"]
    assert {"distill", "decompose", "evaluate", "package"} <= set(stale)
    dry = p.kolm("router", "-n")
    assert "ingest" in dry.output and "task.unlabeled" in dry.output

    calls = fake.count
    rebuilt = p.kolm("router")
    assert rebuilt.exit_code == 0, rebuilt.output
    assert fake.count - calls == 3 * 3  # only the three accepted inputs are new requests (k=3)
    labels = {r["input"]: r for r in read_jsonl(p.stage_output("router", "distill", "labels.jsonl"))}
    for text, queue in DRIFT.items():
        assert labels[text]["output"] == queue and labels[text]["source"] == "teacher"
    assert p.kolm("drift", "accept", "router", "--all").output.startswith("accepted 0 input(s)")


def test_drift_logged_by_serve_comes_back_too(project: tuple[LoopProject, ScriptedTeacher]) -> None:
    p, _ = project
    assert p.kolm("router").exit_code == 0
    proc = subprocess.Popen([sys.executable, "-m", "kolmbuild", "serve", str(p.artifact("router")), "--port", "0"],
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    assert proc.stderr is not None
    try:
        line = proc.stderr.readline()
        m = re.search(r"on (http://127\.0\.0\.1:\d+)", line)
        assert m, line + proc.stderr.read()
        client = openai.OpenAI(base_url=m.group(1) + "/v1", api_key="x", max_retries=0, timeout=60)
        for text in DRIFT:
            with pytest.raises(openai.UnprocessableEntityError):  # recipes only: no answer, logged as drift
                client.chat.completions.create(model="router", messages=[{"role": "user", "content": text}])
        covered = client.chat.completions.create(model="router", messages=[{"role": "user", "content": p.test[1]["input"]}])
        assert covered.choices[0].message.content in ("account", "billing", "shipping", "technical")
    finally:
        proc.terminate()
        proc.wait(30)
    listed = json.loads(p.kolm("drift", "list", "router", "--json").output)["router"]
    assert [e["input"] for e in listed] == list(DRIFT)
    first = listed[0]["id"]
    res = p.kolm("drift", "accept", "--id", first[:6], "router")
    assert res.exit_code == 0 and "accepted 1 input(s)" in res.output
    assert [e["input"] for e in json.loads(p.kolm("drift", "list", "router", "--json").output)["router"]] == list(DRIFT)[1:]
    assert "ingest" in p.kolm("router", "-n").output


def test_clear_accept_without_an_unlabelled_set_and_bad_ids(project: tuple[LoopProject, ScriptedTeacher]) -> None:
    p, _ = project
    from kolmbuild.runtime.drift import DriftLog

    DriftLog(drift_log_path("router-gold"), "router-gold").append([(t, "none") for t in DRIFT])
    DriftLog(drift_log_path("router"), "router").append([("lone input", "none"), ("another", "none")])
    res = p.kolm("drift", "accept", "router-gold", "--all")
    assert res.exit_code == 2 and "no unlabelled set to accept drift into" in res.output
    assert "unlabeled: data/router-gold-unlabeled.jsonl" in res.output and "Traceback" not in res.output
    assert p.kolm("drift", "accept", "router").exit_code == 2  # neither --id nor --all
    assert p.kolm("drift", "accept").exit_code == 2  # two targets: name one
    bad = p.kolm("drift", "clear", "router", "--id", "zzzz")
    assert bad.exit_code == 2 and "--id zzzz: matches no logged input" in bad.output
    one = input_id("lone input")
    assert p.kolm("drift", "clear", "router", "--id", one).output.strip() == "cleared 1 logged line(s) of router"
    assert [e["input"] for e in json.loads(p.kolm("drift", "list", "router", "--json").output)["router"]] == ["another"]
    assert p.kolm("drift", "clear", "router-gold").output.strip() == "cleared 3 logged line(s) of router-gold"
    assert read_jsonl_lines(drift_log_path("router-gold")) == []
    assert "unlabeled" not in p.root.joinpath("conf/task/router-gold.yaml").read_text()


def read_jsonl_lines(path: Path) -> list[str]:
    return [line for line in path.read_text().splitlines() if line.strip()] if path.exists() else []
