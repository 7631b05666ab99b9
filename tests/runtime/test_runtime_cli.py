"""``kolmbuild run``: single input, --file batches in order with --json, bad input → exit 2."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from click.testing import CliRunner
from runtime_helpers import MakeArtifact, tamper_manifest

from kolmbuild.cli.main import cli


@pytest.fixture
def model_artifact(make_artifact: MakeArtifact, smollm2_sha: str) -> Path:
    return make_artifact(base={"name": "smollm2", "sha256": smollm2_sha})


def invoke(*args: str, input: str | None = None):  # noqa: A002
    return CliRunner().invoke(cli, list(args), input=input, catch_exceptions=False)


def test_run_single_input_prints_a_label(model_artifact: Path) -> None:
    res = invoke("run", str(model_artifact), "Loved it, wonderful acting!", "--threads", "1")
    assert res.exit_code == 0, res.output
    assert res.stdout.strip() in ("positive", "negative")


def test_run_file_json_keeps_order(model_artifact: Path, tmp_path: Path) -> None:
    rows = ["Terrible.", "Great!", "Meh, boring and too long."]
    f = tmp_path / "in.jsonl"
    f.write_text("".join(json.dumps({"input": r, "output": "ignored"}) + "\n" for r in rows) + "\n")
    res = invoke("run", str(model_artifact), "--file", str(f), "--json", "--threads", "1")
    assert res.exit_code == 0, res.output
    out = [json.loads(line) for line in res.stdout.splitlines()]
    assert [o["input"] for o in out] == rows
    assert all(o["output"] in ("positive", "negative") and o["route"] == "model" for o in out)


def test_run_bad_jsonl_names_file_and_line(model_artifact: Path, tmp_path: Path) -> None:
    f = tmp_path / "in.jsonl"
    f.write_text('{"input": "ok"}\n{"input": \n')
    res = invoke("run", str(model_artifact), "--file", str(f))
    assert res.exit_code == 2
    assert f"{f}:2: not JSON" in res.stderr
    assert "Traceback" not in res.output


def test_run_missing_input_key(model_artifact: Path, tmp_path: Path) -> None:
    f = tmp_path / "in.jsonl"
    f.write_text('{"text": "ok"}\n')
    res = invoke("run", str(model_artifact), "--file", str(f))
    assert res.exit_code == 2 and f"{f}:1: missing key 'input'" in res.stderr


def test_run_tampered_artifact_exits_2(model_artifact: Path) -> None:
    tamper_manifest(model_artifact, b"Classify", b"Clasify!")
    res = invoke("run", str(model_artifact), "hello")
    assert res.exit_code == 2
    assert "verification failed" in res.stderr


def test_run_not_a_kolm_file(tmp_path: Path) -> None:
    bogus = tmp_path / "x.kolm"
    bogus.write_bytes(b"not a zip at all")
    res = invoke("run", str(bogus), "hello")
    assert res.exit_code == 2 and str(bogus) in res.stderr


def test_run_needs_exactly_one_source(model_artifact: Path) -> None:
    res = invoke("run", str(model_artifact))
    assert res.exit_code == 2 and "either an INPUT" in res.stderr
