"""The .kolm artifact (format ``kolm/1``): write, open safely, verify offline, inspect.

Pinned API (other packages code against it)::

    open_artifact(path, *, verify=True, pubkey=None, hmac_key=None) -> Artifact   # context manager
    Artifact.manifest, .manifest_cid, .components[name] -> Component(path, size, media_type, cid)
    Artifact.has(name), .read(name) -> bytes, .extract(name, dest_dir) -> Path
    verify_artifact(path, *, pubkey=None, hmac_key=None) -> VerifyReport(ok, checks)
    write_artifact(dest, *, target, version, task, components, ...) -> WrittenArtifact
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:  # the names as mypy and editors see them; at run time each loads on first use
    from kolmbuild.artifact.format import COMPONENTS as COMPONENTS
    from kolmbuild.artifact.format import FORMAT as FORMAT
    from kolmbuild.artifact.reader import Artifact as Artifact
    from kolmbuild.artifact.reader import Component as Component
    from kolmbuild.artifact.reader import load_artifact as load_artifact
    from kolmbuild.artifact.verify import Check as Check
    from kolmbuild.artifact.verify import VerifyReport as VerifyReport
    from kolmbuild.artifact.verify import open_artifact as open_artifact
    from kolmbuild.artifact.verify import verify_artifact as verify_artifact
    from kolmbuild.artifact.writer import WrittenArtifact as WrittenArtifact
    from kolmbuild.artifact.writer import write_artifact as write_artifact
    from kolmbuild.artifact.zipio import Limits as Limits

# Loaded on first use (as kolmbuild.hashing does): importing kolmbuild.artifact.keys for a remote
# cache's signatures must not load the whole artifact reader and writer.
_EXPORTS = {
    "COMPONENTS": "kolmbuild.artifact.format",
    "FORMAT": "kolmbuild.artifact.format",
    "Artifact": "kolmbuild.artifact.reader",
    "Component": "kolmbuild.artifact.reader",
    "load_artifact": "kolmbuild.artifact.reader",
    "Check": "kolmbuild.artifact.verify",
    "open_artifact": "kolmbuild.artifact.verify",
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
