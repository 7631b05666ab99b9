"""CIDv1: multibase base32 (``b`` prefix), sha2-256 multihash, raw or json codec.

``raw`` (0x55) names blobs: files and stage outputs. ``json`` (0x0200) names canonical-JSON
documents: manifests, stage keys, directory listings.
"""

from __future__ import annotations

import base64
import hashlib
from dataclasses import dataclass
from typing import Any

from kolmbuild.hashing.jcs import canonical_json

CIDV1 = 0x01
SHA2_256 = 0x12
CODECS = {"raw": 0x55, "json": 0x0200}
_CODEC_NAMES = {v: k for k, v in CODECS.items()}


def _varint(n: int) -> bytes:
    out = bytearray()
    while True:
        byte = n & 0x7F
        n >>= 7
        if n:
            out.append(byte | 0x80)
        else:
            out.append(byte)
            return bytes(out)


def _read_varint(data: bytes, pos: int) -> tuple[int, int]:
    value = shift = 0
    while True:
        if pos >= len(data):
            raise ValueError("truncated varint")
        byte = data[pos]
        pos += 1
        value |= (byte & 0x7F) << shift
        if not byte & 0x80:
            return value, pos
        shift += 7
        if shift > 63:
            raise ValueError("varint too long")


@dataclass(frozen=True, slots=True)
class CID:
    """A content identifier: codec name and sha2-256 digest."""

    codec: str
    digest: bytes

    def __post_init__(self) -> None:
        if self.codec not in CODECS:
            raise ValueError(f"unsupported codec {self.codec!r}")
        if len(self.digest) != 32:
            raise ValueError("sha2-256 digest must be 32 bytes")

    def to_bytes(self) -> bytes:
        return _varint(CIDV1) + _varint(CODECS[self.codec]) + bytes((SHA2_256, 32)) + self.digest

    def __str__(self) -> str:
        return "b" + base64.b32encode(self.to_bytes()).decode("ascii").lower().rstrip("=")

    @property
    def hex(self) -> str:
        return self.digest.hex()


def parse_cid(text: str) -> CID:
    """Parse a base32 CIDv1 string as written by :class:`CID`; raise ValueError otherwise."""
    if not text or text[0] != "b":
        raise ValueError(f"not a base32 CIDv1: {text!r}")
    body = text[1:].upper()
    body += "=" * (-len(body) % 8)
    try:
        raw = base64.b32decode(body)
    except Exception as exc:  # binascii.Error
        raise ValueError(f"not a base32 CIDv1: {text!r}") from exc
    version, pos = _read_varint(raw, 0)
    codec, pos = _read_varint(raw, pos)
    if version != CIDV1 or codec not in _CODEC_NAMES:
        raise ValueError(f"unsupported CID version/codec in {text!r}")
    if raw[pos : pos + 2] != bytes((SHA2_256, 32)) or len(raw) != pos + 34:
        raise ValueError(f"CID {text!r} is not a sha2-256 multihash")
    return CID(_CODEC_NAMES[codec], raw[pos + 2 :])


def cid_of_bytes(data: bytes) -> CID:
    return CID("raw", hashlib.sha256(data).digest())


def cid_of_digest(digest: bytes, codec: str = "raw") -> CID:
    return CID(codec, digest)


def cid_of_json(value: Any) -> CID:
    """CID (json codec) of the RFC 8785 canonical form of ``value``."""
    return CID("json", hashlib.sha256(canonical_json(value)).digest())
