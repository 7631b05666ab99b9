"""Bounded work in decompose (issue 16, item 6): no quadratic pass over unbounded text. A long
example is left out of alignment (difflib never sees it), readings are found without regex
backtracking, drafts and classifier features read a bounded part: checked by the work difflib is
given and by the peak of Python allocations, not by time (bench/decompose_bound.py measures it)."""

from __future__ import annotations

import re
import tracemalloc
from collections import Counter
from typing import Any

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from recipes_helpers import Phi

import kolmbuild.recipes.align as align
from kolmbuild.config.models import RecipesSpec
from kolmbuild.data import Example
from kolmbuild.recipes import learn, learn_drafts
from kolmbuild.recipes.align import MAX_ALIGN_CHARS, spans_for
from kolmbuild.recipes.classifier import features_of, tfidf_matrix
from kolmbuild.recipes.drafts import MAX_OUTPUT_CHARS

MB = 1 << 20


def _regex_spans(source: str, target: str, vocab: list[str]) -> list[tuple[str, str]] | None:
    """The former reading with one lazy and one greedy regex group per placeholder (the reference)."""
    finder = re.compile("|".join(re.escape(t) for t in vocab))
    tokens = [m.group() for m in finder.finditer(target)]
    literals = finder.split(target)
    if not tokens:
        return [] if source == target else None
    readings = []
    for lazy in ("?", ""):
        pattern = re.escape(literals[0]) + "".join(f"(.+{lazy})" + re.escape(lit) for lit in literals[1:])
        m = re.fullmatch(pattern, source, re.DOTALL)
        if m is None:
            return None
        readings.append(m.groups())
    return None if readings[0] != readings[1] else list(zip(tokens, readings[0], strict=True))


@settings(max_examples=1500, deadline=None)
@given(st.text(alphabet="ab [X]", max_size=14), st.text(alphabet="ab [X]Y", max_size=14))
def test_readings_without_backtracking_equal_the_regex_readings(source: str, target: str) -> None:
    vocab = ["[X]", "[Y]"]
    assert spans_for(source, target, vocab) == _regex_spans(source, target, vocab)


def test_a_pathological_alignment_is_linear() -> None:
    """Many placeholders and a literal that recurs everywhere: the regex reading backtracks
    polynomially here; str.find/rfind readings stay linear."""
    source = "a, " * 20_000 + "a"
    target = ", ".join(["[X]"] * 12)
    assert spans_for(source, target, ["[X]"]) is None  # ambiguous: shortest and longest readings differ


def _long_note(phi: Phi, chars: int) -> Example:
    rows = [e for e in phi.train if e.input != e.output]
    src, dst = [], []
    while sum(map(len, src)) < chars:
        src.extend(e.input for e in rows)
        dst.extend(e.output for e in rows)
    return Example(10_000, " ".join(src), " ".join(dst))


def test_a_long_example_is_not_diffed_and_learning_stays_small(phi: Phi, monkeypatch: pytest.MonkeyPatch) -> None:
    note = _long_note(phi, 2 * MB)
    assert len(note.input) + len(note.output) > MAX_ALIGN_CHARS
    largest = [0]
    real = align.difflib.SequenceMatcher

    def counting(isjunk: Any = None, a: Any = "", b: Any = "", autojunk: bool = True) -> Any:
        largest[0] = max(largest[0], len(a) * len(b))
        return real(isjunk, a, b, autojunk)

    monkeypatch.setattr(align.difflib, "SequenceMatcher", counting)
    tracemalloc.start()
    try:
        pack = learn([*phi.train, note], phi.heldout, phi.verifier, RecipesSpec(kinds=["span", "lookup"]), phi.shape)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert 0 < largest[0] <= (MAX_ALIGN_CHARS // 2) ** 2  # never the 2 MB note
    assert peak < 32 * MB, peak  # the note itself is 4 MB of text; nothing proportional to it is built
    span = next(r for r in pack.report["recipes"] if r["kind"] == "span")
    assert span["kept"] and span["notes"]["too_long_to_learn"] == 1 and span["notes"]["train_rows"] == 200
    assert pack.answer(note.input[:500]) is not None


def test_drafts_read_a_bounded_part_of_each_output() -> None:
    long = "".join(f'{{"id": {i}, "status": "ok"}} ' for i in range(80_000))  # ~2 MB, highly repetitive
    assert len(long) > 100 * MAX_OUTPUT_CHARS
    outputs = [long, '{"id": 1, "status": "ok"}', '{"id": 2, "status": "ok"}', '{"id": 3, "status": "ok"}']
    tracemalloc.start()
    try:
        table = learn_drafts(outputs)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert peak < 16 * MB, peak  # ~8 context entries per character read: bounded by MAX_OUTPUT_CHARS
    assert table.propose('{"id": 7, "st') == 'atus": "ok"}'


def test_classifier_features_stream_and_count_like_lists() -> None:
    text = "The lab called; the lab results are in. Call the lab back!"
    assert Counter(features_of(text)) == Counter(_listed(text))
    index = {"the lab": 0, "lab": 1, "call": 2}
    huge = text * 50_000  # ~3 MB: as a list of features, ~1.2 M strings (over 60 MB)
    tracemalloc.start()
    try:
        row = tfidf_matrix([huge], index, np.ones(3))
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert peak < 8 * MB, peak  # the lower-cased copy (3 MB), not a list of every token and bigram
    assert row.shape == (1, 3) and (row > 0).all()
    # the same values as counting a list of every feature (the former way), on a smaller text
    medium = text * 1000
    counts = Counter(_listed(medium))
    x = np.array([[1.0 + np.log(counts[f]) for f in sorted(index, key=index.__getitem__)]])
    assert np.allclose(tfidf_matrix([medium], index, np.ones(3)), x / np.linalg.norm(x), atol=1e-6)


def _listed(text: str) -> list[str]:
    words = re.findall(r"[a-z0-9]+(?:'[a-z]+)?", text.lower())
    return words + [a + " " + b for a, b in zip(words, words[1:], strict=False)]
