"""What the interpolations of a composed, not yet resolved config reach, found without resolving it.

Resolving is where two things can go wrong that must be known before it happens:

* **Expansion.** ``l1: ${l0}${l0}``, ``l2: ${l1}${l1}``… doubles at every level: forty levels ask
  OmegaConf (which does not memoize node interpolations) for 2^40 resolutions and a terabyte
  string. :attr:`Analysis.size` bounds, in linear time, how large the resolved config can get.
* **Secrets.** A value that comes from the environment (``${oc.env:OPENAI_API_KEY}``, directly or
  through other nodes) must never be written to a key document, ``state.db`` or a manifest.
  :attr:`Analysis.env_leaves` lists every such value with the variables it reads.

Interpolations are parsed with OmegaConf's own grammar, so what counts as a reference is exactly
what OmegaConf resolves: node interpolations (``${a.b}``, relative ``${..c}``) and the built-in
resolvers that select nodes by key (``oc.select``, ``oc.dict.keys``, ``oc.dict.values``).
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from kolmbuild.errors import ConfigError

Path = tuple[str | int, ...]
_KEY_RESOLVERS = ("oc.select", "oc.dict.keys", "oc.dict.values")
_KEY_PART = re.compile(r"[^.\[\]]+")
DYNAMIC = "?"  # an env variable whose name is itself computed: ${oc.env:${name}}


@dataclass(frozen=True)
class EnvLeaf:
    """A value (a leaf, or a subtree made by a resolver) that comes from environment variables."""

    path: Path
    names: tuple[str, ...]  # the variables it reads (DYNAMIC when a name is computed)
    raw: str  # the interpolation as written (holds no value from the environment)

    @property
    def dotted(self) -> str:
        return dotted(self.path)


@dataclass(frozen=True)
class Analysis:
    size: int  # an upper bound of the resolved config's size, in characters of JSON
    env_leaves: tuple[EnvLeaf, ...]


def dotted(path: Path) -> str:
    return ".".join(str(p) for p in path)


@dataclass(frozen=True)
class _Refs:
    nodes: tuple[Path, ...]
    env: tuple[str, ...]


def _parse_refs(text: str, parent: Path, where: str) -> _Refs:
    from antlr4.tree.Tree import TerminalNode  # type: ignore[import-untyped]
    from omegaconf import grammar_parser
    from omegaconf.errors import GrammarParseError
    from omegaconf.grammar.gen.OmegaConfGrammarParser import OmegaConfGrammarParser as P

    try:
        tree = grammar_parser.parse(text, parser_rule="configValue")
    except GrammarParseError:
        return _Refs((), ())  # OmegaConf refuses it when resolving, with its own message
    nodes: list[Path] = []
    env: list[str] = []
    stack: list[Any] = [tree]
    while stack:
        node = stack.pop()
        if isinstance(node, TerminalNode):
            continue
        if isinstance(node, P.InterpolationNodeContext):
            nodes.append(_key_path(node.getText()[2:-1], parent, where))
        elif isinstance(node, P.InterpolationResolverContext):
            name = node.resolverName().getText()
            seq = node.sequence()
            first = seq.element(0).getText() if seq is not None and seq.element(0) is not None else ""
            if name == "oc.env":
                env.append(DYNAMIC if "${" in first else first.strip().strip("'\""))
            elif name in _KEY_RESOLVERS and first:
                nodes.append(_key_path(first.strip().strip("'\""), parent, where))
        stack.extend(node.children or ())
    return _Refs(tuple(nodes), tuple(env))


def _key_path(key: str, parent: Path, where: str) -> Path:
    """The absolute path of ``key`` as OmegaConf reads it from a node whose container is ``parent``."""
    if "${" in key:
        raise ConfigError(
            f"{where}: an interpolation whose key is computed (${{{key}}}) is not supported: "
            "its expansion cannot be bounded before it runs",
            hint="select the node with a fixed key, or move the choice into a config group option",
        )
    dots = len(key) - len(key.lstrip("."))
    rest = key[dots:]
    base: Path = () if dots == 0 else parent[: max(0, len(parent) - (dots - 1))]
    return base + tuple(int(p) if p.isdigit() else p for p in _KEY_PART.findall(rest))


class _Walker:
    def __init__(self, root: Mapping[str, Any]) -> None:
        self.root = root
        self.size: dict[Path, int] = {}
        self.env: dict[Path, frozenset[str]] = {}
        self.active: set[Path] = set()
        self.leaves: dict[Path, EnvLeaf] = {}

    def node(self, path: Path) -> Any:
        node: Any = self.root
        for part in path:
            if isinstance(node, Mapping) and part in node:
                node = node[part]
            elif isinstance(node, Mapping) and str(part) in node:
                node = node[str(part)]
            elif isinstance(node, list) and isinstance(part, int) and 0 <= part < len(node):
                node = node[part]
            else:
                return None
        return node

    def visit(self, path: Path) -> tuple[int, frozenset[str]]:
        """(size bound, env variables) of the node at ``path``, memoized; a cycle counts nothing
        (OmegaConf reports it when resolving)."""
        if path in self.size:
            return self.size[path], self.env[path]
        if path in self.active:
            return 0, frozenset()
        self.active.add(path)
        value = self.node(path)
        size, env = 0, frozenset[str]()
        if isinstance(value, Mapping):
            size = 2
            for k in value:
                s, e = self.visit((*path, k))
                size, env = size + len(str(k)) + 4 + s, env | e
        elif isinstance(value, list):
            size = 2
            for i in range(len(value)):
                s, e = self.visit((*path, i))
                size, env = size + 1 + s, env | e
        elif isinstance(value, str) and "${" in value:
            refs = _parse_refs(value, path[:-1], dotted(path) or "config")
            size, env = len(value) + 2, frozenset(refs.env)
            for ref in refs.nodes:
                s, e = self.visit(ref)
                size, env = size + s, env | e
            if env:
                self.leaves[path] = EnvLeaf(path, tuple(sorted(env)), value)
        else:
            size = len(str(value)) + 2
        self.active.discard(path)
        self.size[path], self.env[path] = size, env
        return size, env


def analyze(raw: Mapping[str, Any]) -> Analysis:
    """Bound the resolved size of ``raw`` (``OmegaConf.to_container(cfg, resolve=False)``) and list
    the values that come from the environment."""
    walker = _Walker(raw)
    try:
        size, _ = walker.visit(())
    except RecursionError:
        raise ConfigError("the config's interpolations refer to each other too deeply to resolve") from None
    return Analysis(size, tuple(sorted(walker.leaves.values(), key=lambda leaf: dotted(leaf.path))))
