"""The command line's state: what the group options (``-C``, ``-f``, ``--debug``) and the raw argv
say, parsed once into a frozen dataclass that every verb receives typed (Click's
``make_pass_decorator``), instead of a dict each helper re-reads.

    @click.command("status")
    @pass_state
    def status(state: CliState, ...) -> None:
        project = state.project()
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from pathlib import Path
from typing import TYPE_CHECKING, NoReturn

import click

from kolmbuild.errors import ConfigError

if TYPE_CHECKING:
    from kolmbuild.config.kolmfile import Project
    from kolmbuild.engine.results import StampRequest


@dataclass(frozen=True)
class CliState:
    directory: Path | None = None  # -C DIR
    kolmfile: Path | None = None  # -f FILE
    debug: bool = False  # --debug: tracebacks for errors
    argv: tuple[str, ...] | None = None  # the raw arguments, when run from the console script

    def with_options(self, directory: str | None, kolmfile: str | None, debug: bool) -> CliState:
        return replace(self, directory=Path(directory) if directory else None,
                       kolmfile=Path(kolmfile) if kolmfile else None, debug=debug)

    @property
    def root(self) -> Path:
        """The folder the command runs in (``-C DIR``, else the current one), absolute."""
        return (self.directory or Path(".")).resolve()

    def project(self) -> Project:
        """The project of the kolmfile (``-f``, else found from ``-C``/the current folder up)."""
        from kolmbuild.config.kolmfile import load_project

        return load_project(self.directory, self.kolmfile)

    def project_or_none(self) -> Project | None:
        """:meth:`project`, or None when the folder has no kolmfile and none was named.

        A kolmfile named with ``-f``, or present in the folder, must load: its errors are reported.
        """
        from kolmbuild.config.kolmfile import KOLMFILE_NAMES

        if self.directory is not None and not self.root.is_dir():
            raise ConfigError(f"-C {self.directory}: no such directory")
        if self.kolmfile is None and not any((self.root / n).is_file() for n in KOLMFILE_NAMES):
            return None
        return self.project()

    def stamp_request(self) -> StampRequest | None:
        """Where the no-op fast path will look for this command's answer (None when not run from argv)."""
        from kolmbuild.engine.results import StampRequest

        return None if self.argv is None else StampRequest.for_argv(list(self.argv))


pass_state = click.make_pass_decorator(CliState, ensure=True)


def current_state() -> CliState:
    """The state of the command running now (for helpers that are not verbs)."""
    return click.get_current_context().ensure_object(CliState)


def exit_with(code: int) -> NoReturn:
    """End the running verb with exit status ``code`` (for verbs whose outcome is a status, not an error)."""
    click.get_current_context().exit(code)
