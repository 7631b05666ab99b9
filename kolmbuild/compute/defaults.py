"""The user's default backend (``kolmbuild compute use NAME``), in ``<config dir>/config.yaml``."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml

from kolmbuild.atomic import write_text_atomic
from kolmbuild.errors import ConfigError
from kolmbuild.userconfig import config_dir


def config_file() -> Path:
    return config_dir() / "config.yaml"


def _read(path: Path) -> dict[str, Any]:
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        return {}
    except (OSError, UnicodeDecodeError, yaml.YAMLError) as exc:
        raise ConfigError(f"{path}: cannot read the user config: {exc}") from exc
    if data is None:
        return {}
    if not isinstance(data, dict):
        raise ConfigError(f"{path}: expected a mapping")
    return data


def read_default_backend() -> str | None:
    value = _read(config_file()).get("backend")
    if value is not None and not isinstance(value, str):
        raise ConfigError(f"{config_file()}: backend: expected a backend name")
    return value or None


def write_default_backend(name: str) -> Path:
    path = config_file()
    data = _read(path)
    data["backend"] = name
    return write_text_atomic(path, yaml.safe_dump(data, sort_keys=True))
