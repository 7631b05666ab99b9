"""A remote stage and the remote stage cache: the far side pulls its inputs from the cache and pushes
its outputs to it, and training checkpoints are kept there.

Near side (:func:`far_cache`, :func:`by_reference`): when the build has a remote cache the far side
can reach (a network URL with no password in it), upstream outputs the cache already holds go into
the stage bundle by CID instead of by value, and, when the build pushes, the far side is asked to
push its outputs to the cache rather than send them back. What the far side gets is the URL and the
storage options whose names are not secret: its credentials come from its own storage configuration
(AWS environment or profile, SSH keys), never from this machine.

Far side (:func:`fetch_upstream`, :func:`push_outputs`, run by kolmbuild.compute.stage_runner):
fetches each referenced object, re-hashed against its CID, and uploads the outputs by CID. A failure
to fetch fails the stage with a message saying so; a failure to push leaves the outputs in ``out/``,
which come back over the transport as without a cache.

Checkpoints (:class:`RemoteCacheSink`): each checkpoint the far side sends back is also uploaded to
the cache, with a signed index ``checkpoints/<stage>-<key>.json``, so a rebuild on another machine
(a new CI runner) resumes from it.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from kolmbuild.atomic import atomic_writer
from kolmbuild.compute.checkpoints import Fetch, LocalSink, safe_rel
from kolmbuild.engine.stage import StageContext
from kolmbuild.errors import CorruptObject
from kolmbuild.hashing.files import file_cid
from kolmbuild.remote.cache import RemoteCache
from kolmbuild.remote.records import is_cid
from kolmbuild.remote.storage import display_url
from kolmbuild.secretnames import is_secret_name
from kolmbuild.sharing import SharedEntries

NETWORK = ("s3", "s3a", "gs", "gcs", "az", "abfs", "abfss", "sftp", "ssh", "http", "https")


class FarCacheError(Exception):
    """The far side could not fetch an input from the remote cache."""


@dataclass(frozen=True)
class FarCache:
    """The remote cache as the far side opens it."""

    url: str
    storage_options: Mapping[str, Any]
    push_outputs: bool

    def to_json(self) -> dict[str, Any]:
        return {"url": self.url, "storage_options": dict(self.storage_options), "push_outputs": self.push_outputs}

    @classmethod
    def from_json(cls, doc: Mapping[str, Any]) -> FarCache:
        return cls(str(doc["url"]), dict(doc.get("storage_options") or {}), bool(doc.get("push_outputs")))

    def open(self, base: Path) -> RemoteCache:
        return RemoteCache.from_url(self.url, base=base, storage_options=self.storage_options)


def _jsonable(value: Any) -> bool:
    try:
        json.dumps(value)
    except (TypeError, ValueError):
        return False
    return True


def _public_options(options: Mapping[str, Any]) -> dict[str, Any]:
    """Storage options without anything whose name says secret (keys, passwords, tokens), nested too."""
    out: dict[str, Any] = {}
    for k, v in options.items():
        if is_secret_name(str(k)) or not _jsonable(v):
            continue
        out[k] = _public_options(v) if isinstance(v, Mapping) else v
    return out


def far_cache(shared: SharedEntries | None) -> FarCache | None:
    """The remote cache the far side can use, or None (no cache, a folder of this machine, a URL
    carrying a password, a remote that is down)."""
    if not isinstance(shared, RemoteCache) or shared.location is None or shared.down is not None:
        return None
    loc = shared.location
    if loc.protocol not in NETWORK or display_url(loc.url) != loc.url:
        return None
    return FarCache(loc.url, _public_options(shared.storage_options), shared.push_enabled)


def by_reference(shared: RemoteCache, ctx: StageContext) -> dict[str, dict[str, str]]:
    """stage -> {output: CID} of the upstream outputs the remote cache holds (they are not shipped).
    When the build pushes, the ones it lacks are uploaded first (they would be pushed after the
    build anyway), so the far side fetches every input from the cache."""
    wanted: dict[tuple[str, str], str] = {}
    for stage, outs in ctx.upstream.items():
        receipt = ctx.receipts.get(stage)
        for name in outs:
            cid = receipt.outputs.get(name) if receipt is not None else None
            if cid is not None and is_cid(cid):
                wanted[(stage, name)] = cid
    have = shared.has_objects(wanted.values())
    if shared.push_enabled:
        for (stage, name), cid in wanted.items():
            if cid not in have and shared.put_object(cid, ctx.upstream[stage][name].resolve()):
                have.add(cid)
    refs: dict[str, dict[str, str]] = {}
    for (stage, name), cid in sorted(wanted.items()):
        if cid in have:
            refs.setdefault(stage, {})[name] = cid
    return refs


# ---------------------------------------------------------------------------------- far side


def fetch_upstream(cache: RemoteCache, refs: Mapping[str, Mapping[str, str]], work: Path) -> dict[str, dict[str, str]]:
    """Fetch every referenced upstream object into ``work/upstream/<stage>/<name>`` (re-hashed);
    return stage -> {name: path relative to ``work``}. FarCacheError names the first one missing."""
    paths: dict[str, dict[str, str]] = {}
    for stage, outs in refs.items():
        for name, cid in outs.items():
            rel = f"upstream/{stage}/{name}"
            if safe_rel(rel) is None or "/" in name or not is_cid(cid):
                raise FarCacheError(f"refusing the upstream reference {stage}/{name!r}")
            dest = work / rel
            dest.parent.mkdir(parents=True, exist_ok=True)
            try:
                with atomic_writer(dest) as f:
                    cache.fetch_object(cid, f)
            except (FileNotFoundError, CorruptObject) as exc:
                why = cache.down or type(exc).__name__
                raise FarCacheError(f"could not fetch upstream {stage}/{name} ({cid}) from the remote cache "
                                    f"{cache.display}: {why}") from exc
            paths.setdefault(stage, {})[name] = rel
    return paths


def push_outputs(cache: RemoteCache, outdir: Path) -> dict[str, list[Any]]:
    """Upload the stage's outputs to the cache by CID and remove them from ``outdir`` (they need not
    travel back); name -> [CID, size]. What could not be uploaded stays in ``outdir``."""
    files = {p.name: p for p in sorted(outdir.iterdir()) if p.is_file() and not p.is_symlink()}
    cids = {name: str(file_cid(p)) for name, p in files.items()}
    have = cache.has_objects(cids.values())
    pushed: dict[str, list[Any]] = {}
    for name, path in files.items():
        cid = cids[name]
        if cid in have or cache.put_object(cid, path):
            size = path.stat().st_size
            path.unlink()
            pushed[name] = [cid, size]
    return pushed


# ---------------------------------------------------------------------------------- checkpoints


class RemoteCacheSink:
    """Checkpoints kept here (a :class:`LocalSink`) and in the remote cache (objects by CID, plus a
    signed index ``checkpoints/<stage>-<key>.json`` of cache-relative path -> CID): a rebuild on a
    machine that never saw them resumes from the cache's copies."""

    def __init__(self, local: LocalSink, cache: RemoteCache, name: str,
                 on_saved: Callable[[str], None] | None = None) -> None:
        self.local = local
        self.cache = cache
        self.name = name
        self.on_saved = on_saved
        self.index: dict[str, str] = {}

    def restore(self) -> dict[str, Path]:
        found = self.local.restore()
        if found:
            return found
        payload = self.cache.get_entry("checkpoints", self.name)
        try:
            index = json.loads(payload) if payload is not None else {}
        except ValueError:
            index = {}
        for rel, cid in (index.items() if isinstance(index, dict) else ()):
            if not isinstance(rel, str) or safe_rel(rel) is None or not is_cid(cid):
                continue
            dest = self.local.folder / rel
            dest.parent.mkdir(parents=True, exist_ok=True)
            try:
                with atomic_writer(dest) as f:
                    self.cache.fetch_object(cid, f)
            except (FileNotFoundError, CorruptObject):
                continue
            self.index[rel] = cid
        return self.local.restore()

    def receive(self, rel: str, fetch: Fetch) -> None:
        self.local.receive(rel, fetch)
        if not self.cache.push_enabled:
            return
        path = self.local.folder / rel
        cid = str(file_cid(path))
        if self.cache.put_object(cid, path):
            self.index[rel] = cid
            payload = json.dumps(self.index, sort_keys=True).encode()
            if self.cache.put_entry("checkpoints", self.name, payload, wait=True) and self.on_saved is not None:
                self.on_saved(rel)

    def done(self) -> None:
        self.local.done()


def checkpoint_sink(ctx: StageContext, local: LocalSink) -> LocalSink | RemoteCacheSink:
    """The sink a remote stage's checkpoints go to: the remote cache too, when the build has one."""
    if not isinstance(ctx.shared, RemoteCache):
        return local
    name = f"{ctx.stage}-{ctx.key}"
    return RemoteCacheSink(local, ctx.shared, name,
                           on_saved=lambda rel: ctx.progress.log(f"{ctx.stage}: checkpoint {rel} is in the remote cache"))
