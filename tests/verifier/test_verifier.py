from __future__ import annotations

import json
from pathlib import Path

import pytest

from kolmbuild.config.models import ShapeSpec, VerifierSpec
from kolmbuild.data import Example
from kolmbuild.errors import ConfigError
from kolmbuild.verifier import Verifier, choose_winner, infer_schema, shape_regex, synthesize, validate

AUTO = VerifierSpec()


def _ex(pairs: list[tuple[object, object]]) -> list[Example]:
    return [Example(i, a, b) for i, (a, b) in enumerate(pairs)]


def _roundtrip(v: Verifier) -> Verifier:
    return Verifier.from_json(json.loads(json.dumps(v.to_json())))


def test_short_outputs_use_normalized_exact_match(tmp_path: Path) -> None:
    v = synthesize(_ex([("capital of France?", "Paris"), ("of Peru?", "Lima"), ("of Japan?", "Tokyo")]),
                   ShapeSpec(), AUTO, tmp_path)
    assert v.mode == "exact" and v.casefold
    assert v.check("q", "  paris ", "Paris")
    assert not v.check("q", "Lyon", "Paris")
    assert v.check("q", "Lyon") and not v.check("q", "") and not v.check("q", 42)
    assert _roundtrip(v) == v


def test_patterned_outputs_get_a_regex_shape(tmp_path: Path) -> None:
    v = synthesize(_ex([(f"when {i}", f"2024-0{i}-1{i}") for i in range(1, 6)]), ShapeSpec(), AUTO, tmp_path)
    assert v.mode == "regex"
    assert v.check("x", "1999-12-31") and not v.check("x", "Dec 31 1999")
    assert v.check("x", "2024-01-11", "2024-01-11") and not v.check("x", "2024-01-12", "2024-01-11")
    assert _roundtrip(v).check("x", "1999-12-31")
    assert shape_regex(["ORD-0042", "ORD-12345", "ABC-99999"]) == r"^[A-Z]{3}\-\d{4,5}$"
    assert shape_regex(["hello", "world"]) is None


def test_edit_outputs_need_the_exact_edit(tmp_path: Path) -> None:
    ex = _ex([
        ("Call 555-123-4567 today about the order for Mr. Thompson and his family.",
         "Call [PHONE] today about the order for Mr. Thompson and his family."),
        ("My SSN is 123-45-6789, please keep it safe for the whole time we talk.",
         "My SSN is [SSN], please keep it safe for the whole time we talk."),
        ("Nothing to hide in this sentence at all, it is plain and long enough here.",
         "Nothing to hide in this sentence at all, it is plain and long enough here."),
    ])
    v = synthesize(ex, ShapeSpec(), AUTO, tmp_path)
    assert v.mode == "exact" and not v.casefold
    ref = ex[0].output
    assert v.check(ex[0].input, ref, ref)
    assert v.check(ex[0].input, ref.replace(" today", "  today"), ref)  # whitespace only
    assert not v.check(ex[0].input, ref.replace("[PHONE]", "555-123-4567"), ref)
    assert not v.check(ex[0].input, ref.replace("[PHONE]", "[phone]"), ref)


def test_free_text_uses_token_f1(tmp_path: Path) -> None:
    ex = _ex([(f"topic {i}", f"A long free-form answer number {i} that talks about many things in detail "
               f"and never copies its question; it goes on for a while {'x' * i}.") for i in range(4)])
    v = synthesize(ex, ShapeSpec(), AUTO, tmp_path)
    assert v.mode == "similar"
    ref = ex[0].output
    assert v.check("q", ref.replace("many", "several"), ref)
    assert not v.check("q", "Something else entirely.", ref)


def test_labels(tmp_path: Path) -> None:
    v = synthesize(_ex([("good", "pos"), ("bad", "neg")]), ShapeSpec(output="label", labels=["pos", "neg"]),
                   AUTO, tmp_path)
    assert v.mode == "label"
    assert v.check("x", "POS") and not v.check("x", "neutral")
    assert v.check("x", "pos", "pos") and not v.check("x", "neg", "pos")


def test_json_schema_inferred_with_field_checks(tmp_path: Path) -> None:
    outs = [{"name": n, "age": a, "status": s, "date": d, "tags": t}
            for n, a, s, d, t in [("Ann", 31, "active", "2024-01-05", ["x"]), ("Bo", 40, "inactive", "2023-11-30", []),
                                  ("Cy", 22, "active", "2022-02-02", ["y", "z"]),
                                  ("Di", 58, "active", "2021-07-19", []), ("Ed", 19, "inactive", "2020-10-10", ["x"]),
                                  ("Flo", 33, "active", "2019-03-03", [])]]
    v = synthesize(_ex([(f"row {i}", o) for i, o in enumerate(outs)]), ShapeSpec(output="json"), AUTO, tmp_path)
    assert v.mode == "json"
    schema = v.schema or {}
    assert schema["required"] == ["age", "date", "name", "status", "tags"]
    assert schema["properties"]["status"]["enum"] == ["active", "inactive"]
    assert schema["properties"]["date"]["pattern"] == r"^\d{4}\-\d{2}\-\d{2}$"
    good = {"name": "Gus", "age": 70, "status": "active", "date": "2018-08-08", "tags": ["q"]}
    assert v.check("x", good) and v.check("x", json.dumps(good)) and v.check("x", "```json\n" + json.dumps(good) + "\n```")
    assert not v.check("x", {**good, "status": "retired"})
    assert not v.check("x", {**good, "date": "Aug 8"})
    assert not v.check("x", {k: x for k, x in good.items() if k != "age"})
    assert not v.check("x", {**good, "extra": 1})
    assert not v.check("x", {**good, "age": "70"})
    assert not v.check("x", "{not json")
    assert v.check("x", {**good, "name": " gus "}, {**good, "name": "gus"})
    assert not v.check("x", good, {**good, "age": 71})
    assert _roundtrip(v).check("x", good)


def test_task_schema_wins_over_inference(tmp_path: Path) -> None:
    schema = {"type": "object", "properties": {"n": {"type": "integer", "minimum": 0}}, "required": ["n"]}
    v = synthesize(_ex([("a", {"n": 1})]), ShapeSpec(output="json", schema=schema), AUTO, tmp_path)
    assert v.check("x", {"n": 5}) and not v.check("x", {"n": -1}) and not v.check("x", {})


@pytest.mark.parametrize(
    ("schema", "match"),
    [
        ({"type": "object", "properties": {"n": {"type": "string", "pattern": "(["}}},
         r"task\.shape\.schema\.properties\.n\.pattern: not a regular expression"),
        ({"type": "object", "properties": {"n": {"type": 5}}}, r"task\.shape\.schema\.properties\.n\.type: 5"),
        ({"type": "array", "items": {"type": "strng"}}, r"task\.shape\.schema\.items\.type: 'strng'"),
        ({"type": "object", "required": "n"}, r"task\.shape\.schema\.required: must be a list"),
    ],
)
def test_a_malformed_task_schema_is_a_located_config_error(tmp_path: Path, schema: dict[str, object], match: str) -> None:
    with pytest.raises(ConfigError, match=match):
        synthesize(_ex([("a", {"n": "x"})]), ShapeSpec(output="json", schema=schema), AUTO, tmp_path)


def test_validator_reports_paths() -> None:
    schema = infer_schema([{"a": [{"b": 1}]}, {"a": []}])
    assert validate({"a": [{"b": 2}]}, schema) == []
    assert validate({"a": [{"b": 1.5}]}, schema) == ["$.a[0].b: expected integer, got number"]
    errs = validate({"a": [{"b": "s"}]}, schema)
    assert errs and errs[0].startswith("$.a[0].b")
    assert validate(1, {"anyOf": [{"type": "string"}, {"type": "integer"}]}) == []
    assert validate(1.5, {"oneOf": [{"type": "string"}, {"type": "integer"}]}) != []


def test_user_python_verifier_is_embedded(tmp_path: Path) -> None:
    (tmp_path / "v.py").write_text(
        "def verify(input, output, reference):\n"
        "    return output == input.upper() and (reference is None or output == reference)\n"
    )
    ex = _ex([("ab", "AB"), ("cd", "CD")])
    v = synthesize(ex, ShapeSpec(), VerifierSpec(path="v.py"), tmp_path)
    assert v.mode == "python" and v.check("xy", "XY") and not v.check("xy", "xy")
    doc = v.to_json()
    (tmp_path / "v.py").unlink()  # the artifact needs no file
    again = Verifier.from_json(json.loads(json.dumps(doc)))
    assert again.check("xy", "XY") and not again.check("xy", "XY", "ZZ")
    assert not again.check(None, "XY")  # the user's code raised: a failed check, not a crash
    doc["python"]["source"] += "\n# tampered\n"
    with pytest.raises(ConfigError, match="sha256"):
        Verifier.from_json(doc)


@pytest.mark.parametrize(
    ("source", "match"),
    [
        ("def verify(:\n", r"v.py:1: syntax error"),
        ("x = 1\n", "defines no function verify"),
        ("raise RuntimeError('boom')\n", "fails on import"),
        ("def verify(i, o, r):\n    return False\n", "rejects example 0"),
        ("def verify(i, o, r):\n    return o.nope\n", "raised AttributeError"),
    ],
)
def test_bad_user_verifier_is_a_config_error(tmp_path: Path, source: str, match: str) -> None:
    (tmp_path / "v.py").write_text(source)
    with pytest.raises(ConfigError, match=match):
        synthesize(_ex([("a", "A")]), ShapeSpec(), VerifierSpec(path="v.py"), tmp_path)


def test_config_errors(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="no such file"):
        synthesize(_ex([("a", "A")]), ShapeSpec(), VerifierSpec(path="missing.py"), tmp_path)
    with pytest.raises(ConfigError, match="path is not set"):
        synthesize(_ex([("a", "A")]), ShapeSpec(), VerifierSpec(kind="python"), tmp_path)
    with pytest.raises(ConfigError, match="share no pattern"):
        synthesize(_ex([("a", "x"), ("b", "yy"), ("c", "zzz")]), ShapeSpec(), VerifierSpec(kind="regex"), tmp_path)
    with pytest.raises(ConfigError, match="not a kolm-verifier/1"):
        Verifier.from_json({"mode": "exact"})


def test_choose_winner_prefers_verified_then_majority(tmp_path: Path) -> None:
    v = synthesize(_ex([(f"d{i}", f"2024-01-0{i}") for i in range(1, 6)]), ShapeSpec(), AUTO, tmp_path)
    samples = ["soon", "2024-02-01", "2024-03-01", "2024-03-01", "Feb 1"]
    # with a reference the one matching sample wins although others outvote it
    w = choose_winner(v, "q", samples, reference="2024-02-01")
    assert w is not None and (w.output, w.index, w.passed, w.votes) == ("2024-02-01", 1, True, 1)
    assert w.scores == (0, 2, 1, 1, 0)
    # without one, the shape-valid majority wins
    w = v.choose_winner("q", samples)
    assert w is not None and (w.output, w.index, w.passed, w.votes) == ("2024-03-01", 2, True, 2)
    # nothing passes: reported as not passed (distill drops it and says so)
    w = choose_winner(v, "q", ["x", "y", "y"], reference="2024-02-01")
    assert w is not None and not w.passed and w.output == "y" and w.votes == 2
    assert choose_winner(v, "q", []) is None


def test_choose_winner_json_votes_on_parsed_values(tmp_path: Path) -> None:
    v = synthesize(_ex([("a", {"k": 1}), ("b", {"k": 2}), ("c", {"k": 3})]), ShapeSpec(output="json"), AUTO, tmp_path)
    w = choose_winner(v, "q", ['{"k": 5}', '{"k":7}', '{ "k" : 7 }', "garbage"])
    assert w is not None and w.output == {"k": 7} and w.votes == 2 and w.index == 1
