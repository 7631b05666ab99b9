"""The user's kolmbuild folders: config (keys, default backend) and state (rental ledger, drift log).

Config: ``$KOLM_CONFIG_DIR`` wins, then ``$XDG_CONFIG_HOME/kolmbuild``, then ``~/.config/kolmbuild``.
State: ``$KOLM_STATE_DIR``, then ``<KOLM_CONFIG_DIR>/state`` when that is set, then
``$XDG_STATE_HOME/kolmbuild``, then ``~/.local/state/kolmbuild``. Tests point ``KOLM_CONFIG_DIR``
at a temp folder, so they touch neither real folder.
"""

from __future__ import annotations

import os
from pathlib import Path


def config_dir() -> Path:
    explicit = os.environ.get("KOLM_CONFIG_DIR")
    if explicit:
        return Path(explicit)
    xdg = os.environ.get("XDG_CONFIG_HOME")
    base = Path(xdg) if xdg else Path.home() / ".config"
    return base / "kolmbuild"


def state_dir() -> Path:
    explicit = os.environ.get("KOLM_STATE_DIR")
    if explicit:
        return Path(explicit)
    cfg = os.environ.get("KOLM_CONFIG_DIR")
    if cfg:
        return Path(cfg) / "state"
    xdg = os.environ.get("XDG_STATE_HOME")
    return (Path(xdg) if xdg else Path.home() / ".local" / "state") / "kolmbuild"
