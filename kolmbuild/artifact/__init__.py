"""The .kolm artifact (format ``kolm/1``): write, open safely, verify offline, inspect.

Pinned API (other packages code against it)::

    open_artifact(path, *, verify=True, pubkey=None, hmac_key=None) -> Artifact   # context manager
    Artifact.manifest, .manifest_cid, .components[name] -> Component(path, size, media_type, cid)
    Artifact.has(name), .read(name) -> bytes, .extract(name, dest_dir) -> Path
    verify_artifact(path, *, pubkey=None, hmac_key=None) -> VerifyReport(ok, checks)
    write_artifact(dest, *, target, version, task, components, ...) -> WrittenArtifact
"""

from __future__ import annotations

from kolmbuild.artifact.format import COMPONENTS, FORMAT
from kolmbuild.artifact.reader import Artifact, Component, load_artifact
from kolmbuild.artifact.verify import Check, VerifyReport, open_artifact, verify_artifact
from kolmbuild.artifact.writer import WrittenArtifact, write_artifact
from kolmbuild.artifact.zipio import Limits

__all__ = [
    "COMPONENTS",
    "FORMAT",
    "Artifact",
    "Check",
    "Component",
    "Limits",
    "VerifyReport",
    "WrittenArtifact",
    "load_artifact",
    "open_artifact",
    "verify_artifact",
    "write_artifact",
]
