"""Which names (environment variables, config keys) hold credentials: the one word list.

A name holding a credential is never written to a log, receipt, artifact or error message, is
not shipped to a remote machine, and its value is fingerprinted with a slow hash (engine stage
keys). The config layer, the engine and the compute adapters all ask :func:`is_secret_name`, so a
word added here protects every one of them. Standard library only: this sits below everything.
"""

from __future__ import annotations

SECRET_WORDS = ("KEY", "TOKEN", "SECRET", "PASSWORD", "PASSPHRASE", "CREDENTIAL")


def is_secret_name(name: str) -> bool:
    """True when ``name`` (any case) contains one of :data:`SECRET_WORDS`."""
    upper = name.upper()
    return any(w in upper for w in SECRET_WORDS)
