"""The CLI's typed state: the group options parsed once into a frozen CliState that verbs receive."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import click
import pytest
from click.testing import CliRunner

from kolmbuild.cli.main import cli, main
from kolmbuild.cli.state import CliState, current_state, pass_state
from kolmbuild.errors import ConfigError
from tests.conftest import write

KOLMFILE = "targets:\n  demo:\n    task: demo\n"


def test_group_options_become_one_frozen_state(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    seen: list[CliState] = []

    @click.command("probe")
    @pass_state
    def probe(state: CliState) -> None:
        seen.append(state)
        assert current_state() is state

    monkeypatch.setattr("kolmbuild.cli.main.LAZY_COMMANDS", {"probe": ("x:y", "probe")})
    monkeypatch.setattr(type(cli), "get_command", lambda self, ctx, name: probe if name == "probe" else None)
    res = CliRunner().invoke(cli, ["-C", str(tmp_path), "-f", "k.yaml", "--debug", "probe"], catch_exceptions=False)
    assert res.exit_code == 0, res.output
    [state] = seen
    assert state == CliState(directory=tmp_path, kolmfile=Path("k.yaml"), debug=True, argv=None)
    with pytest.raises(dataclasses.FrozenInstanceError):
        state.debug = False  # type: ignore[misc]
    seen.clear()
    assert main(["-C", str(tmp_path), "probe"]) == 0  # the console script's argv keys the no-op stamp
    assert seen[0].argv == ("-C", str(tmp_path), "probe") and seen[0].stamp_request() is not None


def test_project_or_none(tmp_path: Path) -> None:
    assert CliState(directory=tmp_path).project_or_none() is None  # no kolmfile here: outside a project
    with pytest.raises(ConfigError, match="no such directory"):
        CliState(directory=tmp_path / "missing").project_or_none()
    with pytest.raises(ConfigError, match="no such kolmfile"):
        CliState(directory=tmp_path, kolmfile=Path("other.yaml")).project_or_none()
    write(tmp_path / "kolmfile.yaml", "targets: [not, a, mapping]\n")
    with pytest.raises(ConfigError):  # a kolmfile that is there must load
        CliState(directory=tmp_path).project_or_none()
    write(tmp_path / "kolmfile.yaml", KOLMFILE)
    project = CliState(directory=tmp_path).project_or_none()
    assert project is not None and project.root == tmp_path.resolve()
    assert CliState(directory=tmp_path).root == tmp_path.resolve()
    assert CliState().stamp_request() is None


def test_one_target(tmp_path: Path) -> None:
    write(tmp_path / "kolmfile.yaml", KOLMFILE)
    project = CliState(directory=tmp_path).project()
    assert project.one_target() == "demo" == project.one_target("demo")
    with pytest.raises(ConfigError, match="no target named 'nope'"):
        project.one_target("nope")
    write(tmp_path / "kolmfile.yaml", KOLMFILE + "  other:\n    task: demo\n")
    with pytest.raises(Exception, match="has 2 targets: name one"):
        CliState(directory=tmp_path).project().one_target()


def test_debug_shows_the_traceback_only_when_asked(tmp_path: Path) -> None:
    quiet = CliRunner().invoke(cli, ["-C", str(tmp_path / "missing"), "status"])
    loud = CliRunner().invoke(cli, ["--debug", "-C", str(tmp_path / "missing"), "status"])
    assert quiet.exit_code == loud.exit_code == 2
    assert "no such directory" in quiet.output and "Traceback" not in quiet.output
    assert "Traceback" in loud.output
