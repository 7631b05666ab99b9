"""Fuzz the examples readers: arbitrary bytes and near-valid JSON lines are examples or located
problems (a DataError, exit 2), never another exception."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from kolmbuild.config.models import ShapeSpec
from kolmbuild.data import load_examples, read_jsonl
from kolmbuild.errors import DataError

from .conftest import TIMEOUT, fuzz, invoke

SHAPES = [ShapeSpec(), ShapeSpec(input="json", output="json"), ShapeSpec(output="label", labels=["yes", "no"])]

scalars = st.one_of(
    st.none(), st.booleans(), st.integers(), st.floats(allow_nan=True, allow_infinity=True),
    st.text(max_size=20), st.sampled_from(["yes", "no", "", " "]),
)
json_values = st.recursive(scalars, lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=6), inner, max_size=4), max_leaves=12)
rows = st.dictionaries(st.sampled_from(["input", "output", "id", "note", ""]), json_values, max_size=4)


def _row_text(row: dict) -> str:
    # json.dumps writes NaN/Infinity and huge ints as Python does: exactly the untrusted edge cases
    return json.dumps(row, ensure_ascii=False)


nasty_fragments = st.sampled_from([
    "NaN", "-Infinity", "1e999", "9" * 400, '"\\ud800"', '"\\udfff\\ud800"', "[" * 200, "{" * 50, "\x00", "\ufeff",
    '"\\u0000"', "\u2028", "\r", "\x1b[2J", '{"input": "a", "input": "b", "output": "c"}', "",
])

lines = st.one_of(
    rows.map(_row_text),
    st.text(max_size=60),
    st.tuples(rows.map(_row_text), nasty_fragments, st.integers(0, 40)).map(lambda t: t[0][: t[2]] + t[1] + t[0][t[2]:]),
    nasty_fragments,
)
files = st.one_of(
    st.lists(lines, max_size=8).map(lambda ls: "\n".join(ls).encode("utf-8", "surrogatepass")),
    st.binary(max_size=300),
)


@pytest.mark.timeout(TIMEOUT)
@fuzz(300)
@given(data=files, shape=st.sampled_from(SHAPES), limit=st.sampled_from([64, 300, 1 << 20]))
def test_examples_are_loaded_or_refused_with_a_located_data_error(tmp_path_factory, data: bytes, shape: ShapeSpec, limit: int) -> None:
    path = Path(tmp_path_factory.mktemp("fuzz")) / "ex.jsonl"
    path.write_bytes(data)
    try:
        got = load_examples(path, shape, limit)
    except DataError as exc:
        assert exc.exit_code == 2 and str(path) in str(exc)
    else:
        assert got
    try:
        read_jsonl(path)
    except DataError as exc:
        assert str(path) in str(exc)


@pytest.mark.timeout(TIMEOUT)
@fuzz(60)
@given(data=files)
def test_seeds_validate_exits_0_or_2(tmp_path_factory, data: bytes) -> None:
    path = Path(tmp_path_factory.mktemp("fuzz")) / "ex.jsonl"
    path.write_bytes(data)
    invoke("seeds", "validate", str(path))
    r = invoke("seeds", "validate", "--json", str(path))
    json.loads(r.stdout)

