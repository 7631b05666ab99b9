"""Dependencies point down: no import cycle, and no import against the layer order of
docs/architecture.md, counting every import statement (top level, inside functions, under
``if TYPE_CHECKING:``), read with :mod:`ast` without importing anything.

The layer table is parsed from the ```layers``` block of docs/architecture.md, so the document
and the code cannot drift apart: a new package must be placed there before this test passes.
"""

from __future__ import annotations

import ast
import re
from collections import defaultdict
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.conftest import REPO

PACKAGE = REPO / "kolmbuild"
DOC = REPO / "docs" / "architecture.md"


@dataclass(frozen=True)
class Edge:
    source: str  # importing module, e.g. kolmbuild.compute.rent
    target: str  # imported module, e.g. kolmbuild.config.compose
    line: int
    file: str = ""  # the importing file, relative to the repository

    def __str__(self) -> str:
        return f"{self.file or self.source}:{self.line}: imports {self.target}"


def modules(root: Path = PACKAGE) -> dict[str, Path]:
    """Dotted module name -> file, for every .py file of the package."""
    found: dict[str, Path] = {}
    for path in sorted(root.rglob("*.py")):
        parts = list(path.relative_to(root.parent).with_suffix("").parts)
        if parts[-1] == "__init__":
            parts.pop()
        found[".".join(parts)] = path
    return found


def _imported(node: ast.Import | ast.ImportFrom, module: str, is_package: bool) -> Iterator[str]:
    """Candidate module names one import statement names (absolute and relative forms)."""
    if isinstance(node, ast.Import):
        for alias in node.names:
            yield alias.name
        return
    if node.level:  # relative: resolve against the importing module's package
        base = module.split(".") if is_package else module.split(".")[:-1]
        base = base[: len(base) - (node.level - 1)]
        origin = ".".join([*base, *([node.module] if node.module else [])])
    else:
        origin = node.module or ""
    for alias in node.names:
        # `from pkg import sub` imports the submodule when there is one, else a name of pkg
        yield f"{origin}.{alias.name}"


def import_edges(mods: Mapping[str, Path]) -> list[Edge]:
    edges: list[Edge] = []
    for name, path in mods.items():
        tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
        for node in ast.walk(tree):  # every statement, including those inside functions
            if not isinstance(node, ast.Import | ast.ImportFrom):
                continue
            for target in _imported(node, name, path.name == "__init__.py"):
                while target not in mods and "." in target:  # a name defined in a module: the module
                    target = target.rsplit(".", 1)[0]
                if target in mods and target != name:
                    edges.append(Edge(name, target, node.lineno, _relative(path)))
    return edges


def missing_modules(mods: Mapping[str, Path]) -> list[str]:
    """Imports of a ``kolmbuild`` module that does not exist (``from kolmbuild.x.y import name``
    where there is no kolmbuild/x/y.py nor package): left behind when a module moves, they fail only
    when that line runs, and the edge walk above would count them against the parent package."""
    found: list[str] = []
    for path in mods.values():
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"), filename=str(path))):
            if isinstance(node, ast.ImportFrom) and not node.level:
                wanted = [node.module or ""]
            elif isinstance(node, ast.Import):
                wanted = [alias.name for alias in node.names]
            else:
                continue
            for module in wanted:
                if (module == "kolmbuild" or module.startswith("kolmbuild.")) and module not in mods:
                    found.append(f"{_relative(path)}:{node.lineno}: imports {module}, which does not exist")
    return found


def _relative(path: Path) -> str:
    try:
        return str(path.relative_to(REPO))
    except ValueError:
        return str(path)


def unit(module: str) -> str:
    """The layering unit of a module: its top-level package or module under kolmbuild."""
    parts = module.split(".")
    return parts[1] if len(parts) > 1 else parts[0]


def cycles(graph: Mapping[str, set[str]]) -> list[list[str]]:
    """Strongly connected components with more than one member (Tarjan, iterative)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []
    counter = 0
    for start in sorted(graph):
        if start in index:
            continue
        work: list[tuple[str, Iterator[str]]] = [(start, iter(sorted(graph.get(start, ()))))]
        index[start] = low[start] = counter
        counter += 1
        stack.append(start)
        on_stack.add(start)
        while work:
            node, children = work[-1]
            child = next(children, None)
            if child is not None:
                if child not in index:
                    index[child] = low[child] = counter
                    counter += 1
                    stack.append(child)
                    on_stack.add(child)
                    work.append((child, iter(sorted(graph.get(child, ())))))
                elif child in on_stack:
                    low[node] = min(low[node], index[child])
                continue
            work.pop()
            if work:
                parent = work[-1][0]
                low[parent] = min(low[parent], low[node])
            if low[node] == index[node]:
                component = []
                while True:
                    member = stack.pop()
                    on_stack.discard(member)
                    component.append(member)
                    if member == node:
                        break
                if len(component) > 1:
                    found.append(sorted(component))
    return found


def documented_layers(doc: Path = DOC) -> dict[str, int]:
    """Unit -> layer number, from the ```layers``` block of docs/architecture.md."""
    text = doc.read_text(encoding="utf-8")
    block = re.search(r"^```layers\n(.*?)^```", text, re.S | re.M)
    assert block, f"{doc}: no ```layers block"
    layers: dict[str, int] = {}
    for line in block.group(1).splitlines():
        m = re.match(r"\s*(\d+)\s+\S+\s*:\s*(.+)$", line)
        if not m:
            continue
        for name in m.group(2).split():
            assert name not in layers, f"{doc}: {name} is listed in two layers"
            layers[name] = int(m.group(1))
    return layers


def _describe(component: list[str], edges: list[Edge], key: Callable[[str], str]) -> str:
    """The cycle and the import statements that make it."""
    members = set(component)
    inside = [e for e in edges if key(e.source) in members and key(e.target) in members and key(e.source) != key(e.target)]
    return " <-> ".join(component) + "\n" + "\n".join(f"    {e}" for e in inside)


@pytest.fixture(scope="module")
def edges() -> list[Edge]:
    return import_edges(modules())


def test_no_cycle_between_modules(edges: list[Edge]) -> None:
    graph: dict[str, set[str]] = defaultdict(set)
    for e in edges:
        graph[e.source].add(e.target)
    found = cycles(graph)
    assert not found, "import cycles between modules:\n" + "\n".join(
        _describe(c, edges, str) for c in found
    )


def test_no_cycle_between_packages(edges: list[Edge]) -> None:
    graph: dict[str, set[str]] = defaultdict(set)
    for e in edges:
        if unit(e.source) != unit(e.target):
            graph[unit(e.source)].add(unit(e.target))
    found = cycles(graph)
    assert not found, "import cycles between packages:\n" + "\n".join(_describe(c, edges, unit) for c in found)


def test_every_kolmbuild_import_names_an_existing_module() -> None:
    found = missing_modules(modules())
    assert not found, "\n".join(found)


def test_the_missing_module_check_sees_a_stale_import(tmp_path: Path) -> None:
    mods = _tree(tmp_path, {"__init__.py": "", "a/__init__.py": "", "a/x.py": "",
                            "b.py": "from kolmbuild.a.x import f\ndef g():\n    from kolmbuild.a.gone import h\n"
                                    "import kolmbuild.a.old\n"})
    assert sorted(m.split(": ", 1)[1] for m in missing_modules(mods)) == [
        "imports kolmbuild.a.gone, which does not exist", "imports kolmbuild.a.old, which does not exist"]


def test_every_package_has_a_documented_layer() -> None:
    layers = documented_layers()
    units = {unit(m) for m in modules()}
    assert not units - set(layers), f"place these in the ```layers block of {DOC}: {sorted(units - set(layers))}"
    assert not set(layers) - units, f"{DOC} lists packages that do not exist: {sorted(set(layers) - units)}"


def test_imports_point_down_the_layers(edges: list[Edge]) -> None:
    """A package imports only from layers strictly below its own (inside itself, anything)."""
    layers = documented_layers()
    upward = [
        f"{e}  (layer {layers[unit(e.source)]} {unit(e.source)} -> layer {layers[unit(e.target)]} {unit(e.target)})"
        for e in edges
        if unit(e.source) != unit(e.target)
        and unit(e.source) in layers
        and unit(e.target) in layers
        and layers[unit(e.target)] >= layers[unit(e.source)]
    ]
    assert not upward, "imports against the layer order of docs/architecture.md:\n" + "\n".join(upward)


# ---------------------------------------------------------------- the checker itself


def _tree(tmp_path: Path, files: Mapping[str, str]) -> dict[str, Path]:
    for rel, text in files.items():
        path = tmp_path / "kolmbuild" / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
    return modules(tmp_path / "kolmbuild")


def test_checker_sees_imports_inside_functions_relative_and_type_checking(tmp_path: Path) -> None:
    mods = _tree(tmp_path, {
        "__init__.py": "",
        "a/__init__.py": "from kolmbuild.a.x import f\n",
        "a/x.py": "def f():\n    from ..b import y\n    return y\n",
        "b/__init__.py": "",
        "b/y.py": "from typing import TYPE_CHECKING\nif TYPE_CHECKING:\n    from kolmbuild.a import f\n",
        "c.py": "import kolmbuild.b.y as yy\nfrom kolmbuild.b.y import name_in_y\nfrom . import a\n",
    })  # fmt: skip
    got = {(e.source, e.target, e.line) for e in import_edges(mods)}
    assert got == {
        ("kolmbuild.a", "kolmbuild.a.x", 1),
        ("kolmbuild.a.x", "kolmbuild.b.y", 2),  # inside a function, relative
        ("kolmbuild.b.y", "kolmbuild.a", 3),  # under TYPE_CHECKING
        ("kolmbuild.c", "kolmbuild.b.y", 1),
        ("kolmbuild.c", "kolmbuild.b.y", 2),
        ("kolmbuild.c", "kolmbuild.a", 3),
    }
    graph: dict[str, set[str]] = defaultdict(set)
    for s, t, _ in got:
        if unit(s) != unit(t):
            graph[unit(s)].add(unit(t))
    assert cycles(graph) == [["a", "b"]]


def test_checker_finds_a_long_cycle_and_no_false_one() -> None:
    ring = {"a": {"b"}, "b": {"c"}, "c": {"d"}, "d": {"a"}, "e": {"a"}}
    assert cycles(ring) == [["a", "b", "c", "d"]]
    assert cycles({"a": {"b"}, "b": {"c"}, "e": {"a", "c"}}) == []


def test_documented_layers_parse(tmp_path: Path) -> None:
    doc = tmp_path / "a.md"
    doc.write_text("x\n```layers\n 0 base:   errors  atomic\n 1 config: config\nnot a row\n```\n")
    assert documented_layers(doc) == {"errors": 0, "atomic": 0, "config": 1}
