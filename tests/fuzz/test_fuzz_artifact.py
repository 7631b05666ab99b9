"""Fuzz the .kolm readers: manifests with any JSON (or near-JSON) in any place, signature files
with any content, and byte flips anywhere in the archive. ``verify`` and ``inspect`` exit 0 or 2,
never with a traceback, never hang."""

from __future__ import annotations

import json
import zipfile
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from kolmbuild.artifact.format import SIGNATURE_MEMBERS
from kolmbuild.artifact.zipio import write_zip
from kolmbuild.hashing import canonical_json
from tests.artifact.conftest import fixed_key, write_sample

from .conftest import TIMEOUT, fuzz, invoke

scalars = st.one_of(
    st.none(), st.booleans(), st.integers(-(2**80), 2**80), st.floats(allow_nan=True, allow_infinity=True),
    st.text(max_size=16), st.sampled_from(["kolm/1", "components/recipes.json", "\x1b[2J", "\u202e", "-----BEGIN PUBLIC KEY-----"]),
)
json_values = st.recursive(scalars, lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=8), inner, max_size=3), max_leaves=10)
fragments = st.sampled_from(["NaN", "1e999", "9" * 5000, '"\\ud800"', "[" * 3000, '{"a":' * 200, "\x00", "\\", '"', ",", "}"])


@pytest.fixture(scope="module")
def members(tmp_path_factory: pytest.TempPathFactory) -> dict[str, bytes]:
    path = Path(tmp_path_factory.mktemp("fuzzart")) / "base.kolm"
    write_sample(path, key=fixed_key(), hmac_key=b"k" * 32)
    with zipfile.ZipFile(path) as z:
        return {n: z.read(n) for n in z.namelist()}


def _paths(node: Any, prefix: tuple = ()) -> list[tuple]:
    out = [prefix]
    if isinstance(node, dict):
        for k, v in node.items():
            out += _paths(v, (*prefix, k))
    elif isinstance(node, list):
        for i, v in enumerate(node):
            out += _paths(v, (*prefix, i))
    return out


def _replace(doc: Any, path: tuple, value: Any, delete: bool) -> Any:
    if not path:
        return value
    parent = doc
    for p in path[:-1]:
        parent = parent[p]
    if delete and isinstance(parent, dict):
        del parent[path[-1]]
    else:
        parent[path[-1]] = value
    return doc


def _encode(doc: Any) -> bytes:
    try:
        return canonical_json(doc)  # canonical: the mutation reaches the checks after parsing
    except (ValueError, TypeError):
        return json.dumps(doc, ensure_ascii=False, separators=(",", ":")).encode("utf-8", "surrogatepass")


def _check(path: Path) -> None:
    invoke("verify", str(path))
    invoke("verify", "--json", str(path))
    invoke("inspect", str(path))
    invoke("inspect", "--json", str(path))


@pytest.mark.timeout(TIMEOUT)
@fuzz(80)
@given(data=st.data(), value=json_values, delete=st.booleans(), fragment=fragments, raw=st.booleans())
def test_manifest_mutations(members, tmp_path_factory, data, value, delete, fragment, raw) -> None:
    manifest = json.loads(members["manifest.json"])
    if raw:
        text = members["manifest.json"]
        at = data.draw(st.integers(0, len(text)))
        new = text[:at] + fragment.encode("utf-8", "surrogatepass") + text[at:]
    else:
        path = data.draw(st.sampled_from(_paths(manifest)))
        new = _encode(_replace(manifest, path, value, delete))
    dest = Path(tmp_path_factory.mktemp("m")) / "x.kolm"
    write_zip(dest, sorted({**members, "manifest.json": new}.items()))
    _check(dest)


@pytest.mark.timeout(TIMEOUT)
@fuzz(60)
@given(member=st.sampled_from(SIGNATURE_MEMBERS), content=st.one_of(
    json_values.map(_encode), st.binary(max_size=200), fragments.map(lambda f: f.encode("utf-8", "surrogatepass")),
))
def test_signature_file_contents(members, tmp_path_factory, member: str, content: bytes) -> None:
    dest = Path(tmp_path_factory.mktemp("s")) / "x.kolm"
    write_zip(dest, sorted({**members, member: content}.items()))
    _check(dest)


@pytest.mark.timeout(TIMEOUT)
@fuzz(60)
@given(data=st.data())
def test_byte_flips_anywhere_in_the_archive(members, tmp_path_factory, data) -> None:
    base = Path(tmp_path_factory.mktemp("b")) / "base.kolm"
    write_zip(base, sorted(members.items()))
    blob = bytearray(base.read_bytes())
    for _ in range(data.draw(st.integers(1, 4))):
        at = data.draw(st.integers(0, len(blob) - 1))
        blob[at] ^= data.draw(st.integers(1, 255))
    cut = data.draw(st.one_of(st.none(), st.integers(0, len(blob))))
    base.write_bytes(bytes(blob[:cut] if cut is not None else blob))
    _check(base)
