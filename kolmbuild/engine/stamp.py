"""The no-op stamp: everything a build's "nothing to do" depended on, by stat.

Written after a build (or `status`) that found every target up to date; read by
:mod:`kolmbuild.engine.fastpath` before anything heavy is imported. If every watched file still has
the same (inode, size, mtime_ns), every watched folder the same listing signature, every stored
output is still in the cache and the environment fingerprint is the same, the answer is the same.
Anything else falls through to the full engine, which re-decides from content hashes.
"""

from __future__ import annotations

import hashlib
import json
import os
import sys
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

from kolmbuild import __version__
from kolmbuild.hashing.files import iter_tree

STAMP_VERSION = 2
ENV_VARS = (
    "KOLM_BACKEND", "KOLM_CONFIG_DIR", "XDG_CONFIG_HOME", "SOURCE_DATE_EPOCH",
    "KOLM_SIGNING_KEY", "KOLM_SIGNING_KEY_FILE", "HOME",
)


def normalize_args(args: Sequence[str]) -> list[str]:
    """argv without the verb, so `kolmbuild`, `kolmbuild build` and `kolmbuild status` share a stamp."""
    out = list(args)
    i = 0
    while i < len(out) and out[i] in ("-C", "-f"):
        i += 2
    if i < len(out) and out[i] in ("build", "status"):
        del out[i]
    return out


def stamp_key(cwd: str, args: Sequence[str]) -> str:
    return hashlib.sha256(json.dumps([os.path.realpath(cwd), list(args)]).encode()).hexdigest()[:32]


def stamp_path(cache_dir: Path, key: str) -> Path:
    return cache_dir / "noop" / f"{key}.json"


def env_print(names: Iterable[str]) -> str:
    h = hashlib.sha256()
    for n in sorted(set(names)):
        h.update(f"{n}={os.environ.get(n, chr(0))}\n".encode())
    return h.hexdigest()


def file_sig(path: Path) -> list[int] | None:
    try:
        st = os.stat(path)
    except OSError:
        return None
    return [st.st_ino, st.st_size, st.st_mtime_ns]


def dir_sig(path: Path) -> str | None:
    try:
        h = hashlib.sha256()
        for rel, entry in iter_tree(path):
            st = entry.stat()
            h.update(f"{rel}\0{st.st_ino}\0{st.st_size}\0{st.st_mtime_ns}\n".encode())
        return h.hexdigest()
    except OSError:
        return None


def write_stamp(
    cache_dir: Path,
    key: str,
    *,
    files: Iterable[Path],
    dirs: Iterable[Path],
    objects: Iterable[Path],
    env_names: Iterable[str],
    build_message: str,
    status_lines: Sequence[str],
) -> None:
    doc: dict[str, Any] = {
        "v": STAMP_VERSION,
        "kolmbuild": __version__,
        "python": sys.executable,
        "env_names": sorted(set(env_names) | set(ENV_VARS)),
        "files": {str(p): file_sig(p) for p in sorted(set(files))},
        "dirs": {str(p): dir_sig(p) for p in sorted(set(dirs))},
        "objects": sorted(str(p) for p in set(objects)),
        "build_message": build_message,
        "status_lines": list(status_lines),
    }
    doc["env"] = env_print(doc["env_names"])
    path = stamp_path(cache_dir, key)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(f".{os.getpid()}.tmp")
    tmp.write_text(json.dumps(doc))
    os.replace(tmp, path)


def invalidate(cache_dir: Path) -> None:
    folder = cache_dir / "noop"
    if folder.is_dir():
        for p in folder.glob("*.json"):
            p.unlink(missing_ok=True)
