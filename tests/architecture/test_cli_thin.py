"""Every CLI verb is thin: parse, one typed library call, print.

Read with :mod:`ast` (nothing imported): the ``kolmbuild/cli`` modules

* hold no library machinery: they import none of the modules that walk the store, take the lock,
  collect the no-op stamp, run doit, fan sweep points out or order the rent gates; those are reached
  through ``Engine``, ``run_sweep`` and ``Workspace`` (tests/compute/test_workspace.py and
  tests/engine test them without click);
* read the command line's state only as the typed :class:`kolmbuild.cli.state.CliState`: no verb
  reads ``ctx.obj`` or walks to the root context for a dict.
"""

from __future__ import annotations

import ast
from pathlib import Path

from tests.architecture.test_layers import Edge, import_edges, modules
from tests.conftest import REPO

CLI = REPO / "kolmbuild" / "cli"

LIBRARY_ONLY = {
    "kolmbuild.engine.store": "store walking (Engine.gc, Engine.verify_cache)",
    "kolmbuild.engine.stamp": "the no-op stamp (Engine.build(stamp_for=...))",
    "kolmbuild.engine.lock": "the cache lock (Engine carries it)",
    "kolmbuild.engine.execute": "running stages (Engine.build)",
    "kolmbuild.engine.remote_sync": "remote cache pulls and pushes (Engine.pull/push)",
    "kolmbuild.sweep.executor": "sweep scheduling (run_sweep)",
    "kolmbuild.sweep.points": "sweep expansion (run_sweep)",
    "kolmbuild.sweep.record": "the sweep summary (run_sweep)",
    "kolmbuild.compute.adapters": "provider calls (Workspace.rent)",
    "kolmbuild.compute.job": "renting (Workspace.rent owns the gate order)",
    "kolmbuild.evaluate.gate": "gate loading (evaluate.profile)",
}
# the console script tries the stdlib-only no-op fast path before loading click: one library call
ALLOWED = {("kolmbuild.cli.entry", "kolmbuild.engine.fastpath")}
STATE_MODULES = {"state.py", "main.py"}  # where CliState is made (main) and defined (state)


def machinery(edges: list[Edge]) -> list[str]:
    return [
        f"{e}  ({why})"
        for e in edges
        if e.source.startswith("kolmbuild.cli") and (e.source, e.target) not in ALLOWED
        for prefix, why in LIBRARY_ONLY.items()
        if e.target == prefix or e.target.startswith(prefix + ".")
    ]


def test_cli_modules_hold_no_library_machinery() -> None:
    found = machinery(import_edges(modules()))
    assert not found, "CLI modules call the library, not its parts:\n" + "\n".join(found)


def untyped_state(path: Path) -> list[str]:
    hits = []
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Attribute) and node.attr in ("obj", "find_root", "find_object", "ensure_object"):
            hits.append(f"{node.lineno}: .{node.attr}")
    return hits


def test_verbs_read_the_typed_state_only() -> None:
    found = {p.name: h for p in sorted(CLI.glob("*.py")) if p.name not in STATE_MODULES and (h := untyped_state(p))}
    assert not found, f"take CliState with @pass_state (kolmbuild/cli/state.py) instead: {found}"


def test_the_checkers_see_what_they_look_for(tmp_path: Path) -> None:
    src = tmp_path / "v.py"
    src.write_text("def f(ctx):\n    d = ctx.obj or {}\n    return ctx.find_root().obj\n")
    assert sorted(untyped_state(src)) == ["2: .obj", "3: .find_root", "3: .obj"]
    edges = [Edge("kolmbuild.cli.build_cmds", "kolmbuild.engine.store", 7), Edge("kolmbuild.cli.entry", "kolmbuild.engine.fastpath", 9),
             Edge("kolmbuild.cli.x", "kolmbuild.compute.adapters.vast", 3), Edge("kolmbuild.wiring", "kolmbuild.engine.store", 1)]
    assert [m.split(":")[0] for m in machinery(edges)] == ["kolmbuild.cli.build_cmds", "kolmbuild.cli.x"]
