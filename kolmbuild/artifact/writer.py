"""Write a kolm/1 artifact: components + canonical manifest + signatures, deterministically.

Two writes of the same inputs give byte-identical files: the manifest holds no wall-clock time
(``created`` comes from ``$SOURCE_DATE_EPOCH``, else is fixed at 1980-01-01), the zip layout is
canonical (see :mod:`kolmbuild.artifact.zipio`) and ECDSA signatures are deterministic (RFC 6979).
"""

from __future__ import annotations

import hashlib
import importlib.metadata
import os
import platform
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from pydantic import ValidationError

from kolmbuild import __version__
from kolmbuild.artifact.format import (
    COMPONENTS,
    FORMAT,
    MANIFEST,
    SIG_HMAC,
    SIG_MODEL,
    SIG_SIGSTORE,
    SIG_ZIP,
    Manifest,
)
from kolmbuild.artifact.keys import SigningKey, public_pem, resolve_signing_key
from kolmbuild.artifact.receipts import receipt_mismatches
from kolmbuild.artifact.signing import make_bundle, make_hmac, make_zip_sig, statement
from kolmbuild.artifact.zipio import CHUNK, write_zip
from kolmbuild.errors import ArtifactError, UserInputError
from kolmbuild.hashing import canonical_json, cid_of_json
from kolmbuild.hashing.cid import CID, parse_cid

FIXED_EPOCH = "1980-01-01T00:00:00Z"
TOOLCHAIN_PACKAGES = (
    "accelerate", "axolotl", "click", "cryptography", "datasets", "gguf", "hydra-core", "llama-cpp-python",
    "model-signing", "numpy", "peft", "pydantic", "sentence-transformers", "sigstore", "sqlite-vec", "torch",
    "transformers", "trl",
)  # fmt: skip


@dataclass(frozen=True)
class WrittenArtifact:
    path: Path
    manifest_cid: str
    sha256: str
    size: int
    manifest: dict[str, Any]


def build_timestamp() -> str:
    """``$SOURCE_DATE_EPOCH`` as ISO 8601 UTC, else the fixed 1980-01-01 (never the wall clock)."""
    raw = os.environ.get("SOURCE_DATE_EPOCH")
    if not raw:
        return FIXED_EPOCH
    try:
        epoch = int(raw)
    except ValueError as exc:
        raise UserInputError(f"SOURCE_DATE_EPOCH={raw!r}: expected whole seconds since 1970") from exc
    return datetime.fromtimestamp(epoch, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def toolchain(packages: Iterable[str] = TOOLCHAIN_PACKAGES) -> dict[str, Any]:
    """kolmbuild, Python and the versions of key libraries that are installed (others are left out)."""
    found: dict[str, str] = {}
    for name in sorted(packages):
        try:
            found[name] = importlib.metadata.version(name)
        except importlib.metadata.PackageNotFoundError:
            continue
    return {"kolmbuild": __version__, "python": platform.python_version(), "packages": found}


def _sha256_of(src: bytes | Path) -> tuple[str, int]:
    if isinstance(src, bytes):
        return hashlib.sha256(src).hexdigest(), len(src)
    h = hashlib.sha256()
    size = 0
    with open(src, "rb") as f:
        while block := f.read(CHUNK):
            h.update(block)
            size += len(block)
    return h.hexdigest(), size


def _jsonable(value: Any, where: str) -> Any:
    try:
        canonical_json(value)
    except (TypeError, ValueError) as exc:
        raise ArtifactError(f"manifest {where}: not JSON-serializable: {exc}") from exc
    return value


def component_entry(name: str, digest: str, size: int) -> dict[str, Any]:
    kind = COMPONENTS[name]
    return {"path": kind.path, "size": size, "media_type": kind.media_type, "cid": str(CID("raw", bytes.fromhex(digest)))}


def signer_block(key: SigningKey) -> dict[str, str]:
    return {
        "algorithm": "ecdsa-p256-sha256",
        "fingerprint": key.fingerprint,
        "public_key": public_pem(key.public_key).decode("ascii"),
    }


def write_artifact(
    dest: Path,
    *,
    target: str,
    version: str,
    task: Mapping[str, Any],
    components: Mapping[str, bytes | Path],
    base: Mapping[str, Any] | None = None,
    receipts: Iterable[Mapping[str, Any]] = (),
    compute: Mapping[str, Any] | None = None,
    gates: Mapping[str, Any] | None = None,
    metrics: Mapping[str, Any] | None = None,
    toolchain_info: Mapping[str, Any] | None = None,
    created: str | None = None,
    signing_key: SigningKey | None = None,
    hmac_key: bytes | None = None,
    log: Callable[[str], None] | None = None,
) -> WrittenArtifact:
    """Write ``dest`` (temp file + rename) and return its identity.

    ``components`` maps standard names (see ``format.COMPONENTS``) to bytes or files; standard names
    not given are listed under ``absent``. ``signing_key`` defaults to the configured key (created on
    first use, said through ``log``); ``hmac_key`` adds ``signatures/hmac.json``. Secrets never
    enter the file.
    """
    unknown = sorted(set(components) - set(COMPONENTS))
    if unknown:
        raise ArtifactError(f"unknown component(s) {unknown}; kolm/1 knows {sorted(COMPONENTS)}")
    for name, src in components.items():
        if isinstance(src, Path) and not src.is_file():
            raise ArtifactError(f"component {name!r}: {src} is not a file")
    key = signing_key or resolve_signing_key(log)

    entries: dict[str, dict[str, Any]] = {}
    for name in sorted(components):
        digest, size = _sha256_of(components[name])
        entries[name] = component_entry(name, digest, size)

    manifest_doc: dict[str, Any] = {
        "format": FORMAT,
        "target": target,
        "version": version,
        "created": created or build_timestamp(),
        "task": _jsonable(dict(task), "task"),
        "components": entries,
        "absent": sorted(set(COMPONENTS) - set(components)),
        "receipts": _jsonable([dict(r) for r in receipts], "receipts"),
        "compute": _jsonable(dict(compute or {}), "compute"),
        "gates": _jsonable(dict(gates or {}), "gates"),
        "metrics": _jsonable(dict(metrics or {}), "metrics"),
        "toolchain": _jsonable(dict(toolchain_info if toolchain_info is not None else toolchain()), "toolchain"),
        "signer": signer_block(key),
    }
    if base is not None:
        manifest_doc["base"] = _jsonable(dict(base), "base")
    hmac_record = make_hmac(hmac_key, str(cid_of_json(manifest_doc))) if hmac_key else None
    return seal(dest, manifest_doc, components, key, hmac_record=hmac_record)


def seal(
    dest: Path,
    manifest_doc: Mapping[str, Any],
    components: Mapping[str, bytes | Path],
    key: SigningKey,
    *,
    hmac_record: bytes | None = None,
    sigstore_bundle: bytes | Callable[[bytes], bytes] | None = None,
) -> WrittenArtifact:
    """Write components, manifest and signatures as a canonical kolm/1 zip.

    The manifest must already list ``components`` (checked here); ``sigstore_bundle`` is a bundle
    over this archive's statement, or a function that makes one from the statement.
    """
    doc = dict(manifest_doc)
    try:
        Manifest.model_validate(doc)
    except ValidationError as exc:
        raise ArtifactError(f"invalid manifest for {dest}: {exc}") from exc
    if doc["signer"]["fingerprint"] != key.fingerprint:
        raise ArtifactError("the manifest names a different signer than the signing key")
    if set(doc["components"]) != set(components):
        raise ArtifactError("the manifest's components differ from the files given")
    mismatches = receipt_mismatches(doc)
    if mismatches:  # a component changed after its stage made it (a damaged cache object): never sign it
        raise ArtifactError(f"refusing to seal {dest.name}: " + "; ".join(mismatches))
    members: list[tuple[str, bytes | Path]] = []
    digests: dict[str, str] = {}
    for name, src in components.items():
        entry = doc["components"][name]
        digests[entry["path"]] = parse_cid(entry["cid"]).hex
        members.append((entry["path"], src))
    manifest_bytes = canonical_json(doc)
    manifest_cid = str(cid_of_json(doc))
    digests[MANIFEST] = hashlib.sha256(manifest_bytes).hexdigest()
    payload = statement(doc["target"], digests)
    members.append((MANIFEST, manifest_bytes))
    members.append((SIG_MODEL, make_bundle(payload, key.private_key)))
    if hmac_record is not None:
        members.append((SIG_HMAC, hmac_record))
    if sigstore_bundle is not None:
        bundle = sigstore_bundle(payload) if callable(sigstore_bundle) else sigstore_bundle
        members.append((SIG_SIGSTORE, bundle))

    def trailer(length: int, sha256: str) -> list[tuple[str, bytes]]:
        return [(SIG_ZIP, make_zip_sig(length, sha256, key.private_key))]

    write_zip(dest, members, trailer)
    digest, size = _sha256_of(dest)
    return WrittenArtifact(dest, manifest_cid, digest, size, doc)
