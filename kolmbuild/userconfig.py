"""The user's kolmbuild config folder (keys, default backend, rental ledger).

``$KOLM_CONFIG_DIR`` wins, then ``$XDG_CONFIG_HOME/kolmbuild``, then ``~/.config/kolmbuild``.
Tests point ``KOLM_CONFIG_DIR`` at a temp folder so they never touch the real one.
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
