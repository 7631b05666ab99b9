"""A corpus with a symlink loop (or a link to a folder) is read exactly as its CID hashed it, and a
loop is a located exit-2 message, not an OSError traceback."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from kolmbuild.errors import DataError
from kolmbuild.hashing.tree import iter_tree
from kolmbuild.recall.corpus import list_corpus


def _corpus(root: Path) -> Path:
    (root / "sub").mkdir(parents=True)
    (root / "a.txt").write_text("alpha\n")
    (root / "sub" / "b.txt").write_text("beta\n")
    (root / ".hidden.txt").write_text("no\n")
    os.symlink("..", root / "sub" / "up")  # a link to a folder above: not followed
    os.symlink("a.txt", root / "a-link.txt")  # a link to a file: read like the file
    return root


def test_the_corpus_is_the_files_its_cid_covers(tmp_path: Path) -> None:
    root = _corpus(tmp_path / "corpus")
    names = [f.name for f in list_corpus("corpus", tmp_path)]
    assert names == [rel for rel, _ in iter_tree(root)] == ["a-link.txt", "a.txt", "sub/b.txt"]
    assert {f.name: f.read() for f in list_corpus("corpus", tmp_path)}["a-link.txt"] == b"alpha\n"


def test_a_symlink_loop_is_a_data_error_naming_it(tmp_path: Path) -> None:
    root = _corpus(tmp_path / "corpus")
    os.symlink("loop2", root / "loop1")
    os.symlink("loop1", root / "loop2")
    with pytest.raises(DataError, match=r"task.corpus: .*corpus/loop\d: Too many levels of symbolic links"):
        list_corpus("corpus", tmp_path)


def test_a_build_over_a_corpus_with_a_loop_exits_2(shell_project) -> None:
    os.symlink("loop", shell_project.root / "corpus" / "loop")
    r = shell_project.kolmbuild("status")
    assert r.returncode == 2, r.stderr
    assert "Traceback" not in r.stderr
    assert "task.corpus" in r.stderr and "corpus/loop: Too many levels of symbolic links" in r.stderr
