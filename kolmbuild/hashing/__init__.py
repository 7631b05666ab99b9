"""Content identity: canonical JSON (RFC 8785), CIDv1, and file hashing with a stat cache.

This layer sits below everything else and imports only the standard library. Names load lazily so
the engine's no-op fast path (which needs only :mod:`kolmbuild.hashing.tree`) stays cheap.
"""

from __future__ import annotations

from typing import Any

_EXPORTS = {
    "CID": "kolmbuild.hashing.cid",
    "cid_of_bytes": "kolmbuild.hashing.cid",
    "cid_of_json": "kolmbuild.hashing.cid",
    "parse_cid": "kolmbuild.hashing.cid",
    "canonical_json": "kolmbuild.hashing.jcs",
}

__all__ = sorted(_EXPORTS)


def __getattr__(name: str) -> Any:
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module 'kolmbuild.hashing' has no attribute {name!r}")
    import importlib

    return getattr(importlib.import_module(module), name)
