"""Bounds on config input, checked before anything expands it: YAML files, overrides, sweeps, and
the values of a composed config.

A few hundred bytes of YAML anchors and aliases ("billion laughs") stand for billions of nodes once
PyYAML, OmegaConf or pydantic walk them; a sweep ``range(0,1000000000)`` is a billion builds; a
value Python reads but JSON cannot hold exactly (``1e999``, an integer past 2^53, text with an
undecodable byte from argv) would fail later, in a stage key, as a traceback. Each is refused here
with exit 2 and a message naming the file, override or key.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping, Sequence
from typing import Any

import yaml

from kolmbuild.errors import ConfigError

MAX_YAML_BYTES = 1 << 20  # a kolmfile or config group file
MAX_YAML_NODES = 100_000  # nodes of one YAML document once its aliases are expanded
MAX_CONFIG_CHARS = 4 << 20  # the resolved config of one target, as JSON
MAX_OVERRIDE_CHARS = 64 << 10  # one override
MAX_OVERRIDES = 1000
MAX_SWEEP_POINTS = 1000
_MAX_SAFE_INT = 2**53


def check_yaml(text: str, shown: str) -> None:
    """Refuse a YAML text that is too large, nested too deeply or whose aliases expand too far.
    Syntax errors are left to the loader, which reports them with their line."""
    if len(text) > MAX_YAML_BYTES:
        raise ConfigError(f"{shown}: {len(text):,} characters, over the limit of {MAX_YAML_BYTES:,} for a config file")
    try:
        root = yaml.compose(text, Loader=yaml.SafeLoader)
    except yaml.YAMLError:
        return
    except RecursionError:
        raise ConfigError(f"{shown}: nested too deeply to read") from None
    if root is None:
        return
    counts: dict[int, int] = {}
    active: set[int] = set()

    def expanded(node: yaml.Node) -> int:
        key = id(node)
        if key in counts:
            return counts[key]
        if key in active:
            mark = node.start_mark
            raise ConfigError(f"{shown}:{mark.line + 1}: an alias refers to a node that contains it (a cycle)")
        active.add(key)
        total = 1
        if isinstance(node, yaml.SequenceNode):
            total += sum(expanded(child) for child in node.value)
        elif isinstance(node, yaml.MappingNode):
            total += sum(expanded(k) + expanded(v) for k, v in node.value)
        active.discard(key)
        counts[key] = total
        return total

    try:
        total = expanded(root)
    except RecursionError:
        raise ConfigError(f"{shown}: nested too deeply to read") from None
    if total > MAX_YAML_NODES:
        raise ConfigError(
            f"{shown}: its anchors and aliases expand to {total:,} nodes, over the limit of {MAX_YAML_NODES:,}",
            hint="an alias repeats a whole subtree each time it is used; write the values out, or use fewer levels",
        )


def check_overrides(overrides: Sequence[str]) -> None:
    if len(overrides) > MAX_OVERRIDES:
        raise ConfigError(f"{len(overrides):,} overrides, over the limit of {MAX_OVERRIDES:,}")
    for o in overrides:
        if len(o) > MAX_OVERRIDE_CHARS:
            raise ConfigError(
                f"override '{o[:40]}…' is {len(o):,} characters, over the limit of {MAX_OVERRIDE_CHARS:,}",
                hint="put long values (prompts, schemas) in a config group file",
            )


def sweep_points(parsed: Sequence[Any]) -> int:
    """How many builds the parsed overrides ask for, counted without listing them."""
    from hydra.core.override_parser.types import RangeSweep, Sweep

    total = 1
    for o in parsed:
        if not o.is_sweep_override():
            continue
        value = o.value()
        choices = getattr(value, "list", None)
        if isinstance(value, RangeSweep):
            start: Any = value.start
            stop: Any = value.stop
            step: Any = value.step
            n = 0 if not step or (stop - start) / step <= 0 else math.ceil((stop - start) / step)
        elif isinstance(value, Sweep) and isinstance(choices, list):
            n = len(choices)
        else:  # glob() over a group's options is as long as the group; interval() Hydra refuses
            n = 1
        total *= max(n, 1)
        if total > MAX_SWEEP_POINTS:
            raise ConfigError(
                f"the sweep has more than {MAX_SWEEP_POINTS:,} points (override '{o.input_line}')",
                hint="sweep fewer values, or split the sweep into several runs",
            )
    return total


def check_values(data: Mapping[str, Any], origin: Callable[[str], str],
                 hidden: Callable[[str], bool] = lambda key: False) -> None:
    """Every value of a resolved config is one JSON holds exactly; ``origin(key)`` says where a
    key's value came from (an override, a group file); a ``hidden(key)`` value is never quoted."""
    stack: list[tuple[str, Any]] = [("", data)]
    while stack:
        key, value = stack.pop()
        problem = None
        if isinstance(value, Mapping):
            stack.extend((f"{key}.{k}" if key else str(k), v) for k, v in value.items())
        elif isinstance(value, list):
            stack.extend((f"{key}.{i}", v) for i, v in enumerate(value))
        elif isinstance(value, bool):
            continue
        elif isinstance(value, int) and not -_MAX_SAFE_INT <= value <= _MAX_SAFE_INT:
            shown = "" if hidden(key) else f" {str(value)[:40]}"
            problem = f"integer{shown} is out of range (config integers are exact up to ±2^53)"
        elif isinstance(value, float) and not math.isfinite(value):
            problem = f"{value} is not a finite number"
        elif isinstance(value, str):
            try:
                value.encode("utf-8")
            except UnicodeEncodeError as exc:
                problem = f"not valid text (character {exc.start + 1} is an undecodable byte or a lone surrogate)"
        if problem:
            raise ConfigError(f"{origin(key)}: {key}: {problem}")
