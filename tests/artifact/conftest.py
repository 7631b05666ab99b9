"""Artifacts for the kolm/1 tests: a fixed signing key (so outputs are exact), sample components."""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec

from kolmbuild.artifact import WrittenArtifact, write_artifact
from kolmbuild.artifact.keys import SigningKey, keys_dir

FIXED_SCALAR = 0x4B4F4C4D2F31  # "KOLM/1": a deterministic key so --json outputs can be asserted exactly
TOOLCHAIN = {"kolmbuild": "test", "python": "3.11", "packages": {}}


def fixed_key(scalar: int = FIXED_SCALAR) -> SigningKey:
    return SigningKey(ec.derive_private_key(scalar, ec.SECP256R1()), None)


def install_key(key: SigningKey, name: str = "kolm-signing") -> Path:
    """Make ``key`` the user's signing key (and so a trusted one)."""
    d = keys_dir()
    d.mkdir(parents=True, exist_ok=True)
    pem = key.private_key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )
    path = d / f"{name}.pem"
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "wb") as f:
        f.write(pem)
    (d / f"{name}.pub").write_bytes(
        key.public_key.public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
    )
    return path


def sample_components(note: str = "a") -> dict[str, bytes]:
    heldout = b"".join(
        b'{"id":%d,"input":"Patient John Doe seen on 2024-01-%02d","output":"Patient [NAME] seen on [DATE]"}\n'
        % (i, i % 28 + 1)
        for i in range(200)
    )
    return {
        "recipes": b'{"kind":"recipes","note":"%s","recipes":[]}' % note.encode(),
        "heldout": heldout,
        "verifier": b'{"kind":"exact"}',
        "eval": b'{"K":0.9}',
        "adapter_gguf": bytes(range(256)) * 8,  # a stored (not deflated) member
        "index": b"SQLite format 3\x00" + bytes(4000),
    }


def write_sample(dest: Path, *, key: SigningKey | None = None, note: str = "a", **kw: Any) -> WrittenArtifact:
    args: dict[str, Any] = {
        "target": "phi",
        "version": "0.1.0",
        "task": {"name": "phi", "version": "0.1.0", "shape": {"input": "text", "output": "text"}},
        "components": sample_components(note),
        "base": {"name": "smollm2", "sha256": "ab" * 32},
        "receipts": [{"stage": "ingest", "version": 1, "key": "bkey", "outputs": {}, "metrics": {"rows": 3}}],
        "compute": {"backend": "local-cpu", "device": "cpu"},
        "gates": {"K_min": 0.7},
        "metrics": {"K": 0.9, "terms": {"A": 1.0, "S": 0.8, "L": 0.9, "C": 0.7, "V": 1.0}},
        "toolchain_info": TOOLCHAIN,
        "signing_key": key or fixed_key(),
    }
    args.update(kw)
    return write_artifact(dest, **args)


@pytest.fixture
def key() -> SigningKey:
    k = fixed_key()
    install_key(k)
    return k


@pytest.fixture
def sample(tmp_path: Path, key: SigningKey) -> WrittenArtifact:
    return write_sample(tmp_path / "a.kolm", key=key)


@pytest.fixture
def make_sample(tmp_path: Path, key: SigningKey) -> Callable[..., WrittenArtifact]:
    def make(name: str = "x.kolm", **kw: Any) -> WrittenArtifact:
        kw.setdefault("key", key)
        return write_sample(tmp_path / name, **kw)

    return make
