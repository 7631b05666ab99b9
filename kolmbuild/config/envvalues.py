"""Config values that come from the environment (``${oc.env:…}``): used, never recorded.

A composed config is used in two ways. The build reads its *values* (a teacher's API key, a base
URL from ``$TEACHER_URL``); the engine *records* it (the key document in ``cache/state.db``, the
artifact's manifest, ``--cfg``). For a value that came from the environment the record holds the
interpolation as written (``${oc.env:OPENAI_API_KEY}``) and the stage key holds a fingerprint of
the value (scrypt with a fixed per-key salt when a variable names a secret, as for a rule's
``env``; sha256 otherwise), so a change still rebuilds what reads it and the value itself is
never written anywhere.
"""

from __future__ import annotations

import copy
import functools
import hashlib
from collections.abc import Iterable, Mapping
from typing import Any

from kolmbuild.config.interp import DYNAMIC, EnvLeaf
from kolmbuild.hashing.jcs import canonical_json

_SECRET_WORDS = ("KEY", "TOKEN", "SECRET", "PASSWORD", "PASSPHRASE", "CREDENTIAL")


def is_secret_name(name: str) -> bool:
    """A variable whose value is a credential: a computed name counts as one."""
    return name == DYNAMIC or any(w in name.upper() for w in _SECRET_WORDS)


def lookup_path(tree: Any, path: Iterable[str | int]) -> Any:
    node = tree
    for part in path:
        if isinstance(node, Mapping) and (part in node or str(part) in node):
            node = node[part] if part in node else node[str(part)]
        elif isinstance(node, list) and isinstance(part, int) and 0 <= part < len(node):
            node = node[part]
        else:
            return None
    return node


def _set_path(tree: Any, path: tuple[str | int, ...], value: Any) -> None:
    parent = lookup_path(tree, path[:-1])
    last = path[-1]
    if isinstance(parent, dict) and (last in parent or str(last) in parent):
        parent[last if last in parent else str(last)] = value
    elif isinstance(parent, list) and isinstance(last, int) and 0 <= last < len(parent):
        parent[last] = value


def public_tree(tree: Mapping[str, Any], leaves: Iterable[EnvLeaf]) -> dict[str, Any]:
    """``tree`` with every value from the environment replaced by its interpolation as written."""
    out = copy.deepcopy(dict(tree))
    for leaf in leaves:
        _set_path(out, leaf.path, leaf.raw)
    return out


def fingerprint(leaf: EnvLeaf, value: Any) -> str:
    """Enough to notice a change of the value, never the value (see the module's docstring)."""
    data = canonical_json(value)
    if any(is_secret_name(n) for n in leaf.names):
        return _slow_digest(leaf.dotted, data)
    return hashlib.sha256(data).hexdigest()


@functools.lru_cache(maxsize=32)
def _slow_digest(dotted: str, data: bytes) -> str:
    # a fixed salt per config key, not per cache: stage keys must match across machines
    salt = b"kolmbuild/config-env/" + dotted.encode()
    return "scrypt:" + hashlib.scrypt(data, salt=salt, n=2**14, r=8, p=1, dklen=32).hex()


def under(dotted: str, read: str) -> bool:
    """Whether the config path ``dotted`` is inside (or contains) the subtree ``read``."""
    return dotted == read or dotted.startswith(read + ".") or read.startswith(dotted + ".")


def overlay(subtree: Any, at: str, values: Mapping[str, Any]) -> Any:
    """``subtree`` (the public value at dotted path ``at``) with the environment's values put back:
    what a stage gets when it reads its params."""
    if not values:
        return subtree
    if at in values:
        return values[at]
    for dotted, value in values.items():  # ``at`` inside a value that came from the environment
        if at.startswith(dotted + "."):
            return lookup_path(value, _parts(at[len(dotted) + 1 :]))
    inside = {d[len(at) + 1 :]: v for d, v in values.items() if d.startswith(at + ".")}
    if not inside:
        return subtree
    out = copy.deepcopy(subtree)
    for rel, value in inside.items():
        _set_path(out, _parts(rel), value)
    return out


def _parts(dotted: str) -> tuple[str | int, ...]:
    return tuple(int(p) if p.isdigit() else p for p in dotted.split("."))
