from __future__ import annotations

import hashlib
import json
import random

import pytest
import rfc8785
from multiformats import CID as RefCID

from kolmbuild.hashing import canonical_json, cid_of_bytes, cid_of_json, parse_cid


@pytest.mark.parametrize("data", [b"", b"hello", bytes(range(256)) * 100])
def test_raw_cid_matches_multiformats(data: bytes) -> None:
    ours = cid_of_bytes(data)
    ref = RefCID("base32", 1, "raw", ("sha2-256", hashlib.sha256(data).digest()))
    assert str(ours) == str(ref)
    assert parse_cid(str(ours)) == ours


def test_json_cid_matches_multiformats() -> None:
    doc = {"b": [1, 2.5, "x"], "a": None}
    ours = cid_of_json(doc)
    ref = RefCID("base32", 1, "json", ("sha2-256", hashlib.sha256(rfc8785.dumps(doc)).digest()))
    assert str(ours) == str(ref)
    assert str(ours).startswith("bagaaiera")


def _random_json(rng: random.Random, depth: int = 0):
    kind = rng.randrange(7 if depth < 3 else 4)
    if kind == 0:
        return rng.choice([None, True, False])
    if kind == 1:
        return rng.randint(-(2**53), 2**53)
    if kind == 2:
        return rng.choice([0.1, -1e-7, 1e21, 123456.789, 5e-324, 1.7976931348623157e308, rng.random() * 10 ** rng.randint(-30, 30)])
    if kind == 3:
        return "".join(rng.choice("aé\u2028\n\t\"\\\x01€😀Zz") for _ in range(rng.randint(0, 8)))
    if kind in (4, 5):
        keys = ["".join(rng.choice("abcé😀_") for _ in range(rng.randint(0, 4))) for _ in range(rng.randint(0, 4))]
        return {k: _random_json(rng, depth + 1) for k in keys}
    return [_random_json(rng, depth + 1) for _ in range(rng.randint(0, 4))]


def test_jcs_matches_reference_implementation_on_random_documents() -> None:
    rng = random.Random(8785)
    for _ in range(500):
        doc = _random_json(rng)
        assert canonical_json(doc) == rfc8785.dumps(doc), doc


def test_jcs_rejects_non_json() -> None:
    for bad in (float("nan"), float("inf"), 2**60, {1: "x"}, "\ud800"):
        with pytest.raises((ValueError, TypeError)):
            canonical_json(bad)


def test_parse_cid_rejects_garbage() -> None:
    for bad in ("", "zabc", "b!!", "bafy", str(cid_of_bytes(b"x"))[:-2]):
        with pytest.raises(ValueError):
            parse_cid(bad)


def test_canonical_json_is_order_independent() -> None:
    a = json.loads('{"x": 1, "y": {"b": 2, "a": 1}}')
    b = json.loads('{"y": {"a": 1, "b": 2}, "x": 1}')
    assert cid_of_json(a) == cid_of_json(b)
