"""Where the built-in config groups and rules live, installed or in a source checkout."""

from __future__ import annotations

from pathlib import Path


def builtin_dir(name: str) -> Path:
    """Return the built-in ``conf`` or ``rules`` folder.

    A wheel carries them as ``kolmbuild/_data/<name>``; a source (editable) checkout has them at
    the repository root, beside the package.
    """
    if name not in ("conf", "rules"):
        raise ValueError(f"unknown resource folder {name!r}")
    pkg = Path(__file__).resolve().parent
    packaged = pkg / "_data" / name
    if packaged.is_dir():
        return packaged
    return pkg.parent / name
