"""Untrusted files: zip-slip, symlinks, duplicates, unlisted entries and zip bombs are refused."""

from __future__ import annotations

import warnings
import zipfile
import zlib
from pathlib import Path

import pytest
from click.testing import CliRunner

from kolmbuild.artifact import Limits, load_artifact, open_artifact
from kolmbuild.artifact.zipio import Member, _central_header, _eocd, _local_header, write_zip
from kolmbuild.cli.main import cli
from kolmbuild.errors import ArtifactError

from .conftest import write_sample


def _deflate(data: bytes) -> bytes:
    c = zlib.compressobj(9, zlib.DEFLATED, -15)
    return c.compress(data) + c.flush()


def crafted(path: Path, entries: list[tuple[str, bytes, int, int | None]]) -> Path:
    """A zip in kolm/1's layout, but with whatever names, methods and declared sizes we like."""
    out = bytearray()
    members = []
    for name, data, method, declared in entries:
        comp = _deflate(data) if method == 8 else data
        m = Member(name, method, zlib.crc32(data), len(comp), len(data) if declared is None else declared, len(out))
        out += _local_header(m) + comp
        members.append(m)
    cd = len(out)
    for m in members:
        out += _central_header(m)
    out += _eocd(len(members), len(out) - cd, cd)
    path.write_bytes(bytes(out))
    return path


def _with_zipfile(path: Path, entries: list[tuple[zipfile.ZipInfo | str, bytes]]) -> Path:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # duplicate names
        with zipfile.ZipFile(path, "w") as z:
            for info, data in entries:
                z.writestr(info, data)
    return path


def _verify_cli(path: Path) -> tuple[int, str]:
    r = CliRunner().invoke(cli, ["verify", str(path)])
    assert r.exception is None or isinstance(r.exception, SystemExit), r.exception
    return r.exit_code, r.output


def _symlink_info() -> zipfile.ZipInfo:
    info = zipfile.ZipInfo("components/recipes.json")
    info.create_system = 3
    info.external_attr = (0o120777 << 16)
    return info


CASES = {
    "zip-slip": (lambda p: crafted(p, [("../evil.txt", b"x", 0, None)]), "path traversal"),
    "zip-slip-nested": (lambda p: crafted(p, [("components/../../evil", b"x", 0, None)]), "path traversal"),
    "absolute": (lambda p: crafted(p, [("/etc/evil", b"x", 0, None)]), "absolute path"),
    "windows-absolute": (lambda p: crafted(p, [("C:/evil", b"x", 0, None)]), "absolute path"),
    "backslash": (lambda p: crafted(p, [("..\\evil", b"x", 0, None)]), "path traversal"),
    "symlink": (lambda p: _with_zipfile(p, [(_symlink_info(), b"/etc/passwd")]), "symbolic link"),
    "duplicate": (
        lambda p: crafted(p, [("manifest.json", b"{}", 8, None), ("manifest.json", b"{}", 8, None)]),
        "duplicate entry 'manifest.json'",
    ),
    "duplicate-zipfile": (lambda p: _with_zipfile(p, [("manifest.json", b"{}"), ("manifest.json", b"{}")]), "duplicate entry"),
    "bomb-lying-header": (
        lambda p: crafted(p, [("manifest.json", bytes(5_000_000), 8, 1000)]),
        "inflates past its declared size",
    ),
    "bomb-impossible-ratio": (
        lambda p: crafted(p, [("components/heldout.jsonl", b"{}\n", 8, 500_000_000)]),
        "more than deflate can produce",
    ),
    "bomb-over-limit": (
        lambda p: crafted(p, [("components/heldout.jsonl", bytes(10), 8, 3_000_000_000)]),
        "over the limit of 1073741824 for compressed entries",
    ),
    "not-a-zip": (lambda p: (p.write_bytes(b"hello, I am not a zip file" * 10), p)[1], "not a .kolm file"),
    "empty": (lambda p: (p.write_bytes(b""), p)[1], "not a .kolm file"),
}


@pytest.mark.parametrize("case", sorted(CASES))
def test_unsafe_or_malformed_files_are_refused(case: str, tmp_path: Path) -> None:
    make, message = CASES[case]
    path = make(tmp_path / f"{case}.kolm")
    with pytest.raises(ArtifactError) as err:
        with load_artifact(path) as art:  # the bomb cases are caught only when the data is read
            for name in art.member_names:
                art.read_member(name, max_bytes=None)  # type: ignore[arg-type]
    assert message in str(err.value)
    assert str(path) in str(err.value)
    code, output = _verify_cli(path)
    assert code == 2 and message in output, output
    assert sorted(p.name for p in tmp_path.iterdir()) == [path.name]  # nothing written anywhere


def test_an_entry_the_manifest_does_not_list_is_refused(sample, tmp_path: Path) -> None:
    with zipfile.ZipFile(sample.path) as z:
        members = [(n, z.read(n)) for n in z.namelist()]
    extra = tmp_path / "extra.kolm"
    write_zip(extra, [*members, ("components/payload.sh", b"rm -rf ~")])
    with pytest.raises(ArtifactError, match="'components/payload.sh' is not listed in the manifest"):
        open_artifact(extra)
    code, output = _verify_cli(extra)
    assert code == 2 and "not listed in the manifest" in output
    # an unknown file under signatures/ is no different
    write_zip(extra, [*members, ("signatures/extra.sig", b"{}")])
    with pytest.raises(ArtifactError, match="not listed"):
        load_artifact(extra)


def test_a_listed_component_that_is_missing_is_refused(sample, tmp_path: Path) -> None:
    with zipfile.ZipFile(sample.path) as z:
        members = [(n, z.read(n)) for n in z.namelist() if n != "components/recipes.json"]
    gone = tmp_path / "gone.kolm"
    write_zip(gone, members)
    with pytest.raises(ArtifactError, match="component 'recipes' is listed but components/recipes.json is missing"):
        load_artifact(gone)


def test_inflation_limits_catch_a_bomb_before_inflating(tmp_path: Path, key) -> None:
    big = bytes(3_000_000)  # deflates ~1000:1
    w = write_sample(tmp_path / "b.kolm", key=key, components={"heldout": big})
    with pytest.raises(ArtifactError, match="over the limit of 1000000 for compressed entries"):
        load_artifact(w.path, Limits(max_deflated_inflated=1_000_000))
    with pytest.raises(ArtifactError, match="inflate to more than 2000000 bytes"):
        load_artifact(w.path, Limits(max_total_inflated=2_000_000))
    with pytest.raises(ArtifactError, match="too many zip entries"):
        load_artifact(w.path, Limits(max_members=2))
    with load_artifact(w.path) as art:  # the defaults allow it
        assert art.components["heldout"].size == len(big)


def test_trailing_data_and_comments_are_refused(sample, tmp_path: Path) -> None:
    raw = sample.path.read_bytes()
    p = tmp_path / "t.kolm"
    p.write_bytes(raw + b"junk")
    with pytest.raises(ArtifactError):
        load_artifact(p)
    p.write_bytes(b"junk" + raw)
    with pytest.raises(ArtifactError, match="corrupt zip|not a canonical kolm/1 zip"):
        load_artifact(p)
    p.write_bytes(raw[:-100])
    with pytest.raises(ArtifactError):
        load_artifact(p)


def test_extract_never_leaves_its_folder(sample, tmp_path: Path) -> None:
    dest = tmp_path / "out"
    with open_artifact(sample.path) as art:
        for name in art.components:
            art.extract(name, dest)
    assert all(p.parent == dest for p in dest.rglob("*"))
