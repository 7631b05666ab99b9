"""The top of the dependency graph: wires the compute layer into the engine and the composer.

The engine and the config layer (below) never import :mod:`kolmbuild.compute`; they take hooks
and values. This module is what the CLI and any Python caller use to get the standard ones::

    from kolmbuild.engine.build import Engine
    from kolmbuild.wiring import composer, engine_hooks

    targets = [composer(project).compose("redact")]   # `compute use NAME` is the default backend
    with Engine(project, hooks=engine_hooks()) as engine:
        engine.build(targets)      # budget checked for every target before any stage runs

The compute modules load only when a hook is first called, so a build that rents nothing does
not pay for importing them.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

from kolmbuild.config.compose import Composer
from kolmbuild.engine.hooks import EngineHooks

if TYPE_CHECKING:
    from kolmbuild.compute.workspace import Workspace
    from kolmbuild.config.kolmfile import Project
    from kolmbuild.config.models import TargetConfig
    from kolmbuild.engine.rules import RuleSpec
    from kolmbuild.engine.stage import StageContext, StageResult


def teacher_cost(task: Any, rows: int) -> float | None:
    """The teacher's estimated cost of labelling ``rows`` examples of ``task`` (it counts against
    the same budget as compute; compute does not import the teacher, it is handed this)."""
    from kolmbuild.teacher import estimate_cost

    return estimate_cost(task, rows)


def check_budget(config: TargetConfig, root: Path) -> None:
    from kolmbuild.compute import check_budget as compute_check_budget

    compute_check_budget(config, root=root, teacher_cost=teacher_cost)


def run_remote(ctx: StageContext, spec: RuleSpec, config: TargetConfig, staging: Path) -> StageResult:
    from kolmbuild.compute.stage_remote import run_remote as compute_run_remote

    return compute_run_remote(ctx, spec, config, staging)


def engine_hooks() -> EngineHooks:
    """The budget check and the remote stage runner of :mod:`kolmbuild.compute`."""
    return EngineHooks(check_budget=check_budget, run_remote=run_remote)


def user_default_backend() -> str | None:
    """The backend ``kolmbuild compute use NAME`` chose, or None.

    A broken user config (unreadable, not YAML) must not stop a build that names no backend: it
    counts as no choice here, and ``kolmbuild compute use`` reports it."""
    from kolmbuild.compute import default_backend_name
    from kolmbuild.errors import ConfigError

    try:
        return default_backend_name()
    except ConfigError:
        return None


def composer(project: Project) -> Composer:
    """A :class:`~kolmbuild.config.compose.Composer` whose default backend is the user's own."""
    return Composer(project, default_backend=user_default_backend())


def compute_workspace(folder: Path, project: Project | None) -> Workspace:
    """The compute view of ``folder`` (and its project), with the user's default backend and the
    teacher's estimate wired in: what every ``kolmbuild compute`` verb calls."""
    from kolmbuild.compute.workspace import Workspace

    return Workspace.at(folder, project, default_backend=user_default_backend(), teacher_cost=teacher_cost)
