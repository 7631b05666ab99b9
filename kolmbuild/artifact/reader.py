"""Open a .kolm file safely: strict zip parsing, manifest validation, members checked against it.

:func:`open_artifact` is the one entry point for every consumer (run, serve, publish, eval). It
never writes outside the folder it is given, never trusts declared sizes, and refuses anything
the manifest does not list.
"""

from __future__ import annotations

import hashlib
import os
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType
from typing import Any

from pydantic import ValidationError

from kolmbuild.artifact.format import COMPONENTS, MANIFEST, SIGNATURE_MEMBERS, Manifest
from kolmbuild.artifact.zipio import Limits, ZipReader
from kolmbuild.data import strictjson
from kolmbuild.errors import ArtifactError
from kolmbuild.hashing import canonical_json, cid_of_json
from kolmbuild.hashing.cid import CID

MAX_MANIFEST = 16 * 1024**2
MAX_SIGNATURE = 1024**2


@dataclass(frozen=True)
class Component:
    path: str
    size: int
    media_type: str
    cid: str

    @property
    def filename(self) -> str:
        return self.path.rsplit("/", 1)[-1]


class Artifact:
    """An open .kolm file. Use as a context manager; reads are CID-checked."""

    def __init__(self, path: Path, zr: ZipReader, manifest: dict[str, Any], manifest_bytes: bytes) -> None:
        self.path = path
        self.zip = zr
        self.manifest = manifest
        self.manifest_bytes = manifest_bytes
        self.manifest_cid = str(cid_of_json(manifest))
        self.components: dict[str, Component] = {
            name: Component(e["path"], e["size"], e["media_type"], e["cid"])
            for name, e in sorted(manifest["components"].items())
        }

    # context manager -----------------------------------------------------------------------
    def __enter__(self) -> Artifact:
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()

    def close(self) -> None:
        self.zip.close()

    # members -----------------------------------------------------------------------------
    @property
    def member_names(self) -> list[str]:
        return list(self.zip.members)

    def has_member(self, name: str) -> bool:
        return name in self.zip.members

    def read_member(self, name: str, max_bytes: int = MAX_SIGNATURE) -> bytes:
        return self.zip.read(name, max_bytes)

    # components --------------------------------------------------------------------------
    def has(self, name: str) -> bool:
        return name in self.components

    def _component(self, name: str) -> Component:
        try:
            return self.components[name]
        except KeyError:
            present = ", ".join(self.components) or "none"
            raise ArtifactError(f"{self.path}: no component {name!r} (present: {present})") from None

    def iter_component(self, name: str) -> Iterator[bytes]:
        """The component's bytes in chunks; raises ArtifactError at the end if its CID does not match."""
        comp = self._component(name)
        h = hashlib.sha256()
        for block in self.zip.iter_member(comp.path):
            h.update(block)
            yield block
        if str(CID("raw", h.digest())) != comp.cid:
            raise ArtifactError(f"{self.path}: component {name!r} ({comp.path}) does not match its CID")

    def read(self, name: str) -> bytes:
        return b"".join(self.iter_component(name))

    def extract(self, name: str, dest_dir: Path) -> Path:
        """Write the component to ``dest_dir/<its file name>`` (checked, temp file + rename)."""
        comp = self._component(name)
        dest_dir = Path(dest_dir)
        dest_dir.mkdir(parents=True, exist_ok=True)
        dest = dest_dir / comp.filename
        if dest.resolve().parent != dest_dir.resolve():  # names come from a fixed table; belt and braces
            raise ArtifactError(f"{self.path}: component {name!r} would extract outside {dest_dir}")
        fd, tmp = tempfile.mkstemp(prefix=f".{comp.filename}.", dir=dest_dir)
        try:
            with os.fdopen(fd, "wb") as out:
                for block in self.iter_component(name):
                    out.write(block)
            os.replace(tmp, dest)
        except BaseException:
            Path(tmp).unlink(missing_ok=True)
            raise
        return dest


def load_artifact(path: Path, limits: Limits | None = None) -> Artifact:
    """Parse and structurally check ``path`` (no CID or signature checks: see verify)."""
    path = Path(path)
    zr = ZipReader.open(path, limits)
    try:
        if MANIFEST not in zr.members:
            raise ArtifactError(f"{path}: no {MANIFEST} (not a .kolm file?)")
        raw = zr.read(MANIFEST, MAX_MANIFEST)
        try:
            doc = strictjson.loads(raw)
        except strictjson.JSONRefused as exc:
            raise ArtifactError(f"{path}: {MANIFEST}: {exc}") from None
        if not isinstance(doc, dict):
            raise ArtifactError(f"{path}: {MANIFEST}: expected a JSON object")
        try:
            Manifest.model_validate(doc)
        except ValidationError as exc:
            first = exc.errors()[0]
            loc = ".".join(str(p) for p in first["loc"])
            raise ArtifactError(f"{path}: {MANIFEST}: {loc}: {first['msg']}") from None
        if canonical_json(doc) != raw:
            raise ArtifactError(f"{path}: {MANIFEST} is not canonical JSON (altered)")
        expected = {MANIFEST}
        for name, entry in doc["components"].items():
            kind = COMPONENTS.get(name)
            if kind is None:
                raise ArtifactError(f"{path}: {MANIFEST}: unknown component {name!r}")
            if entry["path"] != kind.path or entry["media_type"] != kind.media_type:
                raise ArtifactError(f"{path}: {MANIFEST}: component {name!r} must be {kind.path} ({kind.media_type})")
            member = zr.members.get(kind.path)
            if member is None:
                raise ArtifactError(f"{path}: component {name!r} is listed but {kind.path} is missing")
            if member.usize != entry["size"]:
                raise ArtifactError(
                    f"{path}: {kind.path} is {member.usize} bytes but the manifest says {entry['size']}"
                )
            expected.add(kind.path)
        if set(doc["absent"]) != set(COMPONENTS) - set(doc["components"]) or doc["absent"] != sorted(doc["absent"]):
            raise ArtifactError(f"{path}: {MANIFEST}: 'absent' does not match the components")
        extra = [n for n in zr.members if n not in expected and n not in SIGNATURE_MEMBERS]
        if extra:
            raise ArtifactError(f"{path}: entry {extra[0]!r} is not listed in the manifest")
        return Artifact(path, zr, doc, raw)
    except BaseException:
        zr.close()
        raise


def open_artifact(
    path: Path | str,
    *,
    verify: bool = True,
    pubkey: Any = None,
    hmac_key: bytes | str | None = None,
    limits: Limits | None = None,
    **verify_kw: Any,
) -> Artifact:
    """Open (and by default fully verify) a .kolm file; raise ArtifactError naming what failed."""
    art = load_artifact(Path(path), limits)
    if verify:
        from kolmbuild.artifact.verify import verify_open

        try:
            report = verify_open(art, pubkey=pubkey, hmac_key=hmac_key, **verify_kw)
        except BaseException:
            art.close()
            raise
        if not report.ok:
            art.close()
            raise ArtifactError(f"{path}: verification failed: {report.failure_text()}")
    return art
