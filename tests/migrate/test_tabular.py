from __future__ import annotations

import json
from pathlib import Path

import click
import pytest
from click.testing import CliRunner

from kolmbuild.errors import DataError, KolmError
from kolmbuild.migrate import convert_table, read_table


def _run_convert(*args: str):
    from kolmbuild.cli.seeds_convert import convert

    @click.group()
    def seeds() -> None:
        pass

    seeds.add_command(convert)
    return CliRunner().invoke(seeds, ["convert", *args])


def test_csv_lines_and_ragged_row(tmp_path: Path, write_file) -> None:
    write = write_file
    t = read_table(write(tmp_path / "a.csv", 'q,a\n"multi\nline",x\n\ny,z\n'))
    assert [r.line for r in t.rows] == [2, 5]
    bad = write(tmp_path / "b.csv", "q,a\n1,2\n3,4,5\n")
    with pytest.raises(DataError, match=r"b.csv:3: 3 fields, the header has 2"):
        read_table(bad)
    with pytest.raises(DataError, match="column 'q' appears twice"):
        read_table(write(tmp_path / "c.csv", "q,q\n1,2\n"))


def test_convert_csv_multi_column_input(tmp_path: Path, write_file) -> None:
    write = write_file
    src = write(
        tmp_path / "faq.csv", "topic,question,answer\nbilling,How to pay?,By card\nx,,y\nhr,Leave?,Ask HR\n"
    )
    dest, conv = convert_table(src, ["topic", "question"], ["answer"])
    assert dest == tmp_path / "faq.jsonl"
    lines = [json.loads(x) for x in dest.read_text().splitlines()]
    assert lines == [
        {"input": {"topic": "billing", "question": "How to pay?"}, "output": "By card"},
        {"input": {"topic": "hr", "question": "Leave?"}, "output": "Ask HR"},
    ]
    assert [(s.line, s.reason) for s in conv.skipped] == [(3, "empty 'question'")]


def test_convert_parquet_keeps_types(tmp_path: Path) -> None:
    pa = pytest.importorskip("pyarrow")
    pq = pytest.importorskip("pyarrow.parquet")
    src = tmp_path / "t.parquet"
    pq.write_table(pa.table({"x": ["a", "b"], "y": [{"n": 1}, None]}), src)
    dest, conv = convert_table(src, ["x"], ["y"], tmp_path / "out.jsonl")
    assert [json.loads(x) for x in dest.read_text().splitlines()] == [{"input": "a", "output": {"n": 1}}]
    assert conv.skipped[0].line == 2


def test_convert_errors(tmp_path: Path, write_file) -> None:
    write = write_file
    with pytest.raises(DataError, match="no column 'nope' for the input"):
        convert_table(write(tmp_path / "a.csv", "q,a\n1,2\n"), ["nope"], ["a"])
    with pytest.raises(DataError, match="no usable rows"):
        convert_table(write(tmp_path / "e.csv", "q,a\n,2\n"), ["q"], ["a"])
    assert not (tmp_path / "e.jsonl").exists()
    with pytest.raises(KolmError, match="not a CSV or Parquet"):
        convert_table(write(tmp_path / "x.txt", "hi"), ["q"], ["a"])


def test_seeds_convert_command(tmp_path: Path, write_file) -> None:
    write = write_file
    src = write(tmp_path / "d.csv", "q,a\nhello,world\n,skip\n")
    r = _run_convert(str(src), "--input", "q", "--output", "a", "--out", str(tmp_path / "s.jsonl"), "--json")
    assert r.exit_code == 0, r.output
    assert json.loads(r.output) == {"out": str(tmp_path / "s.jsonl"), "written": 1,
                                    "skipped": [{"line": 3, "reason": "empty 'q'"}]}  # fmt: skip
    r = _run_convert(str(src), "--input", "q", "--output", "a")
    assert "wrote 1 examples" in r.output and "d.csv:line 3: empty 'q'" in r.output
