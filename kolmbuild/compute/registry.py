"""The backend registry: every option of the ``backend`` config group, validated.

Options come from the same folders Hydra composes from (the project's ``conf/`` first, then the
built-in one), so a user adds a backend or overrides one (a cheaper vast price) with their own
``conf/backend/<name>.yaml`` and no code change. Files are read with PyYAML and validated with the
same pydantic model a composed target uses; errors name the file, line and key.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml
from pydantic import ValidationError

from kolmbuild.compute.settings import settings_for
from kolmbuild.config.models import BackendSpec
from kolmbuild.errors import ConfigError

try:  # the C loader is ~10x faster; fall back to the pure-Python one
    _Loader: Any = yaml.CSafeLoader
except AttributeError:  # pragma: no cover
    _Loader = yaml.SafeLoader

REGISTRY_SCHEMA = 1
KIND_GROUP = {
    "local": "LOCAL",
    "cloud-serverless": "CLOUD",
    "cloud-managed": "CLOUD",
    "cloud-marketplace": "CLOUD",
    "self-hosted": "SELF-HOSTED",
}


@dataclass(frozen=True)
class Registry:
    """Backends by name, in name order, and where each came from."""

    backends: Mapping[str, BackendSpec]
    sources: Mapping[str, Path]

    def __iter__(self) -> Iterator[BackendSpec]:
        return iter(self.backends.values())

    def __len__(self) -> int:
        return len(self.backends)

    def names(self) -> list[str]:
        return list(self.backends)

    def get(self, name: str) -> BackendSpec:
        spec = self.backends.get(name)
        if spec is None:
            raise ConfigError(
                f"unknown backend {name!r} (expected one of: {', '.join(self.backends)})",
                hint="add conf/backend/<name>.yaml to the project to define a new one",
            )
        return spec

    def version(self) -> str:
        """``v<schema> <latest catalog date> <short CID of the validated specs>``: changes with any price."""
        from kolmbuild.hashing.cid import cid_of_json

        doc = {n: s.model_dump(mode="json") for n, s in self.backends.items()}
        cid = str(cid_of_json(doc))
        latest = max((s.catalog_date for s in self.backends.values()), default="-")
        return f"v{REGISTRY_SCHEMA} catalog {latest} ({cid[-10:]})"


def backend_files(conf_dirs: Sequence[Path]) -> dict[str, Path]:
    """Option name -> file; earlier folders win (the project's conf over the built-in one)."""
    from kolmbuild.config.compose import group_options

    return group_options(conf_dirs, "backend")


def load_backend(path: Path, base: Path | None = None) -> BackendSpec:
    from kolmbuild.config.kolmfile import format_validation_error

    try:
        data = yaml.load(path.read_text(encoding="utf-8"), Loader=_Loader)  # noqa: S506 (safe loader)
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError(f"{path}: cannot read: {exc}") from exc
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        loc = f"{path}:{mark.line + 1}" if mark else str(path)
        raise ConfigError(f"{loc}: invalid YAML: {getattr(exc, 'problem', None) or exc}") from exc
    if not isinstance(data, dict):
        raise ConfigError(f"{path}: expected a mapping of backend fields")
    data.setdefault("name", path.stem)
    try:
        spec = BackendSpec.model_validate(data)
    except ValidationError as exc:
        raise ConfigError(format_validation_error(exc, path, base)) from exc
    settings_for(spec, path)  # the adapter's own keys: a typo is an error naming this file and key
    return spec


def load_registry(conf_dirs: Sequence[Path]) -> Registry:
    files = backend_files(conf_dirs)
    specs = {name: load_backend(path, path.parent.parent.parent) for name, path in sorted(files.items())}
    return Registry(specs, dict(sorted(files.items())))


def builtin_conf_dirs(project_dir: Path | None = None) -> list[Path]:
    """The project's conf/ (when given and present), then the built-in conf/."""
    from kolmbuild.resources import builtin_dir

    dirs: list[Path] = []
    if project_dir is not None and (project_dir / "conf").is_dir():
        dirs.append((project_dir / "conf").resolve())
    builtin = builtin_dir("conf").resolve()
    if builtin not in dirs:
        dirs.append(builtin)
    return dirs
