"""The build: rules become doit tasks, keyed by content, run in dependency order.

doit is embedded: a task loader hands it one task per (target, stage), with ``task_dep`` for the
rule's ``after`` and an ``uptodate`` callable that computes the stage key just before the stage
would run (its upstream outputs are known by then) and says "up to date" when the run is already
recorded in the store. doit's own dependency file lives in ``cache/``; the decisions are ours.
Parallel stages run on threads (``-j N``); doit's process pool pickles the whole runner.
"""

from __future__ import annotations

import os
import shutil
import time
import uuid
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from kolmbuild.config.compose import ComposedTarget
from kolmbuild.config.kolmfile import Project
from kolmbuild.engine.execute import receipt_of, run_stage
from kolmbuild.engine.plan import Planner, StagePlan, Watched
from kolmbuild.engine.rules import Rule, load_rules, rule_dirs
from kolmbuild.engine.stage import StageReceipt
from kolmbuild.engine.store import RunDB, RunRecord, Store
from kolmbuild.engine.ui import BuildUI, StageProgress
from kolmbuild.errors import BuildFailed, KolmError
from kolmbuild.hashing.cid import cid_of_json
from kolmbuild.hashing.files import StatCache


@dataclass(frozen=True)
class BuildOptions:
    jobs: int = 1
    keep_going: bool = False


@dataclass
class TargetState:
    composed: ComposedTarget
    planner: Planner
    outputs: dict[str, dict[str, str]] = field(default_factory=dict)
    receipts: dict[str, StageReceipt] = field(default_factory=dict)
    pending: dict[str, tuple[str, dict[str, Any]]] = field(default_factory=dict)
    ran: list[str] = field(default_factory=list)
    error: BaseException | None = None


@dataclass
class TargetOutcome:
    target: str
    overrides: tuple[str, ...]
    backend: str
    gates: str
    status: str  # "up-to-date" | "built" | "failed" | "refused"
    ran: list[str]
    duration_s: float
    artifact: Path | None = None
    error: KolmError | None = None
    receipts: dict[str, StageReceipt] = field(default_factory=dict)

    @property
    def k_score(self) -> float | None:
        ev = self.receipts.get("evaluate")
        k = ev.metrics.get("K") if ev else None
        return float(k) if isinstance(k, (int, float)) else None

    @property
    def cost_usd(self) -> float:
        total = 0.0
        for r in self.receipts.values():
            compute = r.metrics.get("compute")
            if isinstance(compute, dict) and isinstance(compute.get("cost_usd"), (int, float)):
                total += float(compute["cost_usd"])
            teacher = r.metrics.get("teacher_cost_usd")
            if isinstance(teacher, (int, float)):
                total += float(teacher)
        return total


class Engine:
    """One project's engine: its rules, store, run records and stat cache."""

    def __init__(self, project: Project, ui: BuildUI | None = None) -> None:
        self.project = project
        self.ui = ui or BuildUI(quiet=True)
        self.rule_dirs = rule_dirs(project.rules_dir)
        self.rules: dict[str, Rule] = load_rules(self.rule_dirs, project.kolmfile.pipeline)
        self.store = Store(project.cache_dir)
        self.runs = RunDB(project.cache_dir / "state.db")
        self.stats = StatCache(project.cache_dir / "stat.db")
        self.watched = Watched()

    def close(self) -> None:
        self.runs.close()
        self.stats.close()

    def __enter__(self) -> Engine:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def planner(self, composed: ComposedTarget) -> Planner:
        return Planner(self.project.root, composed, self.rules, self.store, self.runs, self.stats, self.watched)

    def plan(self, composed: ComposedTarget) -> list[StagePlan]:
        return self.planner(composed).plan()

    def install_rule(self) -> Rule | None:
        for rule in reversed(self.rules.values()):
            if rule.spec.install:
                return rule
        return None

    def out_path(self, composed: ComposedTarget) -> Path:
        p = Path(composed.config.out_path())
        return p if p.is_absolute() else self.project.root / p

    # ------------------------------------------------------------------ building

    def build(self, targets: Sequence[ComposedTarget], options: BuildOptions = BuildOptions()) -> list[TargetOutcome]:
        started = time.perf_counter()
        states = {t.name: TargetState(t, self.planner(t)) for t in targets}
        todo: list[str] = []
        refused: dict[str, KolmError] = {}
        for name, st in states.items():
            plans = st.planner.plan()
            if all(p.status == "up-to-date" for p in plans):
                for p in plans:
                    assert p.record is not None
                    st.outputs[p.stage] = dict(p.record.outputs)
                    st.receipts[p.stage] = receipt_of(p, p.record)
                continue
            try:
                self._check_budget(st.composed)
            except KolmError as exc:
                refused[name] = exc
                if not options.keep_going:
                    break
                continue
            todo.append(name)
        if todo and (options.keep_going or not refused):
            self._run_doit([states[n] for n in todo], options)
        outcomes = []
        for name, st in states.items():
            outcomes.append(self._outcome(st, refused.get(name), time.perf_counter() - started))
        return outcomes

    def _check_budget(self, composed: ComposedTarget) -> None:
        try:
            from kolmbuild.compute import check_budget
        except ImportError:
            return
        check_budget(composed.config, root=self.project.root)

    def _outcome(self, st: TargetState, refused: KolmError | None, elapsed: float) -> TargetOutcome:
        cfg = st.composed.config
        base = dict(
            target=st.composed.name, overrides=st.composed.overrides, backend=cfg.backend.name,
            gates=st.composed.choice("gates"), ran=list(st.ran), duration_s=elapsed,
            receipts=dict(st.receipts),
        )
        if refused is not None:
            return TargetOutcome(status="refused", error=refused, **base)
        complete = len(st.outputs) == len(self.rules)
        if st.error is not None or not complete:
            err = st.error
            if not isinstance(err, KolmError):
                msg = f"{type(err).__name__}: {err}" if err else "not built (an earlier target failed)"
                err = BuildFailed(f"target {st.composed.name!r}: {msg}")
            return TargetOutcome(status="failed", error=err, **base)
        artifact = self._install(st)
        return TargetOutcome(status="built" if st.ran else "up-to-date", artifact=artifact, **base)

    def _install(self, st: TargetState) -> Path | None:
        rule = self.install_rule()
        if rule is None or rule.name not in st.outputs:
            return None
        cid = st.outputs[rule.name].get(rule.spec.install or "")
        if cid is None:
            return None
        dest = self.out_path(st.composed)
        if dest.is_file() and str(self.stats.file_cid(dest)) == cid:
            return dest
        dest.parent.mkdir(parents=True, exist_ok=True)
        tmp = dest.parent / f".{dest.name}.{uuid.uuid4().hex}.tmp"
        try:
            shutil.copyfile(self.store.path_of(cid), tmp)
            os.chmod(tmp, 0o644)
            os.replace(tmp, dest)
        finally:
            tmp.unlink(missing_ok=True)
        self.ui.note(f"{st.composed.name}: wrote {os.path.relpath(dest, self.project.root)}")
        return dest

    # ------------------------------------------------------------------ doit

    def _run_doit(self, states: list[TargetState], options: BuildOptions) -> None:
        from doit.cmd_base import TaskLoader2
        from doit.doit_cmd import DoitMain
        from doit.task import dict_to_task

        tasks: list[dict[str, Any]] = []
        for st in states:
            for rule in self.rules.values():
                tasks.append({
                    "name": f"{st.composed.name}/{rule.name}",
                    "actions": [(self._action, [st, rule])],
                    "uptodate": [(self._uptodate, [st, rule])],
                    "task_dep": [f"{st.composed.name}/{d}" for d in rule.spec.after],
                    "verbosity": 2,  # doit must not capture our own output
                })

        config = {
            "dep_file": str(self.project.cache_dir / "doit.sqlite"),
            "backend": "sqlite3",
            "verbosity": 2,
            "reporter": _QuietReporter(),
            "num_process": options.jobs if options.jobs > 1 else 0,
            "par_type": "thread",
            "continue": options.keep_going,
        }

        class Loader(TaskLoader2):
            def setup(self, opt_values: dict[str, Any]) -> None:
                pass

            def load_doit_config(self) -> dict[str, Any]:
                return config

            def load_tasks(self, cmd: Any, pos_args: list[str]) -> list[Any]:
                return [dict_to_task(t) for t in tasks]

        reporter = config["reporter"]
        code = DoitMain(Loader(), config_filenames=()).run(["run", *(t["name"] for t in tasks)])
        if code not in (0, 1) and not any(st.error for st in states):
            detail = "; ".join(reporter.errors) or f"doit exited {code}"
            raise BuildFailed(f"the build engine failed: {detail.strip()}")

    def _uptodate(self, task: Any, values: Any, st: TargetState, rule: Rule) -> bool:
        try:
            doc = st.planner.key_doc(rule, st.outputs)
        except BaseException as exc:  # bad input found while hashing: fail the stage, not doit
            st.error = st.error or exc
            return False
        key = str(cid_of_json(doc))
        rec = st.planner.record_for(key)
        if rec is None:
            st.pending[rule.name] = (key, doc)
            return False
        self._accept(st, StagePlan(st.composed.name, rule, "up-to-date", key, doc, rec), rec)
        self.runs.set_last(st.composed.name, rule.name, key, doc)
        return True

    def _accept(self, st: TargetState, plan: StagePlan, rec: RunRecord) -> None:
        st.outputs[plan.stage] = dict(rec.outputs)
        st.receipts[plan.stage] = receipt_of(plan, rec)

    def _action(self, st: TargetState, rule: Rule) -> Any:
        from doit.exceptions import TaskFailed

        if st.error is not None:
            return TaskFailed(str(st.error))
        key, doc = st.pending[rule.name]
        plan = StagePlan(st.composed.name, rule, "stale", key, doc)
        progress = StageProgress(self.ui, f"{st.composed.name}: {rule.name}")
        try:
            rec = run_stage(st.planner, plan, st.outputs, st.receipts, progress)
        except BaseException as exc:
            st.error = exc
            return TaskFailed(str(exc))
        finally:
            progress.close()
        self._accept(st, plan, rec)
        st.ran.append(rule.name)
        summary = rec.metrics.get("summary", "") if isinstance(rec.metrics.get("summary"), str) else ""
        self.ui.stage_done(st.composed.name, rule.name, rec.duration_s, summary)
        return True


class _QuietReporter:
    """doit reporter that stays silent: kolmbuild reports stages itself."""

    def __init__(self) -> None:
        self.errors: list[str] = []

    def initialize(self, tasks: Any, selected_tasks: Any) -> None: ...
    def get_status(self, task: Any) -> None: ...
    def execute_task(self, task: Any) -> None: ...
    def add_failure(self, task: Any, fail: Any) -> None: ...
    def add_success(self, task: Any) -> None: ...
    def skip_uptodate(self, task: Any) -> None: ...
    def skip_ignore(self, task: Any) -> None: ...
    def teardown_task(self, task: Any) -> None: ...
    def complete_run(self) -> None: ...

    def cleanup_error(self, exception: Any) -> None:
        self.errors.append(str(exception))

    def runtime_error(self, msg: str) -> None:
        self.errors.append(msg)
