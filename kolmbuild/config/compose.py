"""Compose one target's config with Hydra's Compose API, then validate it with pydantic.

kolmbuild owns argv; Hydra composes. The primary config of a target is generated in Hydra's
ConfigStore: its defaults list selects ``task``, ``backend`` and ``gates`` options; the kolmfile's
per-target ``overrides`` and then the command line's overrides apply on top, in Hydra's own grammar
(``backend=vast``, ``task.train.rank=32``, ``+x=1``, ``~y``). Config groups come from the project's
``conf/`` (first) and the built-in ``conf/`` (after), so a project adds or overrides options.
Sweeps (``-m backend=a,b``) are expanded here with Hydra's override parser, one compose per point.
"""

from __future__ import annotations

import functools
import os
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml
from pydantic import BaseModel, ValidationError

from kolmbuild.config import limits
from kolmbuild.config.envvalues import fingerprint, is_secret_name, lookup_path, public_tree, under
from kolmbuild.config.interp import EnvLeaf, analyze
from kolmbuild.config.kolmfile import Project
from kolmbuild.config.models import BackendSpec, GatesSpec, TargetConfig, TaskSpec
from kolmbuild.config.yamlpos import where
from kolmbuild.errors import ConfigError, KolmError
from kolmbuild.resources import builtin_dir

GROUPS = ("task", "backend", "gates")
_PRIMARY = "kolmbuild_target"


def schema_defaults(model: type[BaseModel]) -> dict[str, Any]:
    """The keys of ``model`` that have defaults, with those defaults, as plain JSON values."""
    out: dict[str, Any] = {}
    for name, field in model.model_fields.items():
        if field.is_required():
            continue
        value = field.get_default(call_default_factory=True)
        if isinstance(value, BaseModel):
            value = value.model_dump(mode="json", by_alias=True)
        out[field.alias or name] = value
    return out


def is_override(token: str) -> bool:
    return "=" in token or token.startswith(("+", "~"))


@dataclass(frozen=True)
class ComposedTarget:
    name: str
    overrides: tuple[str, ...]
    config: TargetConfig
    sources: tuple[Path, ...]  # the group option files this config was composed from
    choices: tuple[tuple[str, str], ...] = ()  # group -> chosen option, e.g. ("gates", "strict")
    env_leaves: tuple[EnvLeaf, ...] = ()  # values that came from ${oc.env:…}
    env_prints: tuple[tuple[str, str], ...] = ()  # (dotted key, fingerprint of its value)

    def choice(self, group: str) -> str:
        return dict(self.choices).get(group, "")

    def dump(self) -> dict[str, Any]:
        """The config as it may be recorded (keys, state.db, manifest, --cfg): a value from the
        environment appears as its interpolation, e.g. ``${oc.env:OPENAI_API_KEY}``."""
        return public_tree(self.real_dump(), self.env_leaves)

    def real_dump(self) -> dict[str, Any]:
        """The config with the environment's values: for use in this process only, never recorded."""
        return self.config.model_dump(mode="json", by_alias=True)

    def env_values(self) -> dict[str, Any]:
        """Dotted key → the value the environment gave it (what a stage reads, never recorded)."""
        real = self.real_dump()
        return {leaf.dotted: lookup_path(real, leaf.path) for leaf in self.env_leaves}

    @property
    def env_names(self) -> tuple[str, ...]:
        return tuple(sorted({n for leaf in self.env_leaves for n in leaf.names}))


def conf_dirs(project: Project) -> list[Path]:
    dirs = []
    if project.conf_dir.is_dir():
        dirs.append(project.conf_dir.resolve())
    builtin = builtin_dir("conf").resolve()
    if builtin not in dirs:
        dirs.append(builtin)
    return dirs


def group_options(dirs: Sequence[Path], group: str) -> dict[str, Path]:
    """Option name → file, earlier dirs winning."""
    found: dict[str, Path] = {}
    for d in reversed(dirs):
        g = d / group
        if g.is_dir():
            for f in sorted(g.glob("*.yaml")):
                found[f.stem] = f
    return found


def default_backend(project: Project, user_default: Callable[[], str | None] | None = None) -> str:
    if project.kolmfile.defaults.backend:
        return project.kolmfile.defaults.backend
    env = os.environ.get("KOLM_BACKEND")
    if env:
        return env
    if user_default is not None:
        chosen = user_default()
        if chosen:
            return chosen
    return "local-cpu"


def _user_default_backend() -> str | None:
    try:
        from kolmbuild.compute import default_backend_name
    except ImportError:
        return None
    try:
        return default_backend_name()
    except Exception:  # a broken user config must not stop a build that names no backend
        return None


def split_sweeps(overrides: Sequence[str]) -> list[list[str]]:
    """Expand Hydra sweep syntax (``a,b``, ``range(1,3)``, ``choice(x,y)``) into one list per point."""
    from hydra._internal.core_plugins.basic_sweeper import BasicSweeper
    from hydra.core.override_parser.overrides_parser import OverridesParser
    from hydra.errors import HydraException, OverrideParseException

    if not overrides:
        return [[]]
    limits.check_overrides(overrides)
    try:
        parsed = OverridesParser.create().parse_overrides(list(overrides))
    except OverrideParseException as exc:
        raise ConfigError(f"bad override: {exc}") from exc
    limits.sweep_points(parsed)
    try:
        batches = BasicSweeper.split_arguments(parsed, None)
    except HydraException as exc:  # glob() needs Hydra's config loader, interval() cannot be listed
        raise ConfigError(f"bad sweep: {exc}", hint="sweep over listed values: a,b or choice(a,b) or range(…)") from exc
    return [list(point) for batch in batches for point in batch]


def check_no_sweep(overrides: Sequence[str]) -> None:
    from hydra.core.override_parser.overrides_parser import OverridesParser
    from hydra.errors import OverrideParseException

    if not overrides:
        return
    limits.check_overrides(overrides)
    try:
        parsed = OverridesParser.create().parse_overrides(list(overrides))
    except OverrideParseException as exc:
        raise ConfigError(f"bad override: {exc}") from exc
    for o in parsed:
        if o.is_sweep_override():
            raise ConfigError(
                f"override '{o.input_line}' is a sweep (several values)",
                hint="run a sweep with -m/--multirun, e.g. kolmbuild -m " + (o.input_line or ""),
            )


class Composer:
    """Composes targets of one project. One Hydra initialization per compose call."""

    def __init__(self, project: Project) -> None:
        self.project = project
        self.dirs = conf_dirs(project)
        self._backend = default_backend(project, _user_default_backend)
        builtin = builtin_dir("conf").resolve()
        for d in self.dirs:
            if d != builtin:  # the project's own group files: Hydra would expand their aliases unchecked
                for f in sorted(d.rglob("*.yaml")):
                    _check_yaml_file(f, project.root)

    def compose(self, target: str, overrides: Sequence[str] = ()) -> ComposedTarget:
        from hydra import compose, initialize_config_dir
        from hydra.core.config_store import ConfigStore
        from hydra.errors import HydraException, MissingConfigException
        from omegaconf import OmegaConf, open_dict
        from omegaconf.errors import OmegaConfBaseException

        kf = self.project.kolmfile
        decl = kf.targets.get(target)
        if decl is None:
            raise ConfigError(
                f"{self.project.kolmfile_path.name}: no target named {target!r}",
                hint="targets: " + ", ".join(sorted(kf.targets)),
            )
        budget = decl.budget or kf.budget
        node: dict[str, Any] = {
            # _self_ first: the schema's defaults sit under the group files, so every documented key
            # exists for `task.train.rank=32`-style overrides even when a YAML file leaves it out.
            "defaults": [
                "_self_",
                {"task": decl.task},
                {"backend": decl.backend or self._backend},
                {"gates": decl.gates or kf.defaults.gates},
            ],
            "task": schema_defaults(TaskSpec),
            "backend": schema_defaults(BackendSpec),
            "gates": schema_defaults(GatesSpec),
            "target": target,
            "budget": budget.model_dump(),
            "out": decl.out,
        }
        if len(self.dirs) > 1:
            node["hydra"] = {"searchpath": [f"file://{d}" for d in self.dirs[1:]]}
        all_overrides = [*decl.overrides, *overrides]
        check_no_sweep(all_overrides)
        ConfigStore.instance().store(name=_PRIMARY, node=node)
        where_from = f"target {target!r}"
        try:
            with initialize_config_dir(config_dir=str(self.dirs[0]), version_base="1.3"):
                cfg = compose(config_name=_PRIMARY, overrides=all_overrides, return_hydra_config=True)
                choices = dict(cfg.hydra.runtime.choices)
                with open_dict(cfg):
                    del cfg["hydra"]
                raw: Any = OmegaConf.to_container(cfg, resolve=False)
                analysis = analyze(raw)
                if analysis.size > limits.MAX_CONFIG_CHARS:
                    raise ConfigError(
                        f"{where_from}: the composed config would expand to {analysis.size:,} characters, over the "
                        f"limit of {limits.MAX_CONFIG_CHARS:,} (interpolations that repeat other nodes, or huge values)"
                    )
                data: Any = OmegaConf.to_container(cfg, resolve=True)
        except MissingConfigException as exc:
            raise ConfigError(self._missing_message(target, str(exc))) from exc
        except (HydraException, OmegaConfBaseException) as exc:
            text = [ln.strip() for ln in str(exc).strip().splitlines() if ln.strip()]
            msg = " ".join(text[:2]) if text else type(exc).__name__
            raise ConfigError(f"{where_from}: {msg}") from exc
        except yaml.YAMLError as exc:
            raise ConfigError(f"{where_from}: invalid YAML in a config group file: {exc}") from exc
        except RecursionError:
            raise ConfigError(f"{where_from}: the config nests too deeply to resolve") from None
        except KolmError:
            raise
        except (OSError, ValueError, TypeError, KeyError, AttributeError, IndexError) as exc:
            # Hydra and OmegaConf raise plain Python errors for some malformed group files (a YAML
            # document that is a !!binary scalar is "OSError: Invalid loaded object type: bytes"):
            # every input here is the user's config, so each is a config error, located by target
            raise ConfigError(f"{where_from}: a config group file could not be composed: {type(exc).__name__}: {exc}") from exc
        if not isinstance(data, dict):
            raise ConfigError(f"{where_from}: the composed config is not a mapping")
        sources: dict[str, Path] = {}
        for group in GROUPS:
            opts = group_options(self.dirs, group)
            if choices.get(group) in opts:
                sources[group] = opts[choices[group]]
        if isinstance(data.get("backend"), dict):
            data["backend"].setdefault("name", choices.get("backend", ""))
        origin = functools.partial(self._origin, sources=sources, overrides=all_overrides)
        leaves = analysis.env_leaves
        from_env = functools.partial(_from_env, tuple(leaf.dotted for leaf in leaves))
        limits.check_values(data, origin, hidden=from_env)
        _check_api_key(data, leaves, origin)
        try:
            config = TargetConfig.model_validate(data)
        except ValidationError as exc:
            raise ConfigError(self._validation_message(exc, sources, all_overrides, from_env)) from exc
        chosen = tuple((g, str(choices[g])) for g in GROUPS if choices.get(g) is not None)
        real = config.model_dump(mode="json", by_alias=True)
        limits.check_values(real, origin, hidden=from_env)  # again after coercion: "9"*30 from $VAR is an int now
        prints = tuple((leaf.dotted, fingerprint(leaf, lookup_path(real, leaf.path))) for leaf in leaves)
        return ComposedTarget(target, tuple(all_overrides), config, tuple(sources.values()), chosen, leaves, prints)

    def _origin(self, dotted: str, *, sources: dict[str, Path], overrides: Sequence[str]) -> str:
        """Where the value of ``dotted`` was set: the last override that names it, else its group file."""
        for o in reversed(overrides):
            key = o.lstrip("+~").split("=", 1)[0].split("@", 1)[0]
            if key in GROUPS:  # choosing a group option: the option's file says where a key came from
                continue
            if key == dotted or dotted.startswith(key + "."):
                if is_secret_name(key.rsplit(".", 1)[-1]):  # never echo a credential typed on the command line
                    return f"override '{o.split('=', 1)[0]}=…'"
                return f"override '{o if len(o) <= 80 else o[:79] + '…'}'"
        parts = dotted.split(".")
        src = sources.get(parts[0])
        if src is not None:
            return where(src, parts[1:], self.project.root)
        return self.project.kolmfile_path.name

    def _missing_message(self, target: str, raw: str) -> str:
        for group in GROUPS:
            if f"'{group}/" in raw:
                opts = sorted(group_options(self.dirs, group))
                bad = raw.split(f"'{group}/", 1)[1].split("'", 1)[0]
                return (
                    f"{self.project.kolmfile_path.name}: target {target!r}: unknown {group} option {bad!r}"
                    f" (expected one of: {', '.join(opts)})"
                )
        return f"target {target!r}: {raw.splitlines()[0]}"

    def _validation_message(self, exc: ValidationError, sources: dict[str, Path], overrides: Sequence[str] = (),
                            hidden: Callable[[str], bool] = lambda dotted: False) -> str:
        """One line per error, located in the override or group file that supplied the key when known;
        a value from the environment (``hidden``) is never quoted."""
        lines = []
        for e in exc.errors():
            loc = [str(p) for p in e["loc"]]
            dotted = ".".join(loc)
            at = self._origin(dotted, sources=sources, overrides=overrides)
            if e["type"] == "extra_forbidden":
                msg = "unknown key"
            elif e["type"] == "missing":
                msg = "required key is missing"
            else:
                shown = not isinstance(e.get("input"), dict) and not hidden(dotted)
                msg = e["msg"] + (f" (got {e['input']!r})" if shown else "")
            lines.append(f"{at}: {dotted}: {msg}")
        return "\n".join(lines)


def _from_env(env_keys: Sequence[str], dotted: str) -> bool:
    return any(under(dotted, k) for k in env_keys)


def _check_yaml_file(path: Path, root: Path) -> None:
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError):
        return  # Hydra reports an unreadable file when (and if) it loads it
    try:
        shown = str(path.resolve().relative_to(root.resolve()))
    except ValueError:
        shown = str(path)
    limits.check_yaml(text, shown)


def _check_api_key(data: dict[str, Any], leaves: Sequence[EnvLeaf], origin: Callable[[str], str]) -> None:
    """``task.teacher.api_key`` must come from the environment: a key written into a config file
    would be recorded in the cache and signed into the artifact."""
    if lookup_path(data, ("task", "teacher", "api_key")) is None:
        return
    if not any(leaf.dotted in ("task.teacher.api_key", "task.teacher", "task") for leaf in leaves):
        raise ConfigError(
            f"{origin('task.teacher.api_key')}: task.teacher.api_key: write the key as ${{oc.env:NAME}} "
            "(a key written in a config file would be recorded in the cache and the artifact)",
            hint="or name the variable with task.teacher.api_key_env: NAME",
        )


def compose_all(
    project: Project, targets: Sequence[str], overrides: Sequence[str]
) -> list[ComposedTarget]:
    composer = Composer(project)
    names = list(targets) or list(project.kolmfile.targets)
    return [composer.compose(t, overrides) for t in names]


