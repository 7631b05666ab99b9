"""A registry of ``.kolm`` files on any fsspec URL (a folder, ``memory://``, ``s3://``, ``ssh://``).

Layout under the URL::

    index.json                 {"kind":"kolm-registry","version":1,"entries":[…]}
    artifacts/<CID>.kolm       each artifact, keyed by its manifest CID

An index entry names the target, version, K-score, CID, size and SHA-256. Publishing the same
artifact twice is a no-op; publishing a *different* artifact under a name and version that exist
is refused (exit 2). Pulling downloads to a temp file beside the destination, verifies the
artifact (signature and component hashes, through :mod:`kolmbuild.artifact`) and that its manifest
CID and file hash are the ones the index names, and only then renames it into place.

Blobs and the index are written under a temporary name and then moved, so a reader never sees a
half-written file. Two publishers racing on one registry are not serialized (the index is re-read
just before it is written, which narrows but does not close the window).
"""

from __future__ import annotations

import hashlib
import posixpath
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from kolmbuild.atomic import atomic_path
from kolmbuild.errors import ArtifactError, KolmError, UserInputError
from kolmbuild.remote.storage import write_whole

INDEX = "index.json"
BLOBS = "artifacts"


class IndexEntry(BaseModel):
    model_config = ConfigDict(extra="allow")

    name: str
    version: str
    cid: str
    k_score: float | None = None
    size: int = Field(ge=0)
    sha256: str
    published: str
    path: str  # relative to the registry root


class RegistryIndex(BaseModel):
    model_config = ConfigDict(extra="allow")

    kind: Literal["kolm-registry"] = "kolm-registry"
    version: Literal[1] = 1
    entries: list[IndexEntry] = []


@dataclass(frozen=True)
class ArtifactInfo:
    name: str
    version: str
    cid: str
    k_score: float | None


def artifact_info(path: Path, **verify_kw: Any) -> ArtifactInfo:
    """Name, version, K-score and manifest CID of a .kolm file, read (and verified) with kolmbuild.artifact."""
    from kolmbuild.artifact.verify import open_artifact  # the signing code loads when a registry reads one

    with open_artifact(path, **verify_kw) as art:
        m = art.manifest
        k = (m.get("metrics") or {}).get("K")
        name, version = m.get("target"), m.get("version")
        if not name or not version:
            raise ArtifactError(f"{path}: the manifest names no target or version")
        return ArtifactInfo(
            str(name), str(version), str(art.manifest_cid), float(k) if k is not None else None
        )


def verify_file(path: Path, **verify_kw: Any) -> None:
    """Raise ArtifactError naming every failed :class:`~kolmbuild.artifact.verify.Check` of
    :func:`~kolmbuild.artifact.verify.verify_artifact` (each as ``name: detail``)."""
    from kolmbuild.artifact.verify import verify_artifact

    report = verify_artifact(path, **verify_kw)
    if not report.ok:
        raise ArtifactError(f"{path}: verification failed: {report.failure_text()}")


def parse_spec(spec: str) -> tuple[str, str | None]:
    name, _, version = spec.partition("@")
    if not name or "/" in name or (spec.endswith("@")):
        raise UserInputError(f"{spec!r}: expected NAME or NAME@VERSION")
    return name, version or None


def _version_key(v: str) -> tuple[int, Any]:
    from packaging.version import InvalidVersion, Version

    try:
        return (1, Version(v))
    except InvalidVersion:
        return (0, v)


def _sha256(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


@dataclass(frozen=True)
class PublishResult:
    entry: IndexEntry
    created: bool  # False: the same artifact was already published
    url: str


@dataclass(frozen=True)
class PullResult:
    entry: IndexEntry
    path: Path


class Registry:
    """One registry URL. ``inspect``/``verify`` default to :mod:`kolmbuild.artifact`."""

    def __init__(
        self,
        url: str,
        *,
        storage_options: dict[str, Any] | None = None,
        inspect: Callable[..., ArtifactInfo] | None = None,
        verify: Callable[..., None] | None = None,
    ) -> None:
        import fsspec

        self.url = url
        self._inspect = inspect or artifact_info
        self._verify = verify or verify_file
        target = _ssh_to_sftp(url)
        try:
            self.fs, root = fsspec.core.url_to_fs(target, **(storage_options or {}))
        except (ImportError, ValueError) as exc:
            raise KolmError(f"{url}: cannot open this registry URL: {exc}") from exc
        self.root = root.rstrip("/") or "/"

    def _p(self, *parts: str) -> str:
        return posixpath.join(self.root, *parts)

    # ------------------------------------------------------------------ index

    def index(self) -> RegistryIndex:
        path = self._p(INDEX)
        try:
            if not self.fs.exists(path):
                return RegistryIndex()
            raw = self.fs.cat_file(path)
        except OSError as exc:
            raise KolmError(f"{self.url}: cannot read {INDEX}: {exc}") from exc
        try:
            return RegistryIndex.model_validate_json(raw)
        except ValidationError as exc:
            raise UserInputError(
                f"{self.url}/{INDEX}: not a kolmbuild registry index: {exc.errors()[0]['msg']}"
            ) from exc

    def _write(self, rel: str, data: bytes | None = None, *, local: Path | None = None) -> None:
        final = self._p(rel)
        self.fs.makedirs(posixpath.dirname(final), exist_ok=True)
        write_whole(self.fs, final, data=data, src=local)

    def find(self, name: str, version: str | None = None) -> IndexEntry:
        entries = [e for e in self.index().entries if e.name == name]
        if not entries:
            raise UserInputError(f"{self.url}: no artifact named {name!r}")
        if version is not None:
            hit = [e for e in entries if e.version == version]
            if not hit:
                have = ", ".join(sorted({e.version for e in entries}, key=_version_key))
                raise UserInputError(f"{self.url}: no {name}@{version}", hint=f"versions: {have}")
            return hit[0]
        return max(entries, key=lambda e: (_version_key(e.version), e.published))

    # ------------------------------------------------------------------ publish / pull

    def publish(self, path: Path, **verify_kw: Any) -> PublishResult:
        path = Path(path)
        if not path.is_file():
            raise UserInputError(f"{path}: no such file")
        self._verify(path, **verify_kw)
        info = self._inspect(path, **verify_kw)
        self._check_conflict(info)
        existing = self._same(info)
        if existing is not None:
            return PublishResult(existing, False, self.url)
        rel = f"{BLOBS}/{info.cid}.kolm"
        if not self.fs.exists(self._p(rel)):
            self._write(rel, local=path)
        entry = IndexEntry(
            name=info.name,
            version=info.version,
            cid=info.cid,
            k_score=info.k_score,
            size=path.stat().st_size,
            sha256=_sha256(path),
            published=datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
            path=rel,
        )
        self._check_conflict(info)  # re-read: another publisher may have raced us
        index = self.index()
        index.entries.append(entry)
        index.entries.sort(key=lambda e: (e.name, _version_key(e.version)))
        self._write(INDEX, index.model_dump_json(indent=2).encode())
        return PublishResult(entry, True, self.url)

    def _same(self, info: ArtifactInfo) -> IndexEntry | None:
        for e in self.index().entries:
            if e.name == info.name and e.version == info.version and e.cid == info.cid:
                return e
        return None

    def _check_conflict(self, info: ArtifactInfo) -> None:
        for e in self.index().entries:
            if e.name == info.name and e.version == info.version and e.cid != info.cid:
                raise ArtifactError(
                    f"{self.url}: {info.name}@{info.version} is already published as a different artifact "
                    f"(registry {e.cid}, this file {info.cid}); refusing to overwrite it",
                    hint="bump task.version and rebuild, or publish to another registry",
                )

    def pull(self, spec: str, out: Path | None = None, **verify_kw: Any) -> PullResult:
        name, version = parse_spec(spec)
        entry = self.find(name, version)
        dest = Path(out) if out is not None else Path(f"{entry.name}-{entry.version}.kolm")
        with atomic_path(dest) as tmp:  # verified first: only a good artifact lands at dest
            try:
                self.fs.get_file(self._p(entry.path), str(tmp))
            except (OSError, FileNotFoundError) as exc:
                raise KolmError(f"{self.url}: cannot fetch {entry.path}: {exc}") from exc
            digest = _sha256(tmp)
            if digest != entry.sha256:
                raise ArtifactError(
                    f"{self.url}/{entry.path}: SHA-256 {digest[:16]}… does not match the index ({entry.sha256[:16]}…)"
                )
            self._verify(tmp, **verify_kw)
            info = self._inspect(tmp, **verify_kw)
            if info.cid != entry.cid or info.name != entry.name or info.version != entry.version:
                raise ArtifactError(
                    f"{self.url}/{entry.path}: the artifact is {info.name}@{info.version} ({info.cid}), "
                    f"the index says {entry.name}@{entry.version} ({entry.cid})"
                )
        return PullResult(entry, dest)


def _ssh_to_sftp(url: str) -> str:
    """fsspec's ``ssh://`` needs the sshfs package; its built-in paramiko ``sftp://`` does the same job."""
    if url.startswith("ssh://"):
        try:
            import sshfs  # noqa: F401
        except ModuleNotFoundError:
            return "sftp://" + url[len("ssh://") :]
    return url
