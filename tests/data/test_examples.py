from __future__ import annotations

import json
from pathlib import Path

import pytest

from kolmbuild.config.models import ShapeSpec
from kolmbuild.data import (
    Example,
    ExamplesInvalid,
    infer_shape,
    load_examples,
    parse_lines,
    read_jsonl,
    seeded_split,
    write_jsonl,
)
from kolmbuild.errors import DataError, UserInputError

TEXT = ShapeSpec()


def _file(tmp_path: Path, lines: list[str], name: str = "ex.jsonl") -> Path:
    p = tmp_path / name
    p.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return p


def test_good_file_loads_with_positions_as_ids(tmp_path: Path) -> None:
    p = _file(tmp_path, ['{"input": "a", "output": "b"}', '{"input": "c", "output": "d", "note": 1}'])
    assert load_examples(p, TEXT) == [Example(0, "a", "b"), Example(1, "c", "d")]


def test_every_bad_line_is_reported_with_its_number_and_why(tmp_path: Path) -> None:
    p = _file(tmp_path, [
        '{"input": "a", "output": "b"}',         # 1 ok
        '{"input": "a", "output": "x"}',         # 2 duplicate of 1
        'not json',                               # 3
        '',                                       # 4 empty line
        '{"input": "c"}',                         # 5 missing output
        '{"input": 3, "output": "d"}',            # 6 wrong type
        '{"input": "e", "output": "   "}',        # 7 empty output
        '[1, 2]',                                 # 8 not an object
        '{"input": "f", "output": "g"}',          # 9 ok
    ])
    with pytest.raises(ExamplesInvalid) as info:
        load_examples(p, TEXT)
    err = info.value
    assert isinstance(err, DataError) and isinstance(err, UserInputError) and err.exit_code == 2
    by_line = {pr.line: pr.reason for pr in err.problems}
    assert sorted(by_line) == [2, 3, 4, 5, 6, 7, 8]
    assert "duplicate input" in by_line[2] and "line 1" in by_line[2]
    assert by_line[3].startswith("not JSON")
    assert by_line[4] == "empty line"
    assert "missing key 'output'" in by_line[5]
    assert "'input' must be a string" in by_line[6] and "a number" in by_line[6]
    assert "empty 'output'" in by_line[7]
    assert "JSON object" in by_line[8] and "array" in by_line[8]
    assert f"{p}:3:" in err.message and f"{p}:8:" in err.message


def test_shape_decides_types_and_labels(tmp_path: Path) -> None:
    p = _file(tmp_path, [
        '{"input": {"q": 1}, "output": "pos"}',
        '{"input": {"q": 2}, "output": "maybe"}',
        '{"input": "text", "output": "neg"}',
    ])
    shape = ShapeSpec(input="json", output="label", labels=["pos", "neg"])
    with pytest.raises(ExamplesInvalid) as info:
        load_examples(p, shape)
    reasons = {pr.line: pr.reason for pr in info.value.problems}
    assert sorted(reasons) == [2, 3]
    assert "'maybe' is not one of the task's labels" in reasons[2]
    assert "'input' must be a JSON object or array" in reasons[3]
    good = _file(tmp_path, ['{"input": {"a": 1}, "output": {"b": [1]}}'], "j.jsonl")
    assert load_examples(good, ShapeSpec(input="json", output="json"))[0].output == {"b": [1]}


def test_ids_from_the_file_are_kept_and_must_be_unique(tmp_path: Path) -> None:
    p = _file(tmp_path, ['{"id": 7, "input": "a", "output": "b"}', '{"id": 7, "input": "c", "output": "d"}',
                         '{"id": "x", "input": "e", "output": "f"}'])
    with pytest.raises(ExamplesInvalid) as info:
        load_examples(p, TEXT)
    reasons = {pr.line: pr.reason for pr in info.value.problems}
    assert "duplicate id 7" in reasons[2] and "'id' must be a non-negative integer" in reasons[3]


def test_missing_empty_and_non_utf8_files(tmp_path: Path) -> None:
    with pytest.raises(DataError, match="no such file"):
        load_examples(tmp_path / "nope.jsonl", TEXT)
    (tmp_path / "e.jsonl").write_text("")
    with pytest.raises(DataError, match="no examples"):
        load_examples(tmp_path / "e.jsonl", TEXT)
    (tmp_path / "b.jsonl").write_bytes(b'{"input": "\xff"}\n')
    with pytest.raises(DataError, match="not UTF-8"):
        load_examples(tmp_path / "b.jsonl", TEXT)


def test_many_problems_are_all_kept_but_the_message_is_bounded(tmp_path: Path) -> None:
    p = _file(tmp_path, ["nope"] * 45)
    with pytest.raises(ExamplesInvalid) as info:
        load_examples(p, TEXT)
    assert len(info.value.problems) == 45
    assert "and 25 more" in info.value.message


def test_canonical_jsonl_roundtrip_and_atomic_write(tmp_path: Path) -> None:
    rows = [{"output": "é", "input": {"b": 1, "a": 2.0}, "id": 0}]
    out = write_jsonl(tmp_path / "x" / "r.jsonl", rows)
    assert out.read_bytes() == '{"id":0,"input":{"a":2,"b":1},"output":"é"}\n'.encode()
    assert read_jsonl(out) == [{"id": 0, "input": {"a": 2, "b": 1}, "output": "é"}]
    assert [f.name for f in out.parent.iterdir()] == ["r.jsonl"]
    with pytest.raises(TypeError):
        write_jsonl(out, [{"bad": object()}])
    assert read_jsonl(out)[0]["id"] == 0  # the old file survives a failed write
    assert [f.name for f in out.parent.iterdir()] == ["r.jsonl"]
    (tmp_path / "bad.jsonl").write_text('{"a": 1}\n{oops\n')
    with pytest.raises(DataError, match=r"bad.jsonl:2: not JSON"):
        read_jsonl(tmp_path / "bad.jsonl")


def test_seeded_split_is_deterministic_and_stable_under_additions() -> None:
    ex = [Example(i, f"sentence {i}", str(i)) for i in range(100)]
    train, held = seeded_split(ex, 0.2, seed=3)
    assert len(held) == 20 and len(train) == 80
    assert {e.id for e in train}.isdisjoint({e.id for e in held})
    assert seeded_split(list(reversed(ex)), 0.2, 3)[1] == sorted(held, key=lambda e: -e.id)
    assert seeded_split(ex, 0.2, seed=4)[1] != held
    more = [*ex, *(Example(i, f"sentence {i}", str(i)) for i in range(100, 110))]
    _, held_more = seeded_split(more, 0.2, 3)
    # both held-out sets are prefixes of one ranking: adding rows never reshuffles the others
    old_more, old = {e.id for e in held_more if e.id < 100}, {e.id for e in held}
    assert old_more <= old or old <= old_more
    assert len(old_more ^ old) <= 2
    assert seeded_split(ex[:1], 0.5, 0) == (ex[:1], [])
    assert len(seeded_split(ex[:2], 0.01, 0)[1]) == 1


def test_infer_shape() -> None:
    rows, _ = parse_lines("\n".join(json.dumps({"input": f"q{i}", "output": "yes" if i % 2 else "no"})
                                    for i in range(10)))
    shape = infer_shape(rows)
    assert shape.output == "label" and shape.labels == ["no", "yes"]
    rows, _ = parse_lines('{"input": {"a": 1}, "output": {"x": 1}}\n')
    assert infer_shape(rows).model_dump()["input"] == "json" and infer_shape(rows).output == "json"
    rows, _ = parse_lines("\n".join(json.dumps({"input": f"q{i}", "output": f"answer {i}"}) for i in range(10)))
    assert infer_shape(rows).output == "text"


def test_nan_and_infinity_are_bad_lines_not_tracebacks(tmp_path: Path) -> None:
    shape = ShapeSpec(input="json", output="json")
    p = _file(tmp_path, ['{"input": {"a": NaN}, "output": {"x": 1}}', '{"input": {"a": 2}, "output": {"x": Infinity}}',
                         '{"input": {"a": 3}, "output": {"x": 3}}'])
    with pytest.raises(ExamplesInvalid) as info:
        load_examples(p, shape)
    reasons = {pr.line: pr.reason for pr in info.value.problems}
    assert set(reasons) == {1, 2}
    assert "NaN" in reasons[1] and "Infinity" in reasons[2]
    with pytest.raises(DataError, match=r"ex.jsonl:1: not JSON: NaN"):
        read_jsonl(p)
