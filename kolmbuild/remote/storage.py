"""Where a remote cache lives: an fsspec URL turned into a file system, with bounded timeouts.

Any fsspec URL works (``s3://``, ``gs://``, ``az://``, ``sftp://``, a plain folder, ``http(s)://``
read-only). Credentials and endpoints come only from the storage's own configuration (AWS
environment or profile, ``FSSPEC_S3_ENDPOINT_URL``-style variables, the SSH agent and keys) or
from ``cache.storage_options``, which are passed to fsspec as they are and never printed:
:func:`display_url` is what messages show (no password, no query string).

Each protocol gets timeouts so a remote that is down costs seconds, not minutes (the user's own
``storage_options`` win where they set the same key).
"""

from __future__ import annotations

import contextlib
import os
import posixpath
import urllib.parse
import uuid
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

READ_ONLY = ("http", "https")
# Object stores write a whole object per PUT (a reader sees the old one, or the new one): no temp
# name and rename needed, and none is possible.
OBJECT_STORES = ("s3", "s3a", "gs", "gcs", "az", "abfs", "abfss", "memory")


@dataclass(frozen=True)
class Location:
    """A parsed remote: fsspec protocol, the URL to open, the path inside the file system."""

    url: str
    protocol: str
    display: str

    @property
    def writable(self) -> bool:
        return self.protocol not in READ_ONLY

    @property
    def object_store(self) -> bool:
        return self.protocol in OBJECT_STORES


def write_whole(fs: Any, target: str, *, data: bytes | None = None, src: Path | None = None,
                direct: bool = False) -> None:
    """Write ``target`` on the fsspec file system ``fs`` so a reader sees the old file or the new one.

    ``direct``: one PUT (an object store's write is whole already, and it has no rename). Otherwise
    the bytes (``data``, or the local file ``src``) go to a temp name in the same folder
    (``.tmp-NAME.RANDOM.tmp``, which listings skip as a dot name) and ``fs.mv`` renames it into
    place; the temp is removed on an error. :mod:`kolmbuild.atomic` is the local-path counterpart;
    this one is for the remote cache and the publish registry.
    """
    folder, name = posixpath.split(target)
    tmp = target if direct else posixpath.join(folder, f".tmp-{name}.{uuid.uuid4().hex}.tmp")
    try:
        if src is not None:
            fs.put_file(str(src), tmp)
        else:
            fs.pipe_file(tmp, data if data is not None else b"")
        if tmp != target:
            fs.mv(tmp, target)
    except BaseException:
        if tmp != target:
            with contextlib.suppress(Exception):  # best effort: the temp name is never read
                fs.rm_file(tmp)
        raise


def display_url(url: str) -> str:
    """``url`` as messages show it: no password in the user part, no query string or fragment."""
    parts = urllib.parse.urlsplit(url)
    if not parts.scheme or len(parts.scheme) == 1:  # a plain path (or a Windows drive letter)
        return url
    netloc = parts.netloc
    if "@" in netloc:
        user, host = netloc.rsplit("@", 1)
        netloc = f"{user.split(':', 1)[0]}@{host}"
    return urllib.parse.urlunsplit((parts.scheme, netloc, parts.path, "", ""))


def locate(url: str, base: Path) -> Location:
    """Parse ``url``; a plain path (or ``file://``) is a folder, relative paths taken from ``base``."""
    text = url.strip()
    if not text:
        raise ValueError("the remote cache URL is empty")
    scheme = urllib.parse.urlsplit(text).scheme
    if "://" not in text or scheme == "file":
        path = Path(text.removeprefix("file://")).expanduser()
        folder = path if path.is_absolute() else base / path
        folder = Path(os.path.normpath(folder))
        return Location(str(folder), "file", str(folder))
    return Location(text, scheme.lower(), display_url(text))


def _timeouts(protocol: str, connect_s: float, read_s: float) -> dict[str, Any]:
    if protocol in ("s3", "s3a"):
        return {"use_listings_cache": False,  # a key another machine just wrote must be seen
                "config_kwargs": {"connect_timeout": connect_s, "read_timeout": read_s,
                                  "retries": {"max_attempts": 2, "mode": "standard"}}}
    if protocol in ("sftp", "ssh"):
        return {"timeout": connect_s, "banner_timeout": connect_s, "auth_timeout": connect_s}
    if protocol in ("http", "https"):
        import aiohttp  # fsspec's HTTP file system is built on it

        return {"client_kwargs": {"timeout": aiohttp.ClientTimeout(total=read_s, connect=connect_s)}}
    if protocol in ("gs", "gcs"):
        return {"requests_timeout": read_s}
    return {}


def _merge(defaults: Mapping[str, Any], user: Mapping[str, Any]) -> dict[str, Any]:
    out = dict(defaults)
    for k, v in user.items():
        if isinstance(v, Mapping) and isinstance(out.get(k), Mapping):
            out[k] = _merge(out[k], v)
        else:
            out[k] = v
    return out


def open_filesystem(loc: Location, storage_options: Mapping[str, Any], *, connect_s: float,
                    read_s: float) -> tuple[Any, str]:
    """The fsspec file system and the root path inside it. This may connect (SFTP does, at once)."""
    import fsspec.core

    if loc.protocol == "file":
        from fsspec.implementations.local import LocalFileSystem

        return LocalFileSystem(), loc.url
    options = _merge({"skip_instance_cache": True, **_timeouts(loc.protocol, connect_s, read_s)},
                     storage_options)
    fs, root = fsspec.core.url_to_fs(loc.url, **options)
    return fs, str(root).rstrip("/")
