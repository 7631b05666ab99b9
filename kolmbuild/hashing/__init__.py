"""Content identity: canonical JSON (RFC 8785), CIDv1, and file hashing with a stat cache.

This layer sits below everything else and imports only the standard library, so the engine's
no-op fast path can use it without loading the rest of kolmbuild.
"""

from kolmbuild.hashing.cid import CID, cid_of_bytes, cid_of_json, parse_cid
from kolmbuild.hashing.jcs import canonical_json

__all__ = ["CID", "canonical_json", "cid_of_bytes", "cid_of_json", "parse_cid"]
