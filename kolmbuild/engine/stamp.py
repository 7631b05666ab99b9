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
from kolmbuild.atomic import write_atomic
from kolmbuild.config.compose import conf_dirs
from kolmbuild.config.kolmfile import Project
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
from kolmbuild.engine.rules import rule_files
from kolmbuild.userconfig import config_dir

ENV_VARS = (
    "KOLM_BACKEND", "KOLM_CONFIG_DIR", "XDG_CONFIG_HOME", "SOURCE_DATE_EPOCH",
    "KOLM_SIGNING_KEY", "KOLM_SIGNING_KEY_FILE", "HOME",
)

__all__ = ["config_paths", "invalidate", "normalize_args", "stamp_key", "write_stamp"]


def cache_salt(cache_dir: Path) -> bytes:
    """The cache's 32 random bytes that salt the stamp's env digest, created once, atomically."""
    existing = read_salt(str(cache_dir))
    if existing is not None:
        return existing
    cache_dir.mkdir(parents=True, exist_ok=True)
    try:  # first writer wins (exclusive create); a racing one reads the winner's
        write_atomic(cache_dir / SALT_FILE, os.urandom(32), mode=0o600, exclusive=True)
    except FileExistsError:
        pass
    salt = read_salt(str(cache_dir))
    assert salt is not None
    return salt


def config_paths(project: Project, rule_dirs: Iterable[Path]) -> set[Path]:
    """The files and folders (by stat) any decision depends on besides the inputs: the kolmfile,
    the config groups, the rules, and the user's config folder."""
    files: set[Path] = {project.kolmfile_path}
    for d in conf_dirs(project):
        for group in ("task", "backend", "gates"):
            g = d / group
            if g.is_dir():
                files.add(g)
                files.update(g.glob("*.yaml"))
    for d in rule_dirs:
        files.add(d)
        files.update(rule_files([d]))
    files.add(project.conf_dir)
    files.add(project.rules_dir)
    cfg_dir = config_dir()
    files.add(cfg_dir)
    if cfg_dir.is_dir():
        files.update(p for p in cfg_dir.iterdir() if p.is_file())
    return files


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
        "objects": {str(p): file_sig(str(p)) for p in sorted(set(objects))},
        "build_message": build_message,
        "status_lines": list(status_lines),
    }
    # marshal: the reader must not pay for importing json
    write_atomic(Path(stamp_file(str(cache_dir), key)), marshal.dumps(doc))


def invalidate(cache_dir: Path) -> None:
    folder = cache_dir / "noop"
    if folder.is_dir():
        for p in folder.glob("*.stamp"):
            p.unlink(missing_ok=True)
