"""Checkpoints of a remote stage leave its machine as they are written, so a rerun on a new machine resumes.

Far side: the stage (the train stage's trainer) calls the callback from :func:`announcer` right after
it wrote a checkpoint file into its private cache; that prints one progress line naming the file
(relative to the cache). Near side: the adapter's line relay sees the line and hands it to the job's
:class:`CheckpointSink`, with a ``fetch`` that copies the file over the job's transport (SFTP on an SSH
machine). On the next run of the same stage key the sink's files go into the bundle under
``cache/<rel>``, where the far side's stage finds them as if it had written them itself.

:class:`LocalSink` keeps them in the project's cache (``cache/remote-checkpoints/<stage>-<key>/``)
and drops them once the stage succeeded. A sink backed by the remote stage cache would implement the
same three calls (the far side uploading, ``restore`` naming what to fetch there).
"""

from __future__ import annotations

import json
import os
import shutil
import sys
from collections.abc import Callable, Mapping
from pathlib import Path, PurePosixPath
from typing import Protocol, TextIO

from kolmbuild.atomic import atomic_path

PREFIX = "::kolm-progress::"  # the stage runner's progress lines (kolmbuild.compute.stage_runner)
OP = "checkpoint"
FAR_CACHE = "work/cache"  # the stage's private cache, relative to the far side's job folder
REMOTE_ENV = "KOLM_REMOTE_STAGE"  # set on the far side of a remote stage (kolmbuild.compute.stage_runner)

Fetch = Callable[[Path], None]


class CheckpointSink(Protocol):
    def restore(self) -> Mapping[str, Path]:
        """``rel -> local file``: what the far side's stage cache starts with."""
        ...

    def receive(self, rel: str, fetch: Fetch) -> None:
        """The far side wrote ``rel`` into its stage cache; ``fetch(dest)`` copies it to ``dest`` here."""
        ...

    def done(self) -> None:
        """The stage succeeded: what was kept for a resume is no longer needed."""
        ...


def safe_rel(rel: str) -> str | None:
    """``rel`` when it is a plain relative path inside the cache (no ``..``, not absolute), else None."""
    p = PurePosixPath(rel)
    if not rel or p.is_absolute() or ".." in p.parts or "\\" in rel or rel.startswith("~"):
        return None
    return str(p)


def announcer(cache_dir: Path, environ: Mapping[str, str] = os.environ,
              stream: TextIO | None = None) -> Callable[[Path], None] | None:
    """On the far side of a remote stage, the callback a stage calls after writing a checkpoint under
    ``cache_dir``; None anywhere else (a local run keeps its checkpoints where they are)."""
    if not environ.get(REMOTE_ENV):
        return None
    root = cache_dir.resolve()

    def announce(path: Path) -> None:
        rel = path.resolve().relative_to(root).as_posix()
        out = stream or sys.stdout
        out.write(PREFIX + json.dumps({"op": OP, "path": rel}, sort_keys=True) + "\n")
        out.flush()

    return announce


def parse(line: str) -> str | None:
    """The cache-relative path a checkpoint line names, or None for any other line."""
    if not line.startswith(PREFIX):
        return None
    try:
        doc = json.loads(line[len(PREFIX):])
    except ValueError:
        return None
    if not isinstance(doc, dict) or doc.get("op") != OP or not isinstance(doc.get("path"), str):
        return None
    return safe_rel(doc["path"])


class LocalSink:
    """Checkpoints kept in ``folder`` (the project's cache), one file per cache-relative path."""

    def __init__(self, folder: Path, on_saved: Callable[[str], None] | None = None) -> None:
        self.folder = folder
        self.on_saved = on_saved
        self.received: list[str] = []

    @classmethod
    def for_stage(cls, cache_dir: Path, stage: str, key: str,
                  on_saved: Callable[[str], None] | None = None) -> LocalSink:
        return cls(cache_dir / "remote-checkpoints" / f"{stage}-{key[:32]}", on_saved)

    def restore(self) -> dict[str, Path]:
        if not self.folder.is_dir():
            return {}
        found = {}
        for p in sorted(self.folder.rglob("*")):
            rel = p.relative_to(self.folder).as_posix()
            if p.is_file() and not p.is_symlink() and not p.name.startswith(".") and safe_rel(rel):  # . : a temp
                found[rel] = p
        return found

    def receive(self, rel: str, fetch: Fetch) -> None:
        # whole or not at all: a dropped connection leaves the last good one
        with atomic_path(self.folder / rel) as part:
            fetch(part)
        self.received.append(rel)
        if self.on_saved is not None:
            self.on_saved(rel)

    def done(self) -> None:
        shutil.rmtree(self.folder, ignore_errors=True)
