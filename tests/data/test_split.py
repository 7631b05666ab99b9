"""The three-way split of gold rows: seeded by content, stable when rows are added elsewhere."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from pydantic import ValidationError

from kolmbuild.config.models import SplitSpec
from kolmbuild.data import Example, id_ranges, three_way_split
from kolmbuild.data.split import position


def _rows(texts: list[str], start: int = 0) -> list[Example]:
    return [Example(start + i, t, t.upper()) for i, t in enumerate(texts)]


def _where(split) -> dict[str, str]:  # type: ignore[no-untyped-def]
    return {e.input: name for name in ("train", "select", "test") for e in split.part(name)}


def test_shares_are_close_to_the_asked_ones_and_parts_are_disjoint() -> None:
    rows = _rows([f"message number {i}" for i in range(2000)])
    s = three_way_split(rows, 0.2, 0.1, seed=0)
    assert len(s.train) + len(s.select) + len(s.test) == 2000
    assert 340 <= len(s.test) <= 460 and 150 <= len(s.select) <= 250
    assert not s.borrowed
    assert [e.id for e in s.test] == sorted(e.id for e in s.test)  # original order


def test_the_seed_and_nothing_else_decides() -> None:
    rows = _rows([f"m{i}" for i in range(300)])
    a, b = three_way_split(rows, 0.2, 0.2, 7), three_way_split(list(reversed(rows)), 0.2, 0.2, 7)
    assert _where(a) == _where(b)
    assert _where(three_way_split(rows, 0.2, 0.2, 8)) != _where(a)


@settings(max_examples=60, deadline=None)
@given(
    base=st.lists(st.text(min_size=1, max_size=12), min_size=20, max_size=60, unique=True),
    extra=st.lists(st.text(min_size=1, max_size=12), max_size=40, unique=True),
    seed=st.integers(0, 5),
    with_eval=st.booleans(),
)
def test_adding_rows_elsewhere_never_moves_a_row(base: list[str], extra: list[str], seed: int, with_eval: bool) -> None:
    extra = [t for t in extra if t not in base]
    test_share = 0.0 if with_eval else 0.25
    before = three_way_split(_rows(base), test_share, 0.25, seed)
    after = three_way_split(_rows(extra[: len(extra) // 2] + base + extra[len(extra) // 2 :]), test_share, 0.25, seed)
    if before.borrowed or after.borrowed:
        return  # a part had to borrow a row: only tiny sets, covered below
    was, now = _where(before), _where(after)
    assert {t: now[t] for t in base} == was


def test_tiny_sets_borrow_the_nearest_row_and_keep_one_to_train() -> None:
    rows = _rows(["a", "b", "c"])
    s = three_way_split(rows, 0.2, 0.2, 0)
    assert len(s.train) >= 1 and s.test and s.select
    ordered = sorted(rows, key=lambda e: position(0, e))
    if "test" in s.borrowed:
        assert s.test[0] == ordered[0]
    two = three_way_split(_rows(["a", "b"]), 0.2, 0.2, 0)
    assert len(two.train) >= 1 and len(two.train) + len(two.select) + len(two.test) == 2
    for seed in range(20):  # whatever the hashes say, a set of three fills every part
        s = three_way_split(rows, 0.3, 0.3, seed)
        assert (len(s.train), len(s.select), len(s.test)) == (1, 1, 1)


def test_id_ranges() -> None:
    assert id_ranges([5, 0, 1, 2, 9, 8]) == [[0, 2], [5, 5], [8, 9]]
    assert id_ranges([]) == []


def test_split_settings_must_leave_rows_to_train_on() -> None:
    assert SplitSpec().model_dump() == {"holdout": 0.2, "select": 0.2, "seed": 0}
    with pytest.raises(ValidationError, match="must leave rows to train on"):
        SplitSpec(holdout=0.5, select=0.5)
