"""The remote stage cache: run records and objects on any fsspec file system, signed and verified.

Layout under the remote's prefix (pinned: tools and tests rely on it)::

    objects/<CID>                  raw bytes, named by their raw CIDv1 (as in cache/objects/)
    runs/<stage key CID>.json      a run record (stage, key, outputs {name: CID}, sizes, metrics)
                                   in a signed DSSE envelope (kolmbuild.remote.envelope)
    teacher/<request CID>.json     a teacher reply, signed      } stage-private caches that cost
    embeddings/<key>.json          an embedding, signed          } money or time, shared too
    checkpoints/<stage>-<key>.json the index {file: CID} of a remote stage's checkpoints, signed

Reading trusts nothing it fetches: a record is used only when its signature verifies against a
trusted key (:class:`~kolmbuild.remote.envelope.TrustedKeys`) and it names the key asked for; an
object only when its bytes hash to its name. Anything else is skipped with one warning naming it.

Writing puts objects first (skipping those present) and the signed record last, so a reader never
sees a record whose objects are missing; every write is whole or absent (an object store's PUT, or
a temp name and a rename elsewhere), so two machines pushing the same key at once is safe: either
record wins, and both name objects that are there.

A remote that is down or refuses the credentials costs one warning: the first failing call marks
it down, and every later call answers "miss" at once (``required``: it raises
:class:`~kolmbuild.errors.RemoteUnavailable` instead, exit 2). Calls run concurrently on a small
thread pool with the storage's own timeouts (kolmbuild.remote.storage).
"""

from __future__ import annotations

import re
import sys
import threading
from collections.abc import Callable, Iterable, Mapping, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from contextlib import AbstractContextManager, nullcontext
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, BinaryIO, TypeVar

from kolmbuild.errors import CorruptObject, RemoteUnavailable, UserInputError
from kolmbuild.hashing.cid import CID
from kolmbuild.hashing.files import hash_stream
from kolmbuild.remote.records import CHECKPOINTS_TYPE, EMBEDDING_TYPE, RUN_TYPE, TEACHER_TYPE, RunDoc, is_cid
from kolmbuild.remote.storage import Location, locate, open_filesystem, write_whole

if TYPE_CHECKING:
    from kolmbuild.artifact.keys import SigningKey
    from kolmbuild.remote.envelope import TrustedKeys

_T = TypeVar("_T")
_ENTRY = re.compile(r"[A-Za-z0-9_.-]{8,160}")
# shared entries: kind (the folder) -> the payload type its envelopes carry
KINDS = {"teacher": TEACHER_TYPE, "embeddings": EMBEDDING_TYPE, "checkpoints": CHECKPOINTS_TYPE}


class _Down(Exception):
    """Internal: the remote is (now) marked down; the call is a miss."""


@dataclass
class RemoteStats:
    """What this process asked of the remote (the bench and the tests read it)."""

    requests: int = 0
    bytes_down: int = 0
    bytes_up: int = 0
    objects_down: int = 0
    objects_up: int = 0
    records_down: int = 0
    records_up: int = 0


def _stderr_warn(message: str) -> None:
    sys.stderr.write(f"kolmbuild: warning: {message}\n")
    sys.stderr.flush()


Opener = Callable[[], tuple[Any, str]]


class RemoteCache:
    """One remote cache, opened lazily: nothing touches the network until a stage needs it.

    ``opener`` returns (fsspec file system, root path inside it); :meth:`from_url` and
    :meth:`over` make one. ``signer`` is called once, on the first push (it may create the key).
    """

    def __init__(self, opener: Opener, display: str, *, writable: bool = True, object_store: bool = False,
                 serial: bool = False, trust: TrustedKeys | Callable[[], TrustedKeys] | None = None,
                 signer: Callable[[], SigningKey] | None = None, push: bool = False, required: bool = False,
                 workers: int = 8, warn: Callable[[str], None] | None = None) -> None:
        if push and not writable:
            raise UserInputError(f"remote cache {display}: an http(s) remote is read-only; it cannot be pushed to",
                                 hint="push to the storage behind it (s3://, sftp://, a folder) instead")
        self.display = display
        self.writable = writable
        self.object_store = object_store
        self._trust = trust
        self.push_enabled = push
        self.required = required
        self.stats = RemoteStats()
        self.bad_cids: set[str] = set()
        self._opener = opener
        self._signer = signer
        self._key: SigningKey | None = None
        self._fs: Any = None
        self._root = ""
        self._lock = threading.Lock()
        # paramiko's SFTP client is one channel: its calls are made one at a time
        self._serial: AbstractContextManager[Any] = threading.Lock() if serial else nullcontext()
        self._workers = workers
        self._pool: ThreadPoolExecutor | None = None
        self._pending: list[Future[bool]] = []
        self._warn = warn or _stderr_warn
        self._warned: set[str] = set()
        self._down: str | None = None
        self._made_dirs: set[str] = set()
        # what from_url was given (a remote stage's far side opens the same remote; see
        # kolmbuild.compute.stage_remote, which forwards only what is not secret)
        self.location: Location | None = None
        self.storage_options: Mapping[str, Any] = {}

    @property
    def trust(self) -> TrustedKeys:
        """The trusted keys, loaded on first use (a no-op with a remote configured never loads them)."""
        from kolmbuild.remote.envelope import TrustedKeys  # the signing code loads only when needed

        with self._lock:
            if self._trust is None:
                self._trust = TrustedKeys({})
            elif not isinstance(self._trust, TrustedKeys):
                self._trust = self._trust()
            return self._trust

    # ------------------------------------------------------------------ making one

    @classmethod
    def from_url(cls, url: str, *, base: Path, storage_options: Mapping[str, Any] | None = None,
                 connect_timeout_s: float = 3.0, read_timeout_s: float = 30.0, **kw: Any) -> RemoteCache:
        loc: Location = locate(url, base)
        options = dict(storage_options or {})

        def opener() -> tuple[Any, str]:
            return open_filesystem(loc, options, connect_s=connect_timeout_s, read_s=read_timeout_s)

        cache = cls(opener, loc.display, writable=loc.writable, object_store=loc.object_store,
                    serial=loc.protocol in ("sftp", "ssh"), **kw)
        cache.location, cache.storage_options = loc, options
        return cache

    @classmethod
    def over(cls, fs: Any, root: str, **kw: Any) -> RemoteCache:
        """A remote on a file system the caller made (dvc-data style: ``RemoteCache.over(s3, "bucket/kolm")``)."""
        protocol = fs.protocol[0] if isinstance(fs.protocol, (tuple, list)) else fs.protocol
        kw.setdefault("writable", protocol not in ("http", "https"))
        kw.setdefault("object_store", protocol in ("s3", "s3a", "gs", "gcs", "az", "abfs", "memory"))
        kw.setdefault("serial", protocol in ("sftp", "ssh"))
        return cls(lambda: (fs, root.rstrip("/")), f"{protocol}://{root}", **kw)

    # ------------------------------------------------------------------ health

    @property
    def down(self) -> str | None:
        """Why the remote is not used any more in this process (None while it is fine)."""
        return self._down

    @property
    def connected(self) -> bool:
        return self._fs is not None

    def warn_once(self, topic: str, message: str) -> None:
        with self._lock:
            if topic in self._warned:
                return
            self._warned.add(topic)
        self._warn(message)

    def _fail(self, what: str, exc: BaseException) -> None:
        reason = f"{type(exc).__name__}: {exc}".replace("\n", " ")[:300]
        with self._lock:
            first = self._down is None
            if first:
                self._down = reason
        if self.required:
            raise RemoteUnavailable(f"remote cache {self.display} is unavailable ({what}: {reason})",
                                    hint="without --remote-required the build warns and goes on locally") from exc
        if first:
            self._warn(f"remote cache {self.display} is unavailable ({what}: {reason}); building locally")

    def _filesystem(self) -> tuple[Any, str]:
        if self._down is not None:
            raise _Down()
        with self._lock:
            if self._fs is not None:
                return self._fs, self._root
        try:
            self._count(requests=1)
            fs, root = self._opener()
        except Exception as exc:
            self._fail("connecting", exc)
            raise _Down() from exc
        with self._lock:
            if self._fs is None:
                self._fs, self._root = fs, root
            return self._fs, self._root

    def _count(self, **deltas: int) -> None:
        with self._lock:
            for name, n in deltas.items():
                setattr(self.stats, name, getattr(self.stats, name) + n)

    def _path(self, rel: str) -> str:
        return f"{self._root}/{rel}" if self._root else rel

    def _op(self, what: str, fn: Callable[[Any], _T], *, miss_ok: bool = True) -> _T:
        """One storage call. ``FileNotFoundError`` passes through (a miss) when ``miss_ok``; any other
        failure marks the remote down (one warning) and raises ``_Down``."""
        fs, _ = self._filesystem()
        with self._serial:
            if self._down is not None:
                raise _Down()
            self._count(requests=1)
            try:
                return fn(fs)
            except FileNotFoundError as exc:
                if miss_ok:
                    raise
                self._fail(what, exc)
                raise _Down() from exc
            except Exception as exc:
                self._fail(what, exc)
                raise _Down() from exc

    def _map(self, fn: Callable[[_T], Any], items: Sequence[_T]) -> list[Any]:
        """``fn`` over ``items`` on the pool; a RemoteUnavailable from any of them is raised here."""
        if len(items) <= 1:
            return [fn(i) for i in items]
        futures = [self._executor().submit(fn, i) for i in items]
        results, error = [], None
        for f in futures:
            try:
                results.append(f.result())
            except RemoteUnavailable as exc:
                error = error or exc
                results.append(None)
        if error is not None:
            raise error
        return results

    def _executor(self) -> ThreadPoolExecutor:
        with self._lock:
            if self._pool is None:
                self._pool = ThreadPoolExecutor(max_workers=self._workers, thread_name_prefix="kolm-remote")
            return self._pool

    def close(self) -> None:
        """Wait for background uploads, then stop the pool. Idempotent."""
        try:
            self.flush()
        finally:
            with self._lock:
                pool, self._pool = self._pool, None
            if pool is not None:
                pool.shutdown(wait=True)

    # ------------------------------------------------------------------ reading

    def _read_small(self, rel: str) -> bytes | None:
        try:
            data: bytes = self._op(f"reading {rel}", lambda fs: fs.cat_file(self._path(rel)))
        except (FileNotFoundError, _Down):
            return None
        self._count(bytes_down=len(data))
        return data

    def _open_signed(self, rel: str, payload_type: str, data: bytes) -> bytes | None:
        from kolmbuild.remote.envelope import Untrusted, open_envelope  # loaded on the first record read

        try:
            payload, _signer = open_envelope(data, payload_type, self.trust)
        except Untrusted as exc:
            self.warn_once(rel, f"remote cache {self.display}: ignoring {rel}: {exc}")
            return None
        return payload

    def get_runs(self, keys: Sequence[str]) -> dict[str, RunDoc]:
        """The trusted, well-formed run records the remote has for ``keys`` (fetched concurrently)."""
        keys = [k for k in dict.fromkeys(keys) if is_cid(k)]
        if not keys or self._down is not None:
            return {}
        found: dict[str, RunDoc] = {}
        for key, data in zip(keys, self._map(lambda k: self._read_small(f"runs/{k}.json"), keys), strict=True):
            if data is None:
                continue
            rel = f"runs/{key}.json"
            payload = self._open_signed(rel, RUN_TYPE, data)
            if payload is None:
                continue
            try:
                doc = RunDoc.parse(payload, key)
            except ValueError as exc:
                self.warn_once(rel, f"remote cache {self.display}: ignoring {rel}: {exc}")
                continue
            bad = self.bad_cids.intersection(doc.outputs.values())
            if bad:
                self.warn_once(rel, f"remote cache {self.display}: ignoring {rel}: it names the damaged "
                                    f"object {sorted(bad)[0]}")
                continue
            self._count(records_down=1)
            found[key] = doc
        return found

    def fetch_object(self, cid: str, sink: BinaryIO) -> int:
        """Write object ``cid`` into ``sink``, re-hashing it on the way; return its size.

        FileNotFoundError when the remote does not have it (or is down); CorruptObject when its bytes
        do not hash to ``cid`` (the caller discards what was written). A damaged or missing object is
        remembered: records naming it are refused from now on, so the stage that made it runs here.
        """
        if not is_cid(cid) or cid in self.bad_cids:
            raise FileNotFoundError(cid)
        rel = f"objects/{cid}"

        def read(fs: Any) -> tuple[bytes, int]:
            with fs.open(self._path(rel), "rb") as f:
                return hash_stream(f, sink)

        try:
            digest, size = self._op(f"reading {rel}", read)
        except _Down:
            raise FileNotFoundError(cid) from None
        except FileNotFoundError:
            with self._lock:
                self.bad_cids.add(cid)
            self.warn_once(rel, f"remote cache {self.display}: {rel} is missing; the runs naming it are not used")
            raise
        self._count(bytes_down=size)
        got = str(CID("raw", digest))
        if got != cid:
            with self._lock:
                self.bad_cids.add(cid)
            self.warn_once(rel, f"remote cache {self.display}: {rel} is damaged (its {size} bytes hash to {got}); "
                                "not used")
            raise CorruptObject(f"remote cache object {cid} is damaged (its bytes hash to {got})", cid=cid)
        self._count(objects_down=1)
        return size

    def get_entry(self, kind: str, name: str) -> bytes | None:
        """The payload of a trusted shared entry (a teacher reply, an embedding), or None. The caller
        checks that the payload is the entry of ``name`` (a request's CID, a text's hash)."""
        if kind not in KINDS or not _ENTRY.fullmatch(name) or self._down is not None:
            return None
        rel = f"{kind}/{name}.json"
        data = self._read_small(rel)
        return None if data is None else self._open_signed(rel, KINDS[kind], data)

    def get_entries(self, kind: str, names: Sequence[str]) -> dict[str, bytes]:
        """:meth:`get_entry` for many names, concurrently; only those found and trusted."""
        names = list(dict.fromkeys(names))
        got = self._map(lambda n: self.get_entry(kind, n), names)
        return {n: p for n, p in zip(names, got, strict=True) if p is not None}

    def has_objects(self, cids: Iterable[str]) -> set[str]:
        """Which of ``cids`` the remote holds (a down remote holds none)."""
        wanted = [c for c in dict.fromkeys(cids) if is_cid(c)]

        def has(cid: str) -> bool:
            try:
                return bool(self._op(f"looking up objects/{cid}", lambda fs: fs.exists(self._path(f"objects/{cid}"))))
            except (_Down, FileNotFoundError):
                return False

        return {c for c, ok in zip(wanted, self._map(has, wanted), strict=True) if ok}

    # ------------------------------------------------------------------ writing

    def signing_key(self) -> SigningKey:
        if self._signer is None:
            raise UserInputError(f"remote cache {self.display}: pushing needs a signing key, and none was given")
        with self._lock:
            if self._key is None:
                self._key = self._signer()
            return self._key

    def _makedirs(self, fs: Any, rel_dir: str) -> None:
        if self.object_store or rel_dir in self._made_dirs:
            return
        fs.makedirs(self._path(rel_dir), exist_ok=True)
        self._made_dirs.add(rel_dir)

    def _write(self, rel: str, data: bytes | None = None, src: Path | None = None) -> None:
        """Write ``rel`` whole: a PUT on an object store, else a temp name in the same folder and a rename."""
        folder = rel.rsplit("/", 1)[0]

        def write(fs: Any) -> None:
            self._makedirs(fs, folder)
            write_whole(fs, self._path(rel), data=data, src=src, direct=self.object_store)

        self._op(f"writing {rel}", write, miss_ok=False)

    def put_object(self, cid: str, src: Path) -> bool:
        """Upload ``src`` as object ``cid`` (the caller hashed it); False when the remote is down."""
        if not is_cid(cid):
            raise ValueError(f"not a CID: {cid!r}")
        try:
            self._write(f"objects/{cid}", src=src)
        except _Down:
            return False
        self._count(objects_up=1, bytes_up=src.stat().st_size)
        return True

    def push_run(self, doc: RunDoc, local: Mapping[str, Path | None]) -> int:
        """Push a run: the objects the remote lacks first (from ``local``: CID -> file here, None for
        one this machine never downloaded), then its signed record. Returns the number of objects
        uploaded, or -1 when the remote is down (warned once). KeyError names an output that is
        neither here nor on the remote (nothing of the record is written then)."""
        if not self.writable:
            raise UserInputError(f"remote cache {self.display} is read-only")
        cids = sorted(set(doc.outputs.values()))
        try:
            present = self.has_objects(cids)
            if self._down is not None:
                return -1
            missing = [c for c in cids if c not in present]
            for c in missing:
                if local.get(c) is None:
                    raise KeyError(c)
            sent = self._map(lambda c: self.put_object(c, local[c]), missing)  # type: ignore[arg-type]
            if self._down is not None or not all(sent):
                return -1
            from kolmbuild.remote.envelope import seal

            envelope = seal(doc.payload(), RUN_TYPE, self.signing_key())
            self._write(f"runs/{doc.key}.json", envelope)
        except _Down:
            return -1
        self._count(records_up=1, bytes_up=len(envelope))
        return len(missing)

    def put_entry(self, kind: str, name: str, payload: bytes, *, wait: bool = False) -> bool:
        """Share an entry, signed. In the background unless ``wait`` (:meth:`flush` waits for those).
        Does nothing unless pushing; returns False when nothing was (or will be) written."""
        if not self.push_enabled or kind not in KINDS or not _ENTRY.fullmatch(name) or self._down is not None:
            return False
        from kolmbuild.remote.envelope import seal

        key = self.signing_key()

        def send() -> bool:
            try:
                self._write(f"{kind}/{name}.json", seal(payload, KINDS[kind], key))
            except _Down:
                return False
            self._count(bytes_up=len(payload))
            return True

        if wait:
            return send()
        future = self._executor().submit(send)
        with self._lock:
            self._pending.append(future)
        return True

    def flush(self) -> None:
        """Wait for the background uploads; a RemoteUnavailable among them is raised here."""
        with self._lock:
            pending, self._pending = self._pending, []
        error: BaseException | None = None
        for f in pending:
            try:
                f.result()
            except RemoteUnavailable as exc:
                error = error or exc
        if error is not None:
            raise error

    # ------------------------------------------------------------------ inventory

    def listing(self, kind: str) -> list[tuple[str, int]]:
        """(name, size) of everything under ``objects``, ``runs`` or a shared kind (for push and the bench)."""
        try:
            entries = self._op(f"listing {kind}/", lambda fs: fs.ls(self._path(kind), detail=True))
        except (FileNotFoundError, _Down):
            return []
        out = []
        for e in entries:
            name = str(e["name"]).rstrip("/").rsplit("/", 1)[-1]
            if e.get("type") == "file" and not name.startswith("."):
                out.append((name, int(e.get("size") or 0)))
        return out
