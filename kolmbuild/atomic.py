"""Write a file so that a reader (or a crash) never sees half of it: the one helper every writer uses.

A temp file is made in the destination's own folder (so the final rename stays on one file
system and is atomic), written, flushed and fsynced; then it is renamed over the destination and
the folder is fsynced, so the new name survives a power loss too. ``exclusive`` creates the
destination only if it is absent (a hard link is an atomic create-if-absent) and raises
FileExistsError otherwise. Standard library only: this sits below everything else.

Hand-written rather than a dependency: ``atomicwrites`` is unmaintained (archived in 2022) and
neither it nor ``safer`` fsyncs the folder or offers the exclusive create the key writer needs.
"""

from __future__ import annotations

import os
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import BinaryIO


def fsync_dir(folder: str | os.PathLike[str]) -> None:
    """Make a rename or a new name in ``folder`` durable (a no-op where folders cannot be opened)."""
    try:
        fd = os.open(folder, os.O_RDONLY | getattr(os, "O_DIRECTORY", 0))
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:  # some file systems (and Windows) do not fsync folders
        pass
    finally:
        os.close(fd)


def default_mode() -> int:
    """The mode ``open(path, "w")`` would give a new file: 0o666 less the process umask.

    Read from /proc rather than with ``os.umask(0)``/``os.umask(old)``, which would briefly open
    every file other threads create to the world.
    """
    try:
        with open("/proc/self/status", encoding="ascii") as f:
            for line in f:
                if line.startswith("Umask:"):
                    return 0o666 & ~int(line.split()[1], 8)
    except (OSError, ValueError):
        pass
    return 0o644


def temp_beside(path: Path) -> Path:
    """An empty private (0600) temp file in ``path``'s folder, named after it; the caller removes it."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, name = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    os.close(fd)
    return Path(name)


def commit(tmp: Path, dest: Path, *, exclusive: bool = False, durable: bool = True) -> None:
    """Move a complete, fsynced ``tmp`` to ``dest`` and fsync the folder (``tmp`` is consumed)."""
    if exclusive:
        try:
            os.link(tmp, dest)
        finally:
            tmp.unlink(missing_ok=True)
    else:
        os.replace(tmp, dest)
    if durable:
        fsync_dir(dest.parent)


@contextmanager
def atomic_writer(path: Path, *, mode: int | None = None, exclusive: bool = False,
                  durable: bool = True) -> Iterator[BinaryIO]:
    """A binary file to write ``path``'s new content into; it replaces ``path`` only on a clean exit.

    ``mode`` defaults to what a plain ``open`` would give; it is set before any byte is written, so
    a private file (0600) is never readable by others, not even half-written. ``durable=False``
    skips both fsyncs: a reader still never sees half a file, but a power loss may lose the new
    one. Only for caches of values that are cheap to recompute and checked when read (embeddings),
    where thousands of small writes would otherwise each wait for the disk.
    """
    path = Path(path)
    tmp = temp_beside(path)
    try:
        with open(tmp, "r+b") as f:
            os.fchmod(f.fileno(), default_mode() if mode is None else mode)
            yield f
            if durable:
                f.flush()
                os.fsync(f.fileno())
        commit(tmp, path, exclusive=exclusive, durable=durable)
    finally:
        tmp.unlink(missing_ok=True)


@contextmanager
def atomic_path(path: Path, *, mode: int | None = None, durable: bool = True) -> Iterator[Path]:
    """A temp file's path beside ``path``, for writers that take a file name (sqlite, torch.save,
    llama.cpp's quantizer, a GGUF writer, a download). On a clean exit the file is given ``mode``
    (default: what a plain ``open`` would give), fsynced and renamed over ``path``; on an error it is
    removed. The temp file exists (empty, 0600) when the block starts."""
    path = Path(path)
    tmp = temp_beside(path)
    try:
        yield tmp
        os.chmod(tmp, default_mode() if mode is None else mode)
        if durable:
            fsync_file(tmp)
        commit(tmp, path, durable=durable)
    finally:
        tmp.unlink(missing_ok=True)


def fsync_file(path: str | os.PathLike[str]) -> None:
    """Flush a written file's bytes to the disk."""
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def write_atomic(path: Path, data: bytes, *, mode: int | None = None, exclusive: bool = False,
                 durable: bool = True) -> Path:
    """Write ``data`` to ``path`` whole (see :func:`atomic_writer`)."""
    with atomic_writer(path, mode=mode, exclusive=exclusive, durable=durable) as f:
        f.write(data)
    return Path(path)


def write_text_atomic(path: Path, text: str, *, mode: int | None = None, durable: bool = True) -> Path:
    return write_atomic(path, text.encode("utf-8"), mode=mode, durable=durable)
