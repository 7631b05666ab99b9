"""Publish ``.kolm`` files to, and pull them from, a registry on any fsspec URL."""

from __future__ import annotations

from kolmbuild.publish.registry import (
    ArtifactInfo,
    IndexEntry,
    PublishResult,
    PullResult,
    Registry,
    RegistryIndex,
    artifact_info,
    parse_spec,
    verify_file,
)

__all__ = [
    "ArtifactInfo",
    "IndexEntry",
    "PublishResult",
    "PullResult",
    "Registry",
    "RegistryIndex",
    "artifact_info",
    "parse_spec",
    "verify_file",
]
