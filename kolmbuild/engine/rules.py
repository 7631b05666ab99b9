"""Rules: one YAML file per stage, declaring what it reads, what it makes and how.

A rule names its config ``reads`` (dotted paths, part of the stage key), its ``inputs`` (config
paths whose values are files or folders, hashed into the key), the stages it comes ``after`` (their
output CIDs are in the key: early cutoff), its ``outputs`` (``name?`` marks an optional one), an
``env`` list of variables fingerprinted into the key, and either a Python ``action``
(``module:function``) or a ``shell`` command. ``remote: true`` lets the stage run on the target's
compute backend when that backend is not a local one. Built-in rules ship with kolmbuild; a project's
``rules/`` folder adds rules or replaces built-in ones by name.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated

import yaml
from pydantic import (
    AfterValidator,
    BaseModel,
    ConfigDict,
    Field,
    ValidationError,
    field_validator,
    model_validator,
)

from kolmbuild.config.kolmfile import format_validation_error
from kolmbuild.errors import ConfigError
from kolmbuild.resources import builtin_dir

# A stage's output is a file name inside its out folder. The engine joins it to that folder and
# moves the result into the store: a separator, "..", or an absolute name would make it move
# (and chmod) a file from anywhere the user can write.
OUTPUT_NAME = re.compile(r"[A-Za-z0-9_][A-Za-z0-9_.-]*")


def _plain_name(o: str) -> str:
    if not OUTPUT_NAME.fullmatch(o.removesuffix("?")):
        raise ValueError(
            f"{o!r} is not a plain file name: an output is a name inside the stage's out folder "
            "(letters, digits, '.', '_', '-'; no '/', no '..', not absolute; 'name?' marks it optional)"
        )
    return o


OutputName = Annotated[str, AfterValidator(_plain_name)]


class RuleSpec(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    name: str = Field(pattern=r"^[A-Za-z0-9_][A-Za-z0-9_.-]*$")
    version: int = Field(ge=0)
    doc: str = ""
    after: list[str] = []
    reads: list[str] = []
    inputs: list[str] = []
    outputs: list[OutputName] = Field(min_length=1)
    env: list[str] = []
    install: str | None = None  # an output copied to the target's `out` path when the build ends
    action: str | None = Field(default=None, pattern=r"^[A-Za-z_][\w.]*:[A-Za-z_]\w*$")
    shell: str | None = None
    remote: bool = False  # run on the target's backend when it is not local (kolmbuild.compute.stage_remote)

    @field_validator("outputs")
    @classmethod
    def _distinct(cls, v: list[str]) -> list[str]:
        names = [o.removesuffix("?") for o in v]
        dupes = sorted({n for n in names if names.count(n) > 1})
        if dupes:
            raise ValueError(f"output {dupes[0]!r} is declared twice")
        return v

    @model_validator(mode="after")
    def _one_action(self) -> RuleSpec:
        if (self.action is None) == (self.shell is None):
            raise ValueError("give exactly one of 'action' (module:function) or 'shell'")
        if self.install is not None and self.install not in {o.removesuffix("?") for o in self.outputs}:
            raise ValueError(f"install: {self.install!r} is not one of the rule's outputs")
        return self


@dataclass(frozen=True)
class Output:
    name: str
    optional: bool


@dataclass(frozen=True)
class Rule:
    spec: RuleSpec
    path: Path

    @property
    def name(self) -> str:
        return self.spec.name

    @property
    def outputs(self) -> tuple[Output, ...]:
        return tuple(Output(o.rstrip("?"), o.endswith("?")) for o in self.spec.outputs)


def load_rule(path: Path) -> Rule:
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark
        loc = f"{path}:{mark.line + 1}" if mark else str(path)
        raise ConfigError(f"{loc}: invalid YAML: {exc.problem}") from exc
    except (OSError, yaml.YAMLError) as exc:
        raise ConfigError(f"{path}: cannot read rule: {exc}") from exc
    if not isinstance(data, dict):
        raise ConfigError(f"{path}: a rule must be a mapping")
    try:
        spec = RuleSpec.model_validate(data)
    except ValidationError as exc:
        raise ConfigError(format_validation_error(exc, path, None)) from exc
    if spec.name != path.stem:
        raise ConfigError(f"{path}: rule name {spec.name!r} must match its file name {path.stem!r}")
    return Rule(spec, path)


def rule_dirs(project_rules: Path | None) -> list[Path]:
    """Built-in first, then the project's (which wins by name)."""
    dirs = [builtin_dir("rules").resolve()]
    if project_rules is not None and project_rules.is_dir() and project_rules.resolve() not in dirs:
        dirs.append(project_rules.resolve())
    return dirs


def rule_files(dirs: Iterable[Path]) -> list[Path]:
    found: dict[str, Path] = {}
    for d in dirs:
        for f in sorted(d.glob("*.yaml")):
            found[f.stem] = f
    return list(found.values())


def load_rules(dirs: Iterable[Path], pipeline: Iterable[str] | None = None) -> dict[str, Rule]:
    """Load and check rules; return them in a dependency (topological) order.

    With ``pipeline``, only those stages and what they come after are kept.
    """
    rules = {r.name: r for r in (load_rule(f) for f in rule_files(dirs))}
    if pipeline is not None:
        keep: set[str] = set()
        todo = list(pipeline)
        while todo:
            name = todo.pop()
            if name in keep:
                continue
            if name not in rules:
                raise ConfigError(f"kolmfile pipeline names an unknown stage {name!r}")
            keep.add(name)
            todo.extend(rules[name].spec.after)
        rules = {n: r for n, r in rules.items() if n in keep}
    for r in rules.values():
        for dep in r.spec.after:
            if dep not in rules:
                raise ConfigError(f"{r.path}: after: unknown stage {dep!r}")
    return topo_order(rules)


def topo_order(rules: Mapping[str, Rule]) -> dict[str, Rule]:
    ordered: dict[str, Rule] = {}
    visiting: set[str] = set()

    def visit(name: str, chain: tuple[str, ...]) -> None:
        if name in ordered:
            return
        if name in visiting:
            raise ConfigError("rules form a cycle: " + " -> ".join((*chain, name)))
        visiting.add(name)
        for dep in sorted(rules[name].spec.after):
            visit(dep, (*chain, name))
        visiting.discard(name)
        ordered[name] = rules[name]

    for name in sorted(rules):
        visit(name, ())
    return ordered
