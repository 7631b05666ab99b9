"""A recipe-only artifact (the PHI redactor's recipe pack, learned for real) through Predictor.open
and ``kolmbuild run``: verified first, answered by recipes, no model, exit 2 when tampered."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from click.testing import CliRunner
from runtime_helpers import MakeArtifact, tamper_manifest

from kolmbuild.cli.main import cli
from kolmbuild.config.models import RecipesSpec, ShapeSpec, VerifierSpec
from kolmbuild.data import load_examples
from kolmbuild.recipes import learn
from kolmbuild.runtime import Predictor
from kolmbuild.runtime.drift import drift_log_path, read_drift
from kolmbuild.verifier import synthesize

REPO = Path(__file__).resolve().parents[2]
PHI = REPO / "examples" / "phi-redactor"
TASK = {
    "name": "phi-redactor",
    "description": "Replace SSNs, phone numbers, emails and dates with [SSN] [PHONE] [EMAIL] [DATE].",
    "shape": {"input": "text", "output": "text"},
}
# sentences written for this test, not in the examples
NEW = [
    ("Reach Dana at dana.k@example.org or 415-555-0199.", "Reach Dana at [EMAIL] or [PHONE]."),
    ("SSN 123-45-6789 on file since 03/14/2021.", "SSN [SSN] on file since [DATE]."),
]


@pytest.fixture(scope="module")
def recipes_json(tmp_path_factory: pytest.TempPathFactory) -> bytes:
    shape = ShapeSpec()
    train = load_examples(PHI / "train.jsonl", shape)
    heldout = load_examples(PHI / "eval.jsonl", shape)
    verifier = synthesize(train, shape, VerifierSpec(), PHI)
    pack = learn(train, heldout, verifier, RecipesSpec(kinds=["span", "lookup"]), shape)
    return json.dumps(pack.to_json()).encode()


@pytest.fixture
def phi_artifact(make_artifact: MakeArtifact, recipes_json: bytes) -> Path:
    heldout = (PHI / "eval.jsonl").read_bytes()
    return make_artifact("phi.kolm", task=TASK, components={"recipes": recipes_json, "heldout": heldout},
                         target="phi-redactor")


def test_open_answers_unseen_sentences_with_recipes(phi_artifact: Path) -> None:
    with Predictor.open(phi_artifact) as p:
        assert not p.has_model
        preds = p.predict_batch([s for s, _ in NEW])
        single = p.predict(NEW[0][0])
        uncovered = p.predict("nothing to redact here")
    assert [x.output for x in preds] == [want for _, want in NEW]
    assert {x.route for x in preds} == {"recipe"} and single.output == NEW[0][1]
    if uncovered.route == "none":  # a recipe may well cover it (identity); if not it is drift
        assert read_drift(drift_log_path("phi-redactor"))[-1]["input"] == "nothing to redact here"


def test_run_cli_single_and_batch(phi_artifact: Path, tmp_path: Path) -> None:
    runner = CliRunner()
    one = runner.invoke(cli, ["run", str(phi_artifact), NEW[1][0]], catch_exceptions=False)
    assert one.exit_code == 0 and one.stdout == NEW[1][1] + "\n"
    f = tmp_path / "in.jsonl"
    f.write_text("".join(json.dumps({"input": s}) + "\n" for s, _ in NEW * 3))
    many = runner.invoke(cli, ["run", str(phi_artifact), "--file", str(f), "--json"], catch_exceptions=False)
    assert many.exit_code == 0
    rows = [json.loads(line) for line in many.stdout.splitlines()]
    assert [(r["input"], r["output"]) for r in rows] == NEW * 3
    piped = runner.invoke(cli, ["run", str(phi_artifact), "--file", "-"], input=json.dumps(NEW[0][0]) + "\n\n",
                          catch_exceptions=False)
    assert piped.exit_code == 0 and piped.stdout == NEW[0][1] + "\n"


def test_run_refuses_a_tampered_recipe_artifact(phi_artifact: Path) -> None:
    tamper_manifest(phi_artifact, b"phi-redactor", b"phi-redactoR")
    res = CliRunner().invoke(cli, ["run", str(phi_artifact), NEW[0][0]], catch_exceptions=False)
    assert res.exit_code == 2 and "verification failed" in res.stderr and res.stdout == ""


def test_bench_pattern_mode(phi_artifact: Path, tmp_path: Path) -> None:
    f = tmp_path / "in.jsonl"
    f.write_text("".join(json.dumps({"input": s}) + "\n" for s, _ in NEW))
    out = tmp_path / "rec.json"
    res = CliRunner().invoke(cli, ["bench", str(phi_artifact), "--file", str(f), "-n", "2000", "--warmup", "100",
                                   "--out", str(out)], catch_exceptions=False)
    assert res.exit_code == 0, res.output
    rec = json.loads(res.stdout)
    assert rec == json.loads(out.read_text())
    assert rec["mode"] == "pattern" and rec["n"] == 2000 and rec["routes"] == {"recipe": 2000}
    assert 0 < rec["min_us"] <= rec["p50_us"] <= rec["p95_us"] <= rec["p99_us"] <= rec["max_us"]
    assert rec["calls_per_s"] > 1000 and rec["batch_calls_per_s"] > 0


def test_bench_defaults_to_the_shipped_heldout_inputs(phi_artifact: Path) -> None:
    res = CliRunner().invoke(cli, ["bench", str(phi_artifact), "-n", "500", "--warmup", "0"], catch_exceptions=False)
    assert res.exit_code == 0, res.output
    rec = json.loads(res.stdout)
    assert rec["distinct_inputs"] == 60 and rec["routes"] == {"recipe": 500}


def test_bench_out_into_an_impossible_folder_exits_2(phi_artifact: Path, tmp_path: Path) -> None:
    blocker = tmp_path / "a-file"
    blocker.write_text("x")
    res = CliRunner().invoke(cli, ["bench", str(phi_artifact), "-n", "5", "--warmup", "0",
                                   "--out", str(blocker / "rec.json")])
    assert res.exit_code == 2 and not isinstance(res.exception, OSError), res.output
    assert "cannot write the record" in res.output
