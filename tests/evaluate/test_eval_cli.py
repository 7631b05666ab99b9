"""`kolmbuild eval`: re-score an artifact or an endpoint; kolm-eval records; bad input exits 2."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from click.testing import CliRunner

from kolmbuild.cli.main import cli
from kolmbuild.compare.records import load_eval, parse_eval
from tests.evaluate.conftest import TEXT_TASK, write_examples

PHONES = [(f"call {i} at 555-01{i:02d}", f"call {i} at [PHONE]") for i in range(6)]


def invoke(*args: str):
    return CliRunner().invoke(cli, list(args), catch_exceptions=False)


def test_an_artifact_that_answers_nothing_scores_low_and_check_fails(tmp_path: Path, make_artifact) -> None:
    art = make_artifact()  # a verifier but no recipes and no model: every case goes unanswered
    ex = write_examples(tmp_path / "ex.jsonl", PHONES)
    r = invoke("eval", str(art), "--examples", str(ex), "--json")
    assert r.exit_code == 0, r.output
    rec = parse_eval(json.loads(r.stdout), source="stdout")
    assert rec.summary.n == 6 and rec.summary.passed == 0
    assert {c.route for c in rec.cases} == {"none"}
    ks = json.loads(r.stdout)["kscore"]
    assert ks["terms"] == {"A": 0.0, "S": 1.0, "L": 1.0, "C": 1.0, "V": 0.0}
    assert ks["K"] == 0.45 and ks["passed"] is False
    assert [s["key"] for s in ks["shortfalls"]] == ["K_min", "A", "V"]

    human = invoke("eval", str(art), "--examples", str(ex))
    assert human.exit_code == 0
    assert "passed 0 (0.0%)" in human.stdout and "FAILED" in human.stdout and "A (accuracy)" in human.stdout

    checked = CliRunner().invoke(cli, ["eval", str(art), "--examples", str(ex), "--check"])
    assert checked.exit_code == 1
    assert "below its gate" in checked.stderr and "A (accuracy) 0.0000" in checked.stderr
    assert "Traceback" not in checked.output


def test_gates_option_overrides_the_manifest_gate(tmp_path: Path, make_artifact) -> None:
    art = make_artifact()
    ex = write_examples(tmp_path / "ex.jsonl", PHONES)
    r = invoke("eval", str(art), "--examples", str(ex), "--json", "--gates", "lenient")  # built-in K_min 0.30
    assert json.loads(r.stdout)["kscore"]["gate"]["K_min"] == 0.3
    assert json.loads(r.stdout)["kscore"]["passed"] is True
    own = tmp_path / "mine.yaml"
    own.write_text("K_min: 0.2\nsize_mb_max: 0.000001\n")
    r = invoke("eval", str(art), "--examples", str(ex), "--json", "--gates", str(own), "-o", str(tmp_path / "rec.json"))
    ks = json.loads(r.stdout)["kscore"]
    assert [s["key"] for s in ks["shortfalls"]] == ["size_mb_max"]
    assert load_eval(tmp_path / "rec.json").summary.n == 6  # -o wrote the same record


def test_bad_input_exits_2_naming_the_file(tmp_path: Path, make_artifact) -> None:
    art = make_artifact()
    ex = write_examples(tmp_path / "ex.jsonl", PHONES)
    bad = tmp_path / "bad.jsonl"
    bad.write_text('{"input": "a", "output": "b"}\nnot json\n{"input": "c"}\n')
    junk = tmp_path / "junk.kolm"
    junk.write_bytes(b"PK\x03\x04 not really a zip")
    gate = tmp_path / "gate.yaml"
    gate.write_text("K_min: 2.0\n")
    binary_gate = tmp_path / "binary.yaml"
    binary_gate.write_bytes(b"\xff\xfe K_min: 1\n")
    cases = [
        (["eval", str(art), "--examples", str(tmp_path / "missing.jsonl")], "missing.jsonl: no such examples file"),
        (["eval", str(art), "--examples", str(bad)], "bad.jsonl:2"),
        (["eval", str(tmp_path / "nope.kolm"), "--examples", str(ex)], "nope.kolm: no such .kolm file"),
        (["eval", str(junk), "--examples", str(ex)], "junk.kolm"),
        (["eval", str(art), "--examples", str(ex), "--gates", "nosuch"], "--gates nosuch: no such gate"),
        (["eval", str(art), "--examples", str(ex), "--gates", str(gate)], "gate.yaml: gates.K_min"),
        (["eval", str(art), "--examples", str(ex), "--gates", str(binary_gate)], "binary.yaml: not UTF-8"),
        (["eval", "--examples", str(ex)], "give a .kolm file to score, or --endpoint URL"),
        (["eval", str(art), "--examples", str(ex), "-o", str(ex / "rec.json")], "cannot write the record"),
        (["eval", str(art), "--examples", str(ex), "--show", "-1"], "--show"),
        (["eval", "--endpoint", "notaurl", "--examples", str(ex)], "--endpoint notaurl: not an http(s) URL"),
        (["eval", "--endpoint", "ftp://host/v1", "--examples", str(ex)], "not an http(s) URL"),
    ]
    for args, needle in cases:
        r = CliRunner().invoke(cli, args)
        assert r.exit_code == 2, (args, r.output)
        assert needle in r.stderr, (needle, r.stderr)
        assert "Traceback" not in r.output
    assert not (tmp_path / "rec.json").exists()


def test_endpoint_scored_with_the_artifacts_verifier(tmp_path: Path, make_artifact, fake_openai) -> None:
    url, handler = fake_openai
    handler.answers.update({PHONES[0][0]: PHONES[0][1], PHONES[1][0]: PHONES[1][1] + "  ", PHONES[2][0]: "call 2"})
    ex = write_examples(tmp_path / "ex.jsonl", PHONES[:3])
    art = make_artifact()
    r = invoke("eval", str(art), "--endpoint", url, "--examples", str(ex), "--json")
    assert r.exit_code == 0, r.output
    rec = parse_eval(json.loads(r.stdout), source="stdout")
    assert rec.subject == f"{url} model=fake-1"
    assert [c.passed for c in rec.cases] == [True, True, False]  # exact mode ignores surrounding spaces
    assert rec.summary.passed == 2
    assert handler.seen and handler.seen[0]["model"] == "fake-1"
    human = invoke("eval", "--endpoint", url, "--examples", str(ex), "--model", "fake-1")
    assert human.exit_code == 0 and "passed 2 (66.7%)" in human.stdout
    # the artifact's record and the endpoint's compare case by case
    (tmp_path / "b.json").write_text(r.stdout)
    assert invoke("eval", str(art), "--examples", str(ex), "-o", str(tmp_path / "a.json")).exit_code == 0
    cmp = invoke("compare", str(tmp_path / "a.json"), str(tmp_path / "b.json"), "--json")
    assert cmp.exit_code == 0, cmp.output
    out = json.loads(cmp.stdout)
    assert out["matched"] == 3 and len(out["fixed"]) == 2 and not out["regressed"]


def test_endpoint_refuses_gate_options(tmp_path: Path, fake_openai) -> None:
    url, _ = fake_openai
    ex = write_examples(tmp_path / "ex.jsonl", PHONES[:1])
    r = CliRunner().invoke(cli, ["eval", "--endpoint", url, "--examples", str(ex), "--check"])
    assert r.exit_code == 2 and "an endpoint has no K-score" in r.stderr



@pytest.mark.slow
def test_a_model_artifact_is_scored_with_its_base_in_the_footprint(tmp_path: Path, make_artifact) -> None:
    """No recipes, a base named in the manifest: the runtime answers with the bundled SmolLM2."""
    pytest.importorskip("llama_cpp")
    from kolmbuild.models.resolve import bundled_smollm2, file_sha256

    gguf = bundled_smollm2()
    task = dict(TEXT_TASK, shape=dict(TEXT_TASK["shape"], max_output_tokens=8))
    art = make_artifact(task=task, base={"name": "smollm2", "sha256": file_sha256(gguf)})
    ex = write_examples(tmp_path / "ex.jsonl", PHONES[:2])
    r = invoke("eval", str(art), "--examples", str(ex), "--json")
    assert r.exit_code == 0, r.output
    doc = json.loads(r.stdout)
    assert {c["route"] for c in doc["cases"]} == {"model"}
    ks = doc["kscore"]
    assert ks["size"]["external_bytes"] == gguf.stat().st_size  # the base the artifact needs, not ships
    assert 0.4 < ks["terms"]["S"] < 0.5
    assert ks["latency"]["p50_ms"] > 10  # a model call on the reference machine, not a recipe's 0.01 ms


def test_eval_as_a_subprocess(tmp_path: Path, make_artifact) -> None:
    """The installed entry point: JSON on stdout, errors on stderr with exit 2, no traceback."""
    import subprocess
    import sys

    art = make_artifact()
    ex = write_examples(tmp_path / "ex.jsonl", PHONES[:2])
    ok = subprocess.run([sys.executable, "-m", "kolmbuild", "eval", str(art), "-e", str(ex), "--json"],
                        capture_output=True, text=True, timeout=120)  # fmt: skip
    assert ok.returncode == 0, ok.stderr
    assert parse_eval(json.loads(ok.stdout), source="stdout").summary.n == 2
    bad = subprocess.run([sys.executable, "-m", "kolmbuild", "eval", str(art), "-e", str(tmp_path / "none.jsonl")],
                         capture_output=True, text=True, timeout=120)  # fmt: skip
    assert bad.returncode == 2 and "none.jsonl: no such examples file" in bad.stderr
    assert "Traceback" not in bad.stderr and bad.stdout == ""
