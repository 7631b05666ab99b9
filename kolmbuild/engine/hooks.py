"""What the engine asks its caller for: a budget check and a remote stage runner.

The engine sits below :mod:`kolmbuild.compute` and never imports it. Whoever builds an Engine
passes these in (``Engine(project, hooks=…)``); :func:`kolmbuild.wiring.engine_hooks` gives the
standard ones. The guarantee "no provider call before the budget check" is the engine's, for any
caller: a runner that can call a provider is only accepted together with a budget check, and the
engine runs the check for every target before any stage of the build starts.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Protocol

if TYPE_CHECKING:
    from kolmbuild.config.models import TargetConfig
    from kolmbuild.engine.rules import RuleSpec
    from kolmbuild.engine.stage import StageContext, StageResult


class BudgetCheck(Protocol):
    def __call__(self, config: TargetConfig, root: Path) -> None:
        """Raise a KolmError (BudgetExceeded) when the target's quote exceeds its budget."""


class RemoteRunner(Protocol):
    def __call__(self, ctx: StageContext, spec: RuleSpec, config: TargetConfig, staging: Path) -> StageResult:
        """Run the stage on ``config.backend``; return its result (with the compute record)."""


@dataclass(frozen=True)
class EngineHooks:
    """None for either means: no budget is checked / a remote stage on a non-local backend fails
    with a message saying that this engine cannot run it (nothing is rented)."""

    check_budget: BudgetCheck | None = None
    run_remote: RemoteRunner | None = None

    def __post_init__(self) -> None:
        if self.run_remote is not None and self.check_budget is None:
            raise ValueError("EngineHooks: a remote runner needs a budget check (nothing is rented unchecked)")
