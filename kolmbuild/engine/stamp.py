"""Writing the no-op stamp: everything a build's "nothing to do" depended on, by stat.

Written after a build (or `status`) that found every target up to date; read by
:mod:`kolmbuild.engine.fastpath` before anything heavy is imported. If every watched file still has
the same (inode, size, mtime_ns), every watched folder the same listing signature, every stored
output is still in the cache and the environment fingerprint is the same, the answer is the same.
Anything else falls through to the full engine, which re-decides from content hashes.
"""

from __future__ import annotations

import marshal
import os
import sys
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

from kolmbuild import __version__
from kolmbuild.engine.fastpath import (
    SALT_FILE,
    STAMP_VERSION,
    dir_sig,
    env_print,
    file_sig,
    normalize_args,
    read_salt,
    stamp_file,
    stamp_key,
)

ENV_VARS = (
    "KOLM_BACKEND", "KOLM_CONFIG_DIR", "XDG_CONFIG_HOME", "SOURCE_DATE_EPOCH",
    "KOLM_SIGNING_KEY", "KOLM_SIGNING_KEY_FILE", "HOME",
)

__all__ = ["invalidate", "normalize_args", "stamp_key", "write_stamp"]


def cache_salt(cache_dir: Path) -> bytes:
    """The cache's 32 random bytes that salt the stamp's env digest, created once, atomically."""
    existing = read_salt(str(cache_dir))
    if existing is not None:
        return existing
    cache_dir.mkdir(parents=True, exist_ok=True)
    tmp = cache_dir / f".{SALT_FILE}.{os.getpid()}.tmp"
    tmp.write_bytes(os.urandom(32))
    try:
        os.link(tmp, cache_dir / SALT_FILE)  # first writer wins; a racing one reads the winner's
    except FileExistsError:
        pass
    finally:
        tmp.unlink(missing_ok=True)
    salt = read_salt(str(cache_dir))
    assert salt is not None
    return salt


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
    env_list = sorted(set(env_names) | set(ENV_VARS))
    doc: dict[str, Any] = {
        "v": STAMP_VERSION,
        "kolmbuild": __version__,
        "python": sys.executable,
        "env_names": env_list,
        "env": env_print(env_list, cache_salt(cache_dir)),
        "files": {str(p): file_sig(str(p)) for p in sorted(set(files))},
        "dirs": {str(p): dir_sig(str(p)) for p in sorted(set(dirs))},
        "objects": sorted(str(p) for p in set(objects)),
        "build_message": build_message,
        "status_lines": list(status_lines),
    }
    path = Path(stamp_file(str(cache_dir), key))
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(f".{os.getpid()}.tmp")
    tmp.write_bytes(marshal.dumps(doc))  # marshal: the reader must not pay for importing json
    os.replace(tmp, path)


def invalidate(cache_dir: Path) -> None:
    folder = cache_dir / "noop"
    if folder.is_dir():
        for p in folder.glob("*.stamp"):
            p.unlink(missing_ok=True)
