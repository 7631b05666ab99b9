"""canonical_json on RFC 8785's own test vectors, on our data, and our range check around rfc8785."""

from __future__ import annotations

import hashlib
import json
import struct
from pathlib import Path

import pytest

from kolmbuild.hashing import canonical_json, cid_of_json
from tests.conftest import REPO

# RFC 8785 Appendix B: IEEE-754 bit patterns and the JSON each must serialize to.
APPENDIX_B = [
    ("0000000000000000", "0"),
    ("8000000000000000", "0"),  # minus zero
    ("0000000000000001", "5e-324"),
    ("8000000000000001", "-5e-324"),
    ("7fefffffffffffff", "1.7976931348623157e+308"),
    ("ffefffffffffffff", "-1.7976931348623157e+308"),
    ("4340000000000000", "9007199254740992"),
    ("c340000000000000", "-9007199254740992"),
    ("4430000000000000", "295147905179352830000"),
    ("44b52d02c7e14af5", "9.999999999999997e+22"),
    ("44b52d02c7e14af6", "1e+23"),
    ("44b52d02c7e14af7", "1.0000000000000001e+23"),
    ("444b1ae4d6e2ef4e", "999999999999999700000"),
    ("444b1ae4d6e2ef4f", "999999999999999900000"),
    ("444b1ae4d6e2ef50", "1e+21"),
    ("3eb0c6f7a0b5ed8c", "9.999999999999997e-7"),
    ("3eb0c6f7a0b5ed8d", "0.000001"),
    ("41b3de4355555553", "333333333.3333332"),
    ("41b3de4355555554", "333333333.33333325"),
    ("41b3de4355555555", "333333333.3333333"),
    ("41b3de4355555556", "333333333.3333334"),
    ("41b3de4355555557", "333333333.33333343"),
    ("becbf647612f3696", "-0.0000033333333333333333"),
    ("43143ff3c1cb0959", "1424953923781206.2"),
]


def _double(bits: str) -> float:
    return struct.unpack(">d", bytes.fromhex(bits))[0]


@pytest.mark.parametrize(("bits", "expected"), APPENDIX_B)
def test_rfc8785_appendix_b_numbers(bits: str, expected: str) -> None:
    assert canonical_json(_double(bits)) == expected.encode()


@pytest.mark.parametrize("bits", ["7fffffffffffffff", "7ff0000000000000", "fff0000000000000"])  # NaN, ±Infinity
def test_rfc8785_appendix_b_non_numbers_are_refused(bits: str) -> None:
    with pytest.raises(ValueError, match="NaN and Infinity"):
        canonical_json(_double(bits))


def test_rfc8785_section_3_2_2_example() -> None:
    source = r'''{
      "numbers": [333333333.33333329, 1E30, 4.50, 2e-3, 0.000000000000000000000000001],
      "string": "\u20ac$\u000F\u000aA'\u0042\u0022\u005c\\\"\/",
      "literals": [null, true, false]
    }'''
    expected = ('{"literals":[null,true,false],"numbers":[333333333.3333333,1e+30,4.5,0.002,1e-27],'
                '"string":"€$\\u000f\\nA\'B\\"\\\\\\\\\\"/"}')
    assert canonical_json(json.loads(source)) == expected.encode("utf-8")


def test_rfc8785_section_3_2_3_sorting() -> None:
    source = {"\u20ac": "Euro Sign", "\r": "Carriage Return", "\ufb33": "Hebrew Letter Dalet With Dagesh",
              "1": "One", "\U0001f600": "Emoji: Grinning Face", "\u0080": "Control",
              "\u00f6": "Latin Small Letter O With Diaeresis"}
    keys = [k for k in json.loads(canonical_json(source))]
    assert keys == ["\r", "1", "\u0080", "\u00f6", "\u20ac", "\U0001f600", "\ufb33"]  # UTF-16 code units


# sha256 over the canonical line of every row, as the hand-written serializer (before rfc8785) wrote
# them: the bytes our splits, labels and stage keys are made of must not move.
PINNED_EXAMPLES = {
    "examples/phi-redactor/eval.jsonl": (60, "3afd5c88fa11c24aaf2b2266ec07f1e09af38a545942a06bc7c695b2fcd216ed"),
    "examples/phi-redactor/train.jsonl": (200, "82613330128a63a0bc7ddc64d5fc868ff2095a75a2c65d0c595bd486de88853b"),
    "examples/support-router/eval.jsonl": (60, "632d858d07c3f6a0fa2e6a868a3a298def70dc10f388e53c22016d1db3c36272"),
    "examples/support-router/train.jsonl": (160, "c10fda547ba6b8261ad1e7f69a81625ee694b5cc9e5254d55cac56ffecf74ab1"),
}


@pytest.mark.parametrize("rel", sorted(PINNED_EXAMPLES))
def test_example_rows_keep_their_bytes(rel: str) -> None:
    digest = hashlib.sha256()
    rows = [json.loads(line) for line in (REPO / rel).read_text(encoding="utf-8").splitlines() if line.strip()]
    for row in rows:
        digest.update(canonical_json(row) + b"\n")
    assert (len(rows), digest.hexdigest()) == PINNED_EXAMPLES[rel]


def test_integers_up_to_2_53_inclusive() -> None:
    # every integer a double holds exactly, as data.strictjson admits them (rfc8785 alone stops at 2**53 - 1)
    assert canonical_json(2**53) == b"9007199254740992" == canonical_json(float(2**53))
    assert canonical_json({"n": [-(2**53), 2**53 - 1, True]}) == b'{"n":[-9007199254740992,9007199254740991,true]}'
    for bad in (2**53 + 1, -(2**53) - 1, {"deep": [[2**64]]}):
        with pytest.raises(ValueError, match="outside the range JSON numbers represent exactly"):
            canonical_json(bad)


def test_what_is_not_json_is_a_type_error_naming_it() -> None:
    with pytest.raises(TypeError, match="JSON object keys must be strings, got int"):
        canonical_json({"a": {1: "x"}})
    with pytest.raises(TypeError, match="bytes is not JSON-serializable"):
        canonical_json([1, {"b": b"raw"}])
    with pytest.raises(TypeError, match="set is not JSON-serializable"):
        canonical_json({"s": {1, 2}})
    with pytest.raises(ValueError, match="lone surrogate"):
        canonical_json(["ok", "\ud800"])


def test_tuples_and_key_order() -> None:
    assert canonical_json((1, "a", None)) == b'[1,"a",null]'
    assert cid_of_json({"b": 1, "a": 2}) == cid_of_json({"a": 2, "b": 1})


def test_manifest_bytes_are_the_canonical_json_the_cid_names(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import zipfile

    from kolmbuild.artifact import open_artifact, write_artifact

    monkeypatch.setenv("KOLM_CONFIG_DIR", str(tmp_path / "config"))
    path = tmp_path / "a.kolm"
    write_artifact(path, target="t", version="1", task={"name": "t", "note": "é€😀\u2028"},
                   components={"recipes": b'{"recipes":[]}'}, metrics={"K": 0.1 + 0.2, "n": 2**53})
    with zipfile.ZipFile(path) as z:
        raw = z.read("manifest.json")
    with open_artifact(path) as art:
        assert canonical_json(art.manifest) == raw
        assert str(cid_of_json(art.manifest)) == str(art.manifest_cid)
