"""The top of the dependency graph: wires the compute layer into the engine.

The engine (below) never imports :mod:`kolmbuild.compute`; it takes hooks. This module is what
the CLI and any Python caller use to get the standard ones::

    from kolmbuild.engine.build import Engine
    from kolmbuild.wiring import engine_hooks

    with Engine(project, hooks=engine_hooks()) as engine:
        engine.build(targets)      # budget checked for every target before any stage runs

The compute modules load only when a hook is first called, so a build that rents nothing does
not pay for importing them.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

from kolmbuild.engine.hooks import EngineHooks

if TYPE_CHECKING:
    from kolmbuild.config.models import TargetConfig
    from kolmbuild.engine.rules import RuleSpec
    from kolmbuild.engine.stage import StageContext, StageResult


def check_budget(config: TargetConfig, root: Path) -> None:
    from kolmbuild.compute import check_budget as compute_check_budget
    from kolmbuild.teacher import estimate_cost

    # the teacher's estimate counts against the same budget; compute does not import the teacher
    compute_check_budget(config, root=root, teacher_cost=estimate_cost)


def run_remote(ctx: StageContext, spec: RuleSpec, config: TargetConfig, staging: Path) -> StageResult:
    from kolmbuild.compute.stage_remote import run_remote as compute_run_remote

    return compute_run_remote(ctx, spec, config, staging)


def engine_hooks() -> EngineHooks:
    """The budget check and the remote stage runner of :mod:`kolmbuild.compute`."""
    return EngineHooks(check_budget=check_budget, run_remote=run_remote)
