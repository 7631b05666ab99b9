"""The compute view of the folder a command runs in: its project (when it has a kolmfile), the
backend registry composed from its ``conf/`` and the built-in one, and what a target asks of
compute (its job, budget, data, the teacher's estimate).

Every ``kolmbuild compute`` verb is one call on a :class:`Workspace`; a Python program gets the
same answers from the same calls. The teacher's estimate and the user's default backend are passed
in by the caller (:func:`kolmbuild.wiring.compute_workspace`): this layer imports neither the
teacher nor the CLI.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

from kolmbuild.errors import ConfigError, DataError, UserInputError

if TYPE_CHECKING:
    from kolmbuild.compute import TeacherCost
    from kolmbuild.compute.adapters.base import OnProgress
    from kolmbuild.compute.job import Job
    from kolmbuild.compute.picker import PickResult
    from kolmbuild.compute.quote import Quote
    from kolmbuild.compute.registry import Registry
    from kolmbuild.compute.rent import Ask, Rented
    from kolmbuild.config.kolmfile import Project
    from kolmbuild.config.models import TaskSpec


@dataclass(frozen=True)
class QuoteTable:
    """``kolmbuild compute quote``: one job quoted on every backend (no code runs, nothing is spent)."""

    job: Job
    registry_version: str
    quotes: tuple[Quote, ...]
    teacher_usd: float | None

    @property
    def eligible(self) -> list[Quote]:
        return [q for q in self.quotes if q.eligible]

    @property
    def ineligible(self) -> list[Quote]:
        return [q for q in self.quotes if not q.eligible]

    def to_json(self) -> dict[str, Any]:
        return {"job": {**self.job.to_json(), "origin": self.job.origin}, "registry": self.registry_version,
                "quotes": [q.to_json() for q in self.eligible],
                "ineligible": [{"backend": q.backend, "reason": q.reason} for q in self.ineligible],
                "teacher_cost_usd": self.teacher_usd}


@dataclass(frozen=True)
class Workspace:
    root: Path
    project: Project | None
    registry: Registry
    default_backend: str | None = None  # `kolmbuild compute use NAME`, for composing targets
    teacher_cost: TeacherCost | None = field(default=None, compare=False)

    @classmethod
    def at(cls, folder: Path, project: Project | None, *, default_backend: str | None = None,
           teacher_cost: TeacherCost | None = None) -> Workspace:
        from kolmbuild.compute.registry import builtin_conf_dirs, load_registry

        root = project.root if project is not None else Path(folder).resolve()
        return cls(root, project, load_registry(builtin_conf_dirs(root)), default_backend, teacher_cost)

    # ------------------------------------------------------------------ what a target asks for

    def _project(self, target: str) -> Project:
        if self.project is None:
            raise ConfigError(f"target {target!r}: no kolmfile.yaml in {self.root}")
        return self.project

    def task(self, target: str) -> TaskSpec:
        from kolmbuild.config.compose import Composer

        composer = Composer(self._project(target), default_backend=self.default_backend)
        return composer.compose(target).config.task

    def job(self, spec: str | None = None, target: str | None = None) -> Job | None:
        """The job named by a job spec file (``--spec``) or a target; None when neither is given."""
        from kolmbuild.compute.job import job_from_task, load_job_spec

        if spec and target:
            raise UserInputError("give --spec or a TARGET, not both")
        if spec:
            path = Path(spec)
            return load_job_spec(path if path.is_absolute() else self.root / path)
        if target:
            return job_from_task(self.task(target), self._project(target).root, name=target)
        return None

    def only_target(self) -> str | None:
        """The kolmfile's target when it has exactly one."""
        if self.project is not None and len(self.project.kolmfile.targets) == 1:
            return next(iter(self.project.kolmfile.targets))
        return None

    def teacher_usd(self, target: str | None, rows: int) -> float | None:
        """The teacher's estimate for ``target`` on ``rows`` examples (None: no target, no teacher)."""
        if not target or self.project is None or self.teacher_cost is None:
            return None
        task = self.task(target)
        if task.teacher is None:
            return None
        cost = self.teacher_cost(task, rows)
        return None if cost is None else float(cost)

    def budget(self, target: str | None) -> float | None:
        """``budget.usd`` of ``target`` in the kolmfile, else the kolmfile's own (None: no cap)."""
        if self.project is None:
            return None
        kf = self.project.kolmfile
        decl = kf.targets.get(target) if target else None
        budget = decl.budget if decl is not None and decl.budget is not None else kf.budget
        usd: float | None = budget.usd
        return usd

    def data(self, target: str | None) -> Path | None:
        """The examples file of ``target``, when it is one file that exists."""
        if not target or self.project is None:
            return None
        examples = Path(self.task(target).examples)
        path = examples if examples.is_absolute() else self.project.root / examples
        return path if path.is_file() else None

    # ------------------------------------------------------------------ the verbs

    def use(self, backend: str) -> Path:
        """Make ``backend`` (which must exist) the user's default; the path of the user config written."""
        from kolmbuild.compute.defaults import write_default_backend

        self.registry.get(backend)
        return write_default_backend(backend)

    def info(self, backend: str) -> dict[str, Any]:
        """Everything the registry knows about ``backend``, its detection, a quote of the reference job."""
        from kolmbuild.compute.detect import detect
        from kolmbuild.compute.job import REFERENCE_JOB
        from kolmbuild.compute.quote import quote

        spec = self.registry.get(backend)
        return {"backend": spec.model_dump(mode="json"), "source": str(self.registry.sources[backend]),
                "detect": detect(spec).to_json(), "reference_quote": quote(spec, REFERENCE_JOB).to_json()}

    def pick(self, *, spec: str | None = None, target: str | None = None, airgap: bool = False,
             budget_usd: float | None = None, min_vram_gb: float | None = None,
             role: Literal["train", "infer"] = "train") -> PickResult:
        from kolmbuild.compute.picker import PickRequest, detect_all, pick

        req = PickRequest(airgap=airgap, budget_usd=budget_usd, min_vram_gb=min_vram_gb, role=role,
                          job=self.job(spec, target))
        return pick(self.registry, detect_all(self.registry), req)

    def quote_all(self, *, spec: str | None = None, target: str | None = None) -> QuoteTable:
        """The job (``spec``, ``target``, the kolmfile's only target, else the reference job) quoted
        on every backend, with the teacher's estimate for the target."""
        from kolmbuild.compute import setup_estimate
        from kolmbuild.compute.job import REFERENCE_JOB
        from kolmbuild.compute.quote import quote

        job = self.job(spec, target)
        if job is None and spec is None and target is None:
            target = self.only_target()
            job = self.job(None, target)
        job = job or REFERENCE_JOB
        quotes = tuple(quote(s, job, setup_s=setup_estimate(s)) for s in self.registry)
        return QuoteTable(job, self.registry.version(), quotes, self.teacher_usd(target, job.rows))

    def rent(self, backend: str, *, target: str | None = None, spec: str | None = None,
             budget_usd: float | None = None, confirm: bool = False, data: Path | None = None,
             command: tuple[str, ...] = (), run_id: str, on_progress: OnProgress, ask: Ask | None = None,
             on_quote: Callable[[Quote], None] | None = None) -> Rented:
        """Rent ``backend`` for the job of ``spec``/``target`` (else the reference job) through
        :func:`kolmbuild.compute.rent.rent`, which owns the gates (budget → token → confirm). The
        budget defaults to the kolmfile's; the target's examples ship with the trainer dry run."""
        from kolmbuild.compute.adapters import adapter_for
        from kolmbuild.compute.job import REFERENCE_JOB
        from kolmbuild.compute.rent import RentRequest
        from kolmbuild.compute.rent import rent as rent_job

        adapter = adapter_for(self.registry.get(backend), workdir=self.root / "kolm-runs")
        job = self.job(spec, target) or REFERENCE_JOB
        data_path = data if data is not None else self.data(target)
        if data_path is not None and not command:
            check_training_rows(data_path)  # the dry run would reject it on the machine, after renting
        req = RentRequest(job=job, budget_usd=budget_usd if budget_usd is not None else self.budget(target),
                          extra_usd=self.teacher_usd(target, job.rows) or 0.0, confirm=confirm,
                          command=command or None, data=data_path)
        return rent_job(adapter, req, run_id=run_id, on_progress=on_progress, ask=ask, on_quote=on_quote)


def check_training_rows(path: Path) -> None:
    """Every row of ``path`` is a JSON object with ``input`` and ``output`` (DataError naming file:line)."""
    from kolmbuild.data.jsonl import read_jsonl

    read_jsonl(path)  # UTF-8 and JSON errors, located
    for lineno, line in enumerate(path.read_text(encoding="utf-8").splitlines(), start=1):
        if not line.strip():
            continue
        row = json.loads(line)
        if not isinstance(row, dict) or not {"input", "output"} <= row.keys():
            raise DataError(f"{path}:{lineno}: a row needs 'input' and 'output'")
