"""The frozen ``kolm/1`` format: member names, component table, and the manifest's pydantic models.

A ``.kolm`` file is a zip with these members, in byte order of their names::

    components/<file>        one per present component (see COMPONENTS)
    manifest.json            RFC 8785 canonical JSON (see Manifest)
    signatures/hmac.json     optional HMAC-SHA256 over the manifest CID
    signatures/model.sig     Sigstore bundle (DSSE, in-toto, OpenSSF model-signing v1.0), EC P-256
    signatures/sigstore.sig  optional Sigstore keyless bundle over the same statement
    signatures/zip.json      ECDSA P-256 over the exact bytes of every entry before it (last entry)

docs/format.md is the user-facing specification; this module is its executable form.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

FORMAT = "kolm/1"
MANIFEST = "manifest.json"
COMPONENTS_DIR = "components/"
SIGNATURES_DIR = "signatures/"
SIG_HMAC = "signatures/hmac.json"
SIG_MODEL = "signatures/model.sig"
SIG_SIGSTORE = "signatures/sigstore.sig"
SIG_ZIP = "signatures/zip.json"
SIGNATURE_MEMBERS = (SIG_HMAC, SIG_MODEL, SIG_SIGSTORE, SIG_ZIP)

# zip methods
STORED = 0
DEFLATED = 8


@dataclass(frozen=True)
class ComponentKind:
    name: str
    filename: str
    media_type: str
    method: int  # STORED for already-dense binaries, DEFLATED otherwise

    @property
    def path(self) -> str:
        return COMPONENTS_DIR + self.filename


COMPONENTS: dict[str, ComponentKind] = {
    k.name: k
    for k in (
        ComponentKind("adapter", "adapter_model.safetensors", "application/vnd.safetensors", STORED),
        ComponentKind("adapter_config", "adapter_config.json", "application/json", DEFLATED),
        ComponentKind("adapter_gguf", "adapter.gguf", "application/vnd.gguf", STORED),
        ComponentKind("base_gguf", "base.gguf", "application/vnd.gguf", STORED),
        ComponentKind("eval", "eval.json", "application/json", DEFLATED),
        ComponentKind("heldout", "heldout.jsonl", "application/jsonl", DEFLATED),
        ComponentKind("index", "index.sqlite", "application/vnd.sqlite3", DEFLATED),
        ComponentKind("recipes", "recipes.json", "application/json", DEFLATED),
        ComponentKind("verifier", "verifier.json", "application/json", DEFLATED),
    )
}
COMPONENT_BY_PATH = {k.path: k for k in COMPONENTS.values()}


def member_method(name: str) -> int:
    """The compression method kolm/1 prescribes for a member (part of the canonical layout).

    Signatures are stored: stored bytes have exactly one encoding, so ``signatures/zip.json``
    (the one entry no signature covers) cannot be re-encoded without changing what it says.
    """
    if name.startswith(SIGNATURES_DIR):
        return STORED
    kind = COMPONENT_BY_PATH.get(name)
    return kind.method if kind else DEFLATED


# ------------------------------------------------------------------------------------ manifest


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class ComponentEntry(_Strict):
    path: str
    size: int = Field(ge=0)
    media_type: str
    cid: str


class BaseRef(_Strict):
    name: str
    sha256: str | None = None
    file: str | None = None
    revision: str | None = None
    quantize: str | None = None


class SignerInfo(_Strict):
    algorithm: Literal["ecdsa-p256-sha256"] = "ecdsa-p256-sha256"
    fingerprint: str  # sha256 hex of the public key's PEM (SubjectPublicKeyInfo), as model-signing hints it
    public_key: str  # PEM


class Manifest(_Strict):
    """manifest.json. Free-form blocks (task, compute, gates, metrics, toolchain) are JSON objects."""

    format: Literal["kolm/1"]
    target: str
    version: str
    created: str
    task: dict[str, Any]
    base: BaseRef | None = None
    components: dict[str, ComponentEntry]
    absent: list[str]
    receipts: list[dict[str, Any]]
    compute: dict[str, Any]
    gates: dict[str, Any]
    metrics: dict[str, Any]
    toolchain: dict[str, Any]
    signer: SignerInfo


class ZipSigRecord(_Strict):
    """signatures/zip.json: the signed prefix of the archive (every byte before this entry)."""

    algorithm: Literal["ecdsa-p256-sha256"]
    key: str  # the signer's fingerprint
    length: int = Field(ge=0)  # bytes covered: from offset 0 to this entry's local header
    sha256: str
    sig: str  # base64 ECDSA signature over the canonical JSON of the other four fields


class HmacRecord(_Strict):
    """signatures/hmac.json."""

    algorithm: Literal["hmac-sha256"]
    key_id: str
    manifest: str  # the manifest CID the MAC covers
    mac: str  # hex
