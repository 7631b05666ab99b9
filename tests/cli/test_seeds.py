from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

from click.testing import CliRunner

from kolmbuild.cli.main import cli

REPO = Path(__file__).resolve().parents[2]


def _invoke(*args: str):  # noqa: ANN202
    return CliRunner().invoke(cli, list(args), catch_exceptions=False)


def test_validate_reports_rows_and_shape() -> None:
    res = _invoke("seeds", "validate", str(REPO / "examples/phi-redactor/train.jsonl"))
    assert res.exit_code == 0
    assert res.output.strip().endswith("train.jsonl: 200 rows, input text, output text")
    res = _invoke("seeds", "validate", str(REPO / "examples/phi-redactor/eval.jsonl"), "--json")
    doc = json.loads(res.output)
    assert (doc["rows"], doc["shape"], doc["problems"]) == (60, {"input": "text", "output": "text"}, [])


def test_validate_lists_every_bad_line_and_exits_2(tmp_path: Path) -> None:
    f = tmp_path / "bad.jsonl"
    f.write_text('{"input": "a", "output": "b"}\n{"input": "a", "output": "c"}\n\n{"output": "x"}\n{oops\n'
                 '{"input": "q", "output": 3}\n')
    res = _invoke("seeds", "validate", str(f))
    assert res.exit_code == 2
    for line, why in [(2, "duplicate input"), (3, "empty line"), (4, "missing key 'input'"), (5, "not JSON"),
                      (6, "'output' must be a string")]:
        assert f"{f}:{line}: {why}" in res.output
    doc = json.loads(_invoke("seeds", "validate", str(f), "--json").output)
    assert [p["line"] for p in doc["problems"]] == [2, 3, 4, 5, 6] and doc["rows"] == 1


def test_validate_label_and_json_shapes(tmp_path: Path) -> None:
    f = tmp_path / "labels.jsonl"
    f.write_text("".join(json.dumps({"input": f"q{i}", "output": ["yes", "no"][i % 2]}) + "\n" for i in range(8)))
    res = _invoke("seeds", "validate", str(f))
    assert res.exit_code == 0 and "output label (2 labels: no, yes)" in res.output
    res = _invoke("seeds", "validate", str(f), "--shape", "json", "--json")
    doc = json.loads(res.output)
    assert res.exit_code == 2 and len(doc["problems"]) == 8
    assert "must be a JSON object or array" in doc["problems"][0]["reason"]
    empty = tmp_path / "empty.jsonl"
    empty.write_text("")
    assert _invoke("seeds", "validate", str(empty)).exit_code == 2


def test_missing_file_is_a_clean_error_in_a_subprocess(tmp_path: Path) -> None:
    proc = subprocess.run([sys.executable, "-m", "kolmbuild", "seeds", "validate", str(tmp_path / "nope.jsonl")],
                          capture_output=True, text=True, timeout=60)
    assert proc.returncode == 2
    assert "no such file" in proc.stderr and "Traceback" not in proc.stderr


def test_convert_is_attached() -> None:
    res = _invoke("seeds", "--help")
    assert "convert" in res.output and "validate" in res.output
