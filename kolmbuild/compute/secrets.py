"""Which environment variables are secrets: they never leave this machine and are redacted from errors."""

from __future__ import annotations

SECRET_WORDS = ("KEY", "TOKEN", "SECRET", "PASSWORD", "PASSPHRASE", "CREDENTIAL")


def is_secret_name(name: str) -> bool:
    upper = name.upper()
    return any(w in upper for w in SECRET_WORDS)
