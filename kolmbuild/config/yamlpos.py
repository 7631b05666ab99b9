"""Find the line of a key path in a YAML file, so errors can say ``kolmfile.yaml:7``."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import yaml


def line_of(path: Path, keys: Sequence[str | int]) -> int | None:
    """1-based line of the deepest node along ``keys`` that exists in ``path``; None if unreadable."""
    try:
        node = yaml.compose(path.read_text(encoding="utf-8"))
    except (OSError, yaml.YAMLError, UnicodeDecodeError):
        return None
    line = None
    for key in keys:
        if isinstance(node, yaml.MappingNode):
            for k, v in node.value:
                if isinstance(k, yaml.ScalarNode) and k.value == str(key):
                    line = k.start_mark.line + 1
                    node = v
                    break
            else:
                return line
        elif isinstance(node, yaml.SequenceNode) and isinstance(key, int) and key < len(node.value):
            node = node.value[key]
            line = node.start_mark.line + 1
        else:
            return line
    return line


def where(path: Path, keys: Sequence[str | int], base: Path | None = None) -> str:
    """``file:line`` (or just ``file``) for messages; the path relative to ``base`` when inside it."""
    shown = path
    if base is not None:
        try:
            shown = path.resolve().relative_to(base.resolve())
        except ValueError:
            pass
    line = line_of(path, keys)
    return f"{shown}:{line}" if line else str(shown)
