"""Read and validate ``kolmfile.yaml``: every error names the file, line and key."""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

import yaml
from pydantic import ValidationError

from kolmbuild.config.limits import check_yaml
from kolmbuild.config.models import Kolmfile
from kolmbuild.config.yamlpos import where
from kolmbuild.errors import ConfigError

KOLMFILE_NAMES = ("kolmfile.yaml", "kolmfile.yml")

# A target's name becomes part of file names (artifacts/<target>-<version>.kolm, cache work
# folders) and of doit task names: a path ("../../x") or an option ("-n") must never be one.
TARGET_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]{0,127}")


@dataclass(frozen=True)
class Project:
    """Where a build happens: the project folder, its kolmfile, and the parsed declaration."""

    root: Path
    kolmfile_path: Path
    kolmfile: Kolmfile

    @property
    def cache_dir(self) -> Path:
        return self.root / "cache"

    @property
    def conf_dir(self) -> Path:
        return self.root / "conf"

    @property
    def rules_dir(self) -> Path:
        return self.root / "rules"


def find_kolmfile(directory: Path, explicit: str | None = None) -> Path:
    if explicit:
        p = Path(explicit)
        p = p if p.is_absolute() else directory / p
        if not p.is_file():
            raise ConfigError(f"{explicit}: no such kolmfile")
        return p.resolve()
    for name in KOLMFILE_NAMES:
        p = directory / name
        if p.is_file():
            return p.resolve()
    raise ConfigError(
        f"no kolmfile.yaml in {directory}",
        hint="create one with a 'targets:' mapping, or pass -f FILE / -C DIR",
    )


def format_validation_error(err: ValidationError, path: Path, base: Path | None, prefix: tuple = ()) -> str:
    lines = []
    for e in err.errors():
        loc = [*prefix, *e["loc"]]
        dotted = ".".join(str(p) for p in loc) or "(top level)"
        if e["type"] == "extra_forbidden":
            msg = "unknown key"
        elif e["type"] == "missing":
            msg = "required key is missing"
        else:
            msg = e["msg"]
            if "input" in e and e["type"] not in ("missing",) and not isinstance(e["input"], dict):
                msg += f" (got {e['input']!r})"
        lines.append(f"{where(path, loc, base)}: {dotted}: {msg}")
    return "\n".join(lines)


def load_kolmfile(path: Path) -> Kolmfile:
    shown = path.name
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError(f"{shown}: cannot read: {exc}") from exc
    check_yaml(text, shown)
    try:
        data = yaml.safe_load(text)
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        loc = f"{shown}:{mark.line + 1}:{mark.column + 1}" if mark else shown
        raise ConfigError(f"{loc}: invalid YAML: {exc.problem or exc.context}") from exc
    except yaml.YAMLError as exc:
        raise ConfigError(f"{shown}: invalid YAML: {exc}") from exc
    if data is None:
        raise ConfigError(f"{shown} is empty: expected a mapping with a 'targets:' key")
    if not isinstance(data, dict):
        raise ConfigError(f"{shown}: expected a mapping at the top level, got a {type(data).__name__}")
    try:
        kolmfile = Kolmfile.model_validate(data)
    except ValidationError as exc:
        raise ConfigError(format_validation_error(exc, path, path.parent)) from exc
    for name in kolmfile.targets:
        if not TARGET_NAME.fullmatch(name):
            raise ConfigError(
                f"{where(path, ['targets', name], path.parent)}: targets.{name}: {name!r} is not a valid target name",
                hint="use letters, digits, '.', '_' and '-', starting with a letter or digit (at most 128)",
            )
    return kolmfile


def load_project(directory: str | Path | None = None, kolmfile: str | None = None) -> Project:
    root = Path(directory or ".").resolve()
    if not root.is_dir():
        raise ConfigError(f"-C {directory}: no such directory")
    path = find_kolmfile(root, kolmfile)
    return Project(root=path.parent, kolmfile_path=path, kolmfile=load_kolmfile(path))
