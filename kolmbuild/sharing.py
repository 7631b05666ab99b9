"""Stage-private cache entries shared between machines: the :class:`SharedEntries` protocol.

A neutral module at the bottom of the package graph, like :mod:`kolmbuild.progress`: the remote
cache (:class:`kolmbuild.remote.cache.RemoteCache`) implements it, the engine hands it to a stage as
``ctx.shared``, and the teacher's request cache and recall's embedding cache take it without
depending on the engine or the remote cache.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Protocol


class SharedEntries(Protocol):
    """Stage-private cache entries shared through the remote cache (kolmbuild.remote.RemoteCache).

    ``kind`` is the cache (``teacher``, ``embeddings``), ``name`` the entry's content address. What
    ``get_entry`` returns was signed by a trusted key; the caller still checks that it is the entry
    of ``name`` (a request's CID, a text's hash) before using it. ``put_entry`` shares an entry when
    pushing is on (in the background) and does nothing otherwise.
    """

    def get_entry(self, kind: str, name: str) -> bytes | None: ...

    def get_entries(self, kind: str, names: Sequence[str]) -> dict[str, bytes]: ...

    def put_entry(self, kind: str, name: str, payload: bytes, *, wait: bool = False) -> bool: ...
