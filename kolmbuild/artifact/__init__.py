"""The .kolm artifact (format ``kolm/1``): write, open safely, verify offline, inspect.

Pinned API (other packages code against it)::

    open_artifact(path, *, verify=True, pubkey=None, hmac_key=None) -> Artifact   # context manager
    Artifact.manifest, .manifest_cid, .components[name] -> Component(path, size, media_type, cid)
    Artifact.has(name), .read(name) -> bytes, .extract(name, dest_dir) -> Path
    verify_artifact(path, *, pubkey=None, hmac_key=None) -> VerifyReport(ok, checks)
    write_artifact(dest, *, target, version, task, components, ...) -> WrittenArtifact
"""

from __future__ import annotations

from typing import Any

# Loaded on first use (as kolmbuild.hashing does): importing kolmbuild.artifact.keys for a remote
# cache's signatures must not load the whole artifact reader and writer.
_EXPORTS = {
    "COMPONENTS": "kolmbuild.artifact.format",
    "FORMAT": "kolmbuild.artifact.format",
    "Artifact": "kolmbuild.artifact.reader",
    "Component": "kolmbuild.artifact.reader",
    "load_artifact": "kolmbuild.artifact.reader",
    "open_artifact": "kolmbuild.artifact.reader",
    "Check": "kolmbuild.artifact.verify",
    "VerifyReport": "kolmbuild.artifact.verify",
    "verify_artifact": "kolmbuild.artifact.verify",
    "WrittenArtifact": "kolmbuild.artifact.writer",
    "write_artifact": "kolmbuild.artifact.writer",
    "Limits": "kolmbuild.artifact.zipio",
}

__all__ = sorted(_EXPORTS)


def __getattr__(name: str) -> Any:
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module 'kolmbuild.artifact' has no attribute {name!r}")
    import importlib

    return getattr(importlib.import_module(module), name)
