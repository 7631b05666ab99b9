"""Which remote cache a command uses, and opening it.

The URL comes from ``--remote``, else ``$KOLM_REMOTE_CACHE``, else the kolmfile's ``cache.remote``
(a relative folder is taken from the working folder for the first two, from the kolmfile's folder
for the last). Pushing is on with ``--push``, ``KOLM_CACHE_PUSH=1`` or ``cache.push: true``
(``KOLM_CACHE_PUSH=0`` turns a kolmfile's ``push: true`` off). Trusted signers: the keys folder
``kolmbuild verify`` trusts, ``cache.trust``, and this machine's own signing key.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from kolmbuild.config.kolmfile import Project
from kolmbuild.errors import ConfigError, UserInputError

if TYPE_CHECKING:
    from kolmbuild.artifact.keys import SigningKey
    from kolmbuild.remote.cache import RemoteCache
    from kolmbuild.remote.envelope import TrustedKeys

ENV_URL = "KOLM_REMOTE_CACHE"
ENV_PUSH = "KOLM_CACHE_PUSH"
_TRUE, _FALSE = ("1", "true", "yes", "on"), ("0", "false", "no", "off", "")


@dataclass(frozen=True)
class RemoteSettings:
    url: str | None
    base: Path  # where a relative folder URL starts from
    push: bool = False
    required: bool = False
    trust: tuple[Path, ...] = ()
    storage_options: Mapping[str, Any] = field(default_factory=dict)


def remote_settings(project: Project, *, url: str | None = None, push: bool | None = None, required: bool = False,
                    environ: Mapping[str, str] | None = None, cwd: Path | None = None) -> RemoteSettings:
    """The remote a command uses: flags over the environment over the kolmfile's ``cache:`` block."""
    env = os.environ if environ is None else environ
    spec = project.kolmfile.cache
    here = cwd or Path.cwd()
    chosen: str | None
    if url:
        chosen, base = url, here
    elif env.get(ENV_URL):
        chosen, base = env[ENV_URL], here
    else:
        chosen, base = spec.remote, project.root
    if push is None:
        raw = env.get(ENV_PUSH)
        if raw is None:
            push = spec.push
        elif raw.strip().lower() in _TRUE:
            push = True
        elif raw.strip().lower() in _FALSE:
            push = False
        else:
            raise ConfigError(f"{ENV_PUSH}={raw!r}: expected 1 or 0")
    if chosen is None and (push or required):
        flag = "--remote-required" if required else f"pushing (--push, {ENV_PUSH}, cache.push)"
        raise ConfigError(f"{flag} needs a remote cache",
                          hint=f"pass --remote URL, set {ENV_URL}, or add cache.remote to the kolmfile")
    trust = tuple(p if p.is_absolute() else project.root / p for p in map(Path, spec.trust))
    return RemoteSettings(chosen, base, bool(push), required, trust, dict(spec.storage_options))


def _own_key() -> SigningKey | None:
    """This machine's signing key when one is configured by file (never created just to read)."""
    from kolmbuild.artifact.keys import ENV_KEY_FILE, load_private_key

    value = os.environ.get(ENV_KEY_FILE)
    if value:
        path = Path(value).expanduser()
        try:
            with open(path, "rb") as f:
                head = f.read(64)
        except OSError:
            return None
        return load_private_key(path) if head.startswith(b"-----BEGIN") and b"PRIVATE KEY" in head else None
    return None


def _check_protocol(url: str) -> None:
    """A URL whose protocol fsspec does not know is a typo, not an outage: exit 2 naming it, before
    any stage runs (a remote that is down is a warning and a local build; this never gets better)."""
    from fsspec import available_protocols
    from fsspec.utils import get_protocol

    from kolmbuild.remote.storage import display_url

    protocol = get_protocol(url)
    if protocol not in available_protocols():
        raise UserInputError(f"cache.remote: {display_url(url)}: unknown storage protocol {protocol!r}",
                             hint="use a folder or an fsspec URL: s3://, gs://, az://, sftp://, http(s)://")


def open_remote(settings: RemoteSettings, *, warn: Callable[[str], None] | None = None,
                log: Callable[[str], None] | None = None) -> RemoteCache | None:
    """The remote cache the settings name (opened lazily: no network call yet), or None."""
    if settings.url is None:
        return None
    from kolmbuild.remote.cache import RemoteCache

    def trust() -> TrustedKeys:  # on the first record read: a no-op never loads the signing code
        from kolmbuild.remote.envelope import TrustedKeys

        # this machine's own records are trusted: its key is in the keys folder, or named by the env
        return TrustedKeys.load(settings.trust, own=_own_key())

    def signer() -> SigningKey:  # on the first push
        from kolmbuild.artifact.keys import resolve_signing_key

        return resolve_signing_key(log)

    _check_protocol(settings.url)
    for path in settings.trust:  # a missing trust file is bad input, said at once
        if not path.is_file():
            raise UserInputError(f"cache.trust: {path}: no such public key file")
    try:
        return RemoteCache.from_url(settings.url, base=settings.base, storage_options=settings.storage_options,
                                    trust=trust, signer=signer, push=settings.push, required=settings.required,
                                    warn=warn)
    except ValueError as exc:
        raise UserInputError(f"remote cache: {exc}") from exc
