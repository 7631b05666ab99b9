"""DSSE v1 pieces shared by the artifact's model signature and the remote cache's signed records:
the pre-authentication encoding a signature covers, and strict base64 for the envelope's fields.

Small enough to keep here rather than take a dependency: sigstore-python carries a DSSE module, but
only inside its optional extra, and both users need the exact bytes pinned by our own tests."""

from __future__ import annotations

import base64
import binascii


def pae(payload_type: str, payload: bytes) -> bytes:
    """DSSE v1 pre-authentication encoding: what a signature covers (type and body, length-prefixed)."""
    t = payload_type.encode()
    return b"DSSEv1 %d %s %d %s" % (len(t), t, len(payload), payload)


def b64(data: bytes) -> str:
    return base64.b64encode(data).decode("ascii")


def unb64(text: object, what: str, error: type[Exception]) -> bytes:
    """Decode a base64 field of an envelope, raising ``error`` naming ``what`` unless it is a string of
    canonical base64 (one encoding per byte string: a signed envelope has no second spelling)."""
    if not isinstance(text, str):
        raise error(f"{what} is not a base64 string")
    try:
        raw = base64.b64decode(text, validate=True)
    except (binascii.Error, ValueError) as exc:
        raise error(f"{what} is not valid base64") from exc
    if b64(raw) != text:
        raise error(f"{what} is not canonical base64")
    return raw
