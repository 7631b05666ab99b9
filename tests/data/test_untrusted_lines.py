"""Examples files are untrusted bytes: every odd line is a located problem, never a traceback or a hang."""

from __future__ import annotations

import json
import os
import tracemalloc
from pathlib import Path

import pytest
from click.testing import CliRunner

from kolmbuild.cli.main import cli
from kolmbuild.config.models import ShapeSpec
from kolmbuild.data import ExamplesInvalid, load_examples, read_jsonl
from kolmbuild.errors import DataError

JSON_SHAPE = ShapeSpec(input="json", output="json")
GOOD = '{"input": {"a": 1}, "output": {"x": 1}}'


def _file(tmp_path: Path, lines: list[str], name: str = "ex.jsonl") -> Path:
    p = tmp_path / name
    p.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return p


def _reasons(path: Path, shape: ShapeSpec = JSON_SHAPE, **kw) -> dict[int, str]:
    with pytest.raises(ExamplesInvalid) as info:
        load_examples(path, shape, **kw)
    assert info.value.exit_code == 2
    return {p.line: p.reason for p in info.value.problems}


@pytest.mark.parametrize(
    ("line", "expected"),
    [
        ('{"input": {"a": "\\ud800"}, "output": {"x": 1}}', "lone surrogate \\ud800"),
        ('{"input": {"\\udfff": 1}, "output": {"x": 1}}', "lone surrogate \\udfff"),
        ('{"input": {"a": 123456789012345678901234567890}, "output": {"x": 1}}', "out of range"),
        ('{"input": {"a": 1' + "0" * 5000 + '}, "output": {"x": 1}}', "out of range"),
        ('{"input": {"a": 1e999}, "output": {"x": 1}}', "out of range"),
        ('{"input": {"a": -Infinity}, "output": {"x": 1}}', "-Infinity is not a JSON number"),
        ('{"input": {"a": 1}, "input": {"a": 2}, "output": {"x": 1}}', "duplicate key 'input'"),
        ('{"input": ' + "[" * 150 + "]" * 150 + ', "output": {"x": 1}}', "nested deeper than 100 levels"),
        ('{"input": ' + "[" * 50_000 + "]" * 50_000 + ', "output": {"x": 1}}', "nested deeper than 100 levels"),
    ],
    ids=["lone-high-surrogate", "lone-low-surrogate-key", "int-over-2^53", "int-5000-digits", "float-overflow",
         "neg-infinity", "duplicate-key", "nesting-150", "nesting-50000"],
)
def test_json_no_canonical_form_can_hold_is_a_located_problem(tmp_path: Path, line: str, expected: str) -> None:
    p = _file(tmp_path, [GOOD, line, '{"input": {"a": 3}, "output": {"x": 3}}'])
    reasons = _reasons(p)
    assert set(reasons) == {2}, reasons
    assert expected in reasons[2]
    with pytest.raises(DataError) as err:
        read_jsonl(p)
    assert f"{p}:2:" in str(err.value) and expected in str(err.value)


def test_a_line_over_the_limit_is_a_problem_and_never_held_in_memory(tmp_path: Path) -> None:
    p = tmp_path / "big.jsonl"
    with p.open("w") as f:
        f.write(GOOD + "\n")
        f.write('{"input": {"a": "' + "x" * 20_000_000 + '"}, "output": {"x": 2}}\n')
        f.write('{"input": {"a": 3}, "output": {"x": 3}}\n')
    tracemalloc.start()
    try:
        reasons = _reasons(p, max_line_bytes=4096)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert set(reasons) == {2}
    assert "line is 20,000,040 bytes, over the limit of 4,096" in reasons[2]
    assert "task.limits.max_example_bytes" in reasons[2]
    assert peak < 4 * 1024**2, f"peak {peak} bytes while skipping a 20 MB line"


def test_the_limit_counts_the_line_without_its_newline(tmp_path: Path) -> None:
    line = '{"input": "' + "y" * 100 + '", "output": "z"}'
    p = tmp_path / "exact.jsonl"
    p.write_bytes(line.encode() + b"\r\n" + line.replace("y", "w").encode())  # last line without newline
    assert len(load_examples(p, ShapeSpec(), max_line_bytes=len(line))) == 2
    reasons = _reasons(p, ShapeSpec(), max_line_bytes=len(line) - 1)
    assert set(reasons) == {1, 2}


@pytest.mark.timeout(20)
def test_a_fifo_is_refused_without_waiting_for_a_writer(tmp_path: Path) -> None:
    fifo = tmp_path / "ex.jsonl"
    os.mkfifo(fifo)
    with pytest.raises(DataError, match=r"ex.jsonl: is a FIFO, expected a JSONL file"):
        load_examples(fifo, ShapeSpec())
    with pytest.raises(DataError, match=r"is a FIFO"):
        read_jsonl(fifo)
    r = CliRunner().invoke(cli, ["seeds", "validate", str(fifo)])
    assert r.exit_code == 2 and "is a FIFO" in r.output and r.exception is None or isinstance(r.exception, SystemExit)


def test_a_device_and_a_folder_are_refused(tmp_path: Path) -> None:
    with pytest.raises(DataError, match="not a regular file"):
        load_examples(Path("/dev/zero"), ShapeSpec())
    with pytest.raises(DataError, match="is a folder"):
        load_examples(tmp_path, ShapeSpec())


def test_line_separators_inside_strings_do_not_split_a_row(tmp_path: Path) -> None:
    rows = [{"input": "a\u2028b\u2029c\x1cd\x85e", "output": "f"}, {"input": "g", "output": "h"}]
    p = tmp_path / "sep.jsonl"
    p.write_bytes(b"".join(json.dumps(r, ensure_ascii=False).encode() + b"\n" for r in rows))
    assert read_jsonl(p) == rows
    assert [e.input for e in load_examples(p, ShapeSpec())] == ["a\u2028b\u2029c\x1cd\x85e", "g"]


def test_a_utf8_bom_is_not_a_bad_first_line_and_bad_utf8_is_located(tmp_path: Path) -> None:
    p = tmp_path / "bom.jsonl"
    p.write_bytes(b'\xef\xbb\xbf{"input": "a", "output": "b"}\n{"input": "\xff", "output": "c"}\n')
    reasons = _reasons(p, ShapeSpec())
    assert set(reasons) == {2} and "not UTF-8" in reasons[2]


def test_an_empty_file_says_so_without_a_line_zero(tmp_path: Path) -> None:
    empty = tmp_path / "empty.jsonl"
    empty.write_text("")
    r = CliRunner().invoke(cli, ["seeds", "validate", str(empty)])
    assert r.exit_code == 2
    assert f"{empty}: no examples (the file is empty)" in r.output
    assert ":0" not in r.output and "bad line" not in r.output
    with pytest.raises(DataError, match=r"empty.jsonl: no examples \(the file is empty\)"):
        load_examples(empty, ShapeSpec())
    r = CliRunner().invoke(cli, ["seeds", "validate", "--json", str(empty)])
    assert r.exit_code == 2 and json.loads(r.output)["error"] == "no examples (the file is empty)"


@pytest.mark.timeout(60)
def test_a_fifo_as_the_examples_of_a_build_is_refused_without_hanging(shell_project) -> None:
    examples = shell_project.root / "data" / "train.jsonl"
    examples.unlink()
    os.mkfifo(examples)
    r = shell_project.kolmbuild("status")  # the planner hashes task.examples before any stage runs
    assert r.returncode == 2, r.stderr
    assert f"task.examples: {examples}: not a regular file (a FIFO" in r.stderr and "Traceback" not in r.stderr
