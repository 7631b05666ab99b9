"""Where a corpus comes from: a local folder or file, or any fsspec URL (s3://, memory://, …).

Each file is a :class:`CorpusFile` whose ``name`` (its path relative to the corpus root, with
forward slashes) becomes the ``source`` of every hit from it. Hidden files and folders (``.git``,
``.DS_Store``) are not part of a corpus. Files are listed in name order so builds are reproducible.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from kolmbuild.errors import DataError
from kolmbuild.hashing.tree import iter_tree


@dataclass(frozen=True)
class CorpusFile:
    name: str
    read: Callable[[], bytes] = field(compare=False, repr=False)

    @classmethod
    def local(cls, path: Path, name: str | None = None) -> CorpusFile:
        return cls(name or path.name, path.read_bytes)


def is_remote(location: str) -> bool:
    return "://" in location and not location.startswith("file://")


def _hidden(rel_parts: tuple[str, ...]) -> bool:
    return any(part.startswith(".") for part in rel_parts)


def _local_files(root: Path, key: str) -> list[CorpusFile]:
    """The files the corpus's CID covers (:func:`kolmbuild.hashing.tree.iter_tree`: regular files and
    links to them, dot-names skipped, linked folders not followed), so a build reads exactly what its
    key hashed. A link that loops or a folder that cannot be listed is a DataError naming it."""
    try:
        if not root.exists():
            raise DataError(f"{key}: {root}: no such file or folder")
        if root.is_file():
            return [CorpusFile.local(root)]
        return [CorpusFile.local(Path(entry.path), rel) for rel, entry in iter_tree(root)]
    except OSError as exc:
        raise DataError(f"{key}: {exc.filename or root}: {exc.strerror or exc}") from None


def _reader(fs: Any, path: str) -> Callable[[], bytes]:
    def read() -> bytes:
        data: bytes = fs.cat_file(path)
        return data

    return read


def _remote_files(url: str, key: str) -> list[CorpusFile]:
    import fsspec  # type: ignore[import-untyped]

    try:
        fs, root = fsspec.core.url_to_fs(url)
        if not fs.exists(root):
            raise DataError(f"{key}: {url}: no such file or folder")
        if fs.isfile(root):
            return [CorpusFile(root.rsplit("/", 1)[-1], _reader(fs, root))]
        paths = sorted(fs.find(root))
    except DataError:
        raise
    except (ImportError, ValueError) as exc:
        raise DataError(f"{key}: {url}: cannot open this URL: {exc}") from exc
    except OSError as exc:
        raise DataError(f"{key}: {url}: {exc}") from exc
    prefix = root.rstrip("/") + "/"
    files = []
    for path in paths:
        rel = path[len(prefix):] if path.startswith(prefix) else path.lstrip("/")
        if rel and not _hidden(tuple(rel.split("/"))):
            files.append(CorpusFile(rel, _reader(fs, path)))
    return files


def list_corpus(location: str, base_dir: Path, key: str = "task.corpus") -> list[CorpusFile]:
    """The files of the corpus at ``location`` (a path relative to ``base_dir``, or a URL)."""
    if is_remote(location):
        return _remote_files(location, key)
    path = Path(location.removeprefix("file://"))
    return _local_files(path if path.is_absolute() else base_dir / path, key)
