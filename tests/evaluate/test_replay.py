"""``kolmbuild replay``: an artifact re-runs its shipped test rows and compares each output with the
hash its build recorded; any difference exits 1 naming the rows."""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner

from kolmbuild.artifact import open_artifact
from kolmbuild.cli.main import cli
from kolmbuild.config.models import TaskSpec
from kolmbuild.evaluate.cases import Case, run_cases
from kolmbuild.evaluate.replay import HASH, replay_record, value_sha
from kolmbuild.models import bundled_smollm2
from kolmbuild.models.resolve import file_sha256
from kolmbuild.recipes.pack import RecipePack
from kolmbuild.runtime import Predictor, RuntimeOptions
from tests.evaluate.conftest import MakeArtifact
from tests.stages.loop_project import LoopProject, ScriptedTeacher, Serving


@dataclass(frozen=True)
class Built:
    artifact: Path
    pubkey: Path  # the build's signing key lives in the module's config folder, not the test's


@pytest.fixture(scope="module")
def built(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Built]:
    """A real build of the router target (recipes only), once for the module."""
    config = tmp_path_factory.mktemp("cfg")
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("KOLM_CONFIG_DIR", str(config))
        fake = ScriptedTeacher(tokens_in=60, tokens_out=2)
        with Serving(fake) as serving:
            p = LoopProject(tmp_path_factory.mktemp("replay") / "proj", serving.url, n_unlabeled=40, n_test=30)
            fake.answer = p.answer()
            res = p.kolm("router")
            assert res.exit_code == 0, res.output
    yield Built(p.artifact("router"), config / "keys" / "kolm-signing.pub")


def _replay(art: Path | Built, *extra: str) -> Any:
    if isinstance(art, Built):
        return CliRunner().invoke(cli, ["replay", str(art.artifact), "--pubkey", str(art.pubkey), *extra])
    return CliRunner().invoke(cli, ["replay", str(art), *extra])


def test_replay_passes_on_a_fresh_build(built: Built) -> None:
    with open_artifact(built.artifact, verify=False) as art:
        receipt = next(r for r in art.manifest["receipts"] if r["stage"] == "evaluate")
        shipped = [json.loads(line) for line in art.read("heldout").decode().splitlines()]
    rows = receipt["metrics"]["replay"]["rows"]
    assert receipt["metrics"]["replay"]["hash"] == HASH and len(rows) == len(shipped) == 30
    assert [r["id"] for r in rows] == [r["id"] for r in shipped]
    assert all(r["input_sha"] == value_sha(s["input"]) for r, s in zip(rows, shipped, strict=True))
    res = _replay(built, "--json")
    assert res.exit_code == 0, res.output
    doc = json.loads(res.output)
    assert (doc["kind"], doc["rows"], doc["same"], doc["ok"], doc["differences"]) == ("kolm-replay", 30, 30, True, [])


def test_replay_fails_naming_the_rows_whose_behaviour_changed(built: Built, monkeypatch: pytest.MonkeyPatch) -> None:
    """The same signed artifact, a runtime that answers one test input differently (as a changed
    library or machine would): exit 1, and the row is named."""
    with open_artifact(built.artifact, verify=False) as art:
        shipped = [json.loads(line) for line in art.read("heldout").decode().splitlines()]
    victim = shipped[7]
    real = RecipePack.answer

    def changed(self: RecipePack, value: Any) -> Any:
        out = real(self, value)
        return ("billing" if out != "billing" else "shipping") if value == victim["input"] else out

    monkeypatch.setattr(RecipePack, "answer", changed)
    res = _replay(built)
    assert res.exit_code == 1
    assert f"row {victim['id']}: output differs" in res.output
    assert f"1 test row(s) differ from the build: {victim['id']}" in res.output
    doc = json.loads(_replay(built, "--json").stdout.split("\nkolmbuild: error")[0])
    assert doc["ok"] is False and [d["id"] for d in doc["differences"]] == [victim["id"]]
    assert doc["same"] == 29


def test_an_artifact_without_replay_hashes_or_a_changed_test_row(make_artifact: MakeArtifact) -> None:
    heldout = b'{"id":0,"input":"call 555-0100","output":"call [PHONE]"}\n'
    old = make_artifact("old.kolm", components={"heldout": heldout})
    res = _replay(old)
    assert res.exit_code == 2 and "no evaluate receipt" in res.output and "Traceback" not in res.output
    receipt = {"stage": "evaluate", "version": 3, "key": "k", "outputs": {}, "metrics": {
        "replay": {"hash": HASH, "rows": [{"id": 0, "input_sha": value_sha("call 555-0199"), "output_sha": value_sha(None),
                                           "route": "none"}]}}}  # fmt: skip
    from kolmbuild.artifact import write_artifact

    dest = old.with_name("moved.kolm")
    write_artifact(dest, target="phones", version="0.1.0", task=TaskSpec(name="p", examples="x").model_dump(by_alias=True),
                   components={"heldout": heldout}, receipts=[receipt], toolchain_info={})  # fmt: skip
    res = _replay(dest)
    assert res.exit_code == 1 and "row 0: input changed" in res.output


def test_the_model_route_replays_the_same(make_artifact: MakeArtifact, tmp_path: Path) -> None:
    """llama.cpp answers (greedy, seeded, the evaluate stage's options) are reproducible: the hashes
    recorded from one run match a replay in a fresh runtime."""
    task = TaskSpec(name="sentiment", description="Is the review positive or negative?", examples="x",
                    shape={"input": "text", "output": "label", "labels": ["positive", "negative"], "max_output_tokens": 4},
                    ).model_dump(mode="json", by_alias=True)  # fmt: skip
    heldout = b"".join(json.dumps({"id": i, "input": t, "output": "positive"}).encode() + b"\n"
                       for i, t in enumerate(["I adore it", "Broke in a day", "Fine value"]))  # fmt: skip
    base = {"name": "smollm2", "sha256": file_sha256(bundled_smollm2())}
    first = make_artifact("first.kolm", components={"heldout": heldout}, task=task, base=base)
    with Predictor.open(first, options=RuntimeOptions(), drift=False) as predictor:
        cases = [Case(i, json.loads(line)["input"], "positive") for i, line in enumerate(heldout.splitlines())]
        results = run_cases(predictor.predict, lambda i, o, r: True, cases)
    assert {r.route for r in results} == {"model"}
    record = replay_record(results)
    from kolmbuild.artifact import write_artifact

    dest = tmp_path / "model.kolm"
    write_artifact(dest, target="sentiment", version="0.1.0", task=task, components={"heldout": heldout}, base=base,
                   receipts=[{"stage": "evaluate", "version": 3, "key": "k", "outputs": {}, "metrics": {"replay": record}}],
                   toolchain_info={})  # fmt: skip
    res = _replay(dest, "--json")
    assert res.exit_code == 0, res.output
    assert json.loads(res.output)["same"] == 3
