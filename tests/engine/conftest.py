"""Engine fixtures: the shell project of tests/conftest.py with an install rule, used in-process."""

from __future__ import annotations

from pathlib import Path

import pytest

from kolmbuild.config.compose import Composer
from kolmbuild.config.kolmfile import load_project
from kolmbuild.engine.build import Engine
from tests.conftest import ShellProject, write

ARTIFACT = "artifacts/demo-0.1.0.kolm"


def add_pack_rule(project: ShellProject) -> ShellProject:
    """A fourth stage, ``pack``, after joined and echo, whose output is installed as the artifact."""
    write(project.root / "rules/pack.yaml", """
        name: pack
        version: 1
        after: [joined, echo]
        outputs: [artifact.kolm]
        install: artifact.kolm
        shell: echo pack >> runs.log; cat "$KOLM_UP_JOINED_JOINED_TXT" "$KOLM_UP_ECHO_ECHO_TXT" > "$KOLM_OUT/artifact.kolm"
    """)
    kf = project.root / "kolmfile.yaml"
    kf.write_text(kf.read_text().replace("pipeline: [count, joined, echo]", "pipeline: [count, joined, echo, pack]"))
    return project


@pytest.fixture
def packed(shell_project: ShellProject) -> ShellProject:
    return add_pack_rule(shell_project)


def open_engine(root: Path, **kw: object) -> tuple[Engine, list]:
    """An Engine on ``root`` (no click) and the composed targets of its kolmfile."""
    project = load_project(root)
    composer = Composer(project)
    targets = [composer.compose(t, []) for t in project.kolmfile.targets]
    return Engine(project, **kw), targets  # type: ignore[arg-type]


def stage_outputs(root: Path) -> dict[str, dict[str, str]]:
    """stage -> {output: CID} as the engine plans it now (up-to-date stages only)."""
    engine, targets = open_engine(root)
    with engine:
        return {p.stage: dict(p.record.outputs) for t in targets for p in engine.status([t]) if p.record}
