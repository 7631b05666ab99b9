"""Signing keys: EC P-256 key pairs for the model-signing bundle, and the optional HMAC key.

Key material lives in ``config_dir()/keys/`` (``kolm-signing.pem`` 0600 and ``kolm-signing.pub``).
``$KOLM_SIGNING_KEY_FILE`` overrides the private key when it holds a PEM private key; any other file
named there holds the HMAC key. ``$KOLM_SIGNING_KEY`` holds the HMAC key itself. Keys are never
logged nor written into an artifact: only the public key and fingerprints are.
"""

from __future__ import annotations

import hashlib
import hmac
import os
import stat
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from cryptography.exceptions import UnsupportedAlgorithm
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec

from kolmbuild.atomic import write_atomic
from kolmbuild.errors import ArtifactError, UserInputError
from kolmbuild.userconfig import config_dir

KEY_NAME = "kolm-signing"
ENV_HMAC = "KOLM_SIGNING_KEY"
ENV_KEY_FILE = "KOLM_SIGNING_KEY_FILE"


def keys_dir() -> Path:
    return config_dir() / "keys"


def public_pem(public_key: ec.EllipticCurvePublicKey) -> bytes:
    return public_key.public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)


def fingerprint(public_key: ec.EllipticCurvePublicKey) -> str:
    """sha256 hex of the PEM public key: the ``hint`` model-signing puts in (and checks from) a bundle."""
    return hashlib.sha256(public_pem(public_key)).hexdigest()


@dataclass(frozen=True)
class SigningKey:
    private_key: ec.EllipticCurvePrivateKey
    path: Path | None

    @property
    def public_key(self) -> ec.EllipticCurvePublicKey:
        return self.private_key.public_key()

    @property
    def fingerprint(self) -> str:
        return fingerprint(self.public_key)


def _check_private_mode(path: Path) -> None:
    if os.name != "posix":
        return
    mode = stat.S_IMODE(path.stat().st_mode)
    if mode & 0o077:
        raise UserInputError(
            f"{path}: key file is readable by others (mode {mode:04o})", hint=f"chmod 600 {path}"
        )


class KeyExists(UserInputError):
    """A key file is already there (keygen without --force, or another build made it first)."""


def _write_file(path: Path, data: bytes, mode: int, *, exclusive: bool) -> None:
    """Write ``data`` to ``path`` whole, with ``mode`` set before any byte is written.

    ``exclusive``: never replace an existing ``path`` (a hard link is an atomic create-if-absent),
    so two builds that create the first key at once agree on one key; raises KeyExists otherwise.
    """
    try:
        write_atomic(path, data, mode=mode, exclusive=exclusive)
    except FileExistsError as exc:
        raise KeyExists(f"{path}: a key already exists", hint="pass --force to replace it") from exc


def generate_keypair(out_dir: Path | None = None, *, name: str = KEY_NAME, force: bool = False) -> tuple[Path, Path]:
    """Write ``<name>.pem`` (private, 0600) and ``<name>.pub`` into ``out_dir`` (default: the keys dir)."""
    out_dir = out_dir or keys_dir()
    priv_path, pub_path = out_dir / f"{name}.pem", out_dir / f"{name}.pub"
    if not force and (priv_path.exists() or pub_path.exists()):
        raise KeyExists(f"{priv_path}: a key already exists", hint="pass --force to replace it")
    key = ec.generate_private_key(ec.SECP256R1())
    pem = key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )
    try:
        _write_file(priv_path, pem, 0o600, exclusive=not force)
        _write_file(pub_path, public_pem(key.public_key()), 0o644, exclusive=False)
    except OSError as exc:  # an --out that is a file, a read-only or missing parent
        raise UserInputError(f"{out_dir}: cannot write the key pair there: {exc.strerror or exc}") from exc
    return priv_path, pub_path


def load_private_key(path: Path) -> SigningKey:
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise UserInputError(f"{path}: cannot read the signing key: {exc.strerror or exc}") from exc
    _check_private_mode(path)
    try:
        key = serialization.load_pem_private_key(data, password=None)
    except (ValueError, TypeError) as exc:
        raise UserInputError(f"{path}: not an unencrypted PEM private key") from exc
    if not isinstance(key, ec.EllipticCurvePrivateKey) or key.curve.name != "secp256r1":
        raise UserInputError(f"{path}: the signing key must be an EC P-256 (secp256r1) key")
    return SigningKey(key, path)


def load_public_key(source: Path | str | bytes) -> ec.EllipticCurvePublicKey:
    """A P-256 public key from a PEM file path, PEM text, or a private key file (its public half)."""
    label = "public key"
    if isinstance(source, Path):
        label = str(source)
        try:
            data = source.read_bytes()
        except OSError as exc:
            raise UserInputError(f"{source}: cannot read the public key: {exc.strerror or exc}") from exc
    else:
        data = source.encode("utf-8", "replace") if isinstance(source, str) else source
    try:
        key = serialization.load_pem_public_key(data)
    except UnsupportedAlgorithm as exc:  # an EC curve (or key type) OpenSSL does not know
        raise UserInputError(f"{label}: unsupported public key: {exc}") from None
    except ValueError:
        try:
            key = serialization.load_pem_private_key(data, password=None).public_key()  # type: ignore[assignment]
        except (ValueError, TypeError, UnsupportedAlgorithm) as exc:
            raise UserInputError(f"{label}: not a PEM public key") from exc
    if not isinstance(key, ec.EllipticCurvePublicKey) or key.curve.name != "secp256r1":
        raise UserInputError(f"{label}: expected an EC P-256 (secp256r1) public key")
    return key


def _env_key_file() -> Path | None:
    value = os.environ.get(ENV_KEY_FILE)
    return Path(value).expanduser() if value else None


def _is_pem_private(path: Path) -> bool:
    try:
        with open(path, "rb") as f:
            head = f.read(64)
    except OSError:
        return False
    return head.startswith(b"-----BEGIN") and b"PRIVATE KEY" in head


def existing_signing_key() -> SigningKey | None:
    """The key :func:`resolve_signing_key` would use, or None where it would create one (a Ray worker
    checks that it signs with a key its coordinator trusts before it builds anything)."""
    env_file = _env_key_file()
    if env_file is not None and _is_pem_private(env_file):
        return load_private_key(env_file)
    default = keys_dir() / f"{KEY_NAME}.pem"
    return load_private_key(default) if default.exists() else None


def resolve_signing_key(log: Callable[[str], None] | None = None) -> SigningKey:
    """The configured EC private key; the first call without one creates it in the keys dir (and says so)."""
    env_file = _env_key_file()
    if env_file is not None and _is_pem_private(env_file):
        return load_private_key(env_file)
    default = keys_dir() / f"{KEY_NAME}.pem"
    if not default.exists():
        try:
            priv, pub = generate_keypair(keys_dir())
        except KeyExists:
            pass  # another build created it a moment ago: use that one
        else:
            if log:
                log(f"created a signing key pair: {priv} (private, keep it) and {pub} (share it to verify)")
    return load_private_key(default)


def resolve_hmac_key(env_var: str = ENV_HMAC) -> bytes | None:
    """The HMAC key from ``$env_var``, else from ``$KOLM_SIGNING_KEY_FILE`` when that is not a PEM key."""
    value = os.environ.get(env_var)
    if value:
        return value.encode()
    env_file = _env_key_file()
    if env_file is not None and not _is_pem_private(env_file):
        try:
            data = env_file.read_bytes().strip()
        except OSError as exc:
            raise UserInputError(f"{env_file}: cannot read the HMAC key ({ENV_KEY_FILE}): {exc.strerror}") from exc
        _check_private_mode(env_file)
        if not data:
            raise UserInputError(f"{env_file}: the HMAC key file ({ENV_KEY_FILE}) is empty")
        return data
    return None


def hmac_key_id(key: bytes) -> str:
    """A public handle for an HMAC key (reveals nothing usable about it): tells wrong key from tampering."""
    return hmac.new(key, b"kolm/1 key id", hashlib.sha256).hexdigest()[:16]


def trusted_fingerprints() -> dict[str, Path]:
    """Fingerprints of the public keys in the keys dir (``*.pub``, ``*.pem``): keys this user trusts."""
    found: dict[str, Path] = {}
    d = keys_dir()
    if not d.is_dir():
        return found
    for p in sorted(d.iterdir(), key=lambda q: (q.suffix != ".pub", q.name)):
        if p.suffix not in (".pub", ".pem") or not p.is_file():
            continue
        try:
            found.setdefault(fingerprint(load_public_key(p)), p)
        except (UserInputError, ArtifactError):
            continue
    return found
