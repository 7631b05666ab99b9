"""The build: rules become doit tasks, keyed by content, run in dependency order.

doit is embedded: a task loader hands it one task per (target, stage), with ``task_dep`` for the
rule's ``after`` and an ``uptodate`` callable that computes the stage key just before the stage
would run (its upstream outputs are known by then) and says "up to date" when the run is already
recorded in the store. doit's own dependency file lives in ``cache/``; the decisions are ours.
Parallel stages run on threads (``-j N``); doit's process pool pickles the whole runner.
"""

from __future__ import annotations

import glob
import os
import time
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

from kolmbuild.atomic import atomic_writer
from kolmbuild.config.compose import ComposedTarget
from kolmbuild.config.interp import DYNAMIC
from kolmbuild.config.kolmfile import Project
from kolmbuild.engine import stamp
from kolmbuild.engine.execute import receipt_of, run_stage
from kolmbuild.engine.faults import Faults
from kolmbuild.engine.hooks import EngineHooks
from kolmbuild.engine.lock import CacheLock, KeyLocks, locked
from kolmbuild.engine.plan import Planner, StagePlan, Watched
from kolmbuild.engine.remote_sync import RemoteSync
from kolmbuild.engine.results import (
    BuildOptions,
    CacheReport,
    CacheRow,
    GcReport,
    PullReport,
    PushReport,
    StampRequest,
    TargetOutcome,
    exit_code,
    nothing_to_do,
)
from kolmbuild.engine.rules import Rule, load_rules, rule_dirs
from kolmbuild.engine.stage import Progress, StageReceipt
from kolmbuild.engine.store import RunDB, RunRecord, Store
from kolmbuild.engine.ui import BuildUI, StageProgress
from kolmbuild.errors import BuildFailed, CorruptObject, KolmError, UserInputError
from kolmbuild.hashing.cid import cid_of_json
from kolmbuild.hashing.files import StatCache

if TYPE_CHECKING:
    # loaded by whoever opens a remote (its signing code is heavy)
    from kolmbuild.remote.cache import RemoteCache

__all__ = ["BuildOptions", "Engine", "EngineHooks", "StampRequest", "TargetOutcome"]

# A damaged cache object found while building is dropped and the build retried: the stage that
# made it runs again. Twice is plenty; a third failure is reported (the disk is failing).
REPAIRS = 2


@dataclass
class TargetState:
    composed: ComposedTarget
    planner: Planner
    outputs: dict[str, dict[str, str]] = field(default_factory=dict)
    receipts: dict[str, StageReceipt] = field(default_factory=dict)
    pending: dict[str, tuple[str, dict[str, Any]]] = field(default_factory=dict)
    ran: list[str] = field(default_factory=list)
    pulled: list[str] = field(default_factory=list)
    error: BaseException | None = None


class Engine:
    """One project's engine: its rules, store, run records and stat cache.

    Every public call that reads or changes the cache holds the cache lock (:func:`locked`).
    ``hooks`` bring in what lives above the engine: the budget check and the remote stage runner
    (see :mod:`kolmbuild.engine.hooks`; :func:`kolmbuild.wiring.engine_hooks` has the standard ones).
    ``remote``: a remote stage cache (kolmbuild.remote). Stale stages are looked up there before
    they run, their objects fetched only when read; with its ``push`` on, what ran is pushed. The
    engine closes it.
    """

    def __init__(self, project: Project, ui: BuildUI | None = None, hooks: EngineHooks | None = None,
                 *, remote: RemoteCache | None = None, lock_timeout_s: float = 3600.0) -> None:
        self.project = project
        self.ui = ui or BuildUI(quiet=True)
        self.hooks = hooks or EngineHooks()
        self.rule_dirs = rule_dirs(project.rules_dir)
        self.rules: dict[str, Rule] = load_rules(self.rule_dirs, project.kolmfile.pipeline)
        self.faults = Faults.from_env()
        self.lock = CacheLock(project.cache_dir, lock_timeout_s,
                              on_wait=lambda: self.ui.note("waiting for another kolmbuild on this cache…"))
        self.running = KeyLocks()  # stage keys being run now (builds of this engine on several threads)
        self.stats = StatCache(project.cache_dir / "stat.db")
        if self.stats.rebuilt:
            self.ui.note(f"kolmbuild: note: {self.stats.rebuilt}")
        self.store = Store(project.cache_dir, stats=self.stats, faults=self.faults, remote=remote)
        try:
            self.runs = RunDB(project.cache_dir / "state.db")
        except BaseException:
            self.stats.close()
            raise
        self.watched = Watched()
        self.remote = remote
        self.sync = RemoteSync(remote, self.store, self.runs) if remote is not None else None

    def close(self) -> None:
        try:
            if self.remote is not None:
                self.remote.close()
        except KolmError:
            pass  # a remote that failed while uploading was reported when it failed
        finally:
            self.runs.close()
            self.stats.close()

    def __enter__(self) -> Engine:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    @contextmanager
    def holding_lock(self) -> Iterator[Engine]:
        """Hold the cache lock across several calls (a sweep's builds)."""
        with self.lock:
            yield self

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

    # ------------------------------------------------------------------ status, clean, gc, verify

    @locked
    def status(self, targets: Sequence[ComposedTarget], stamp_for: StampRequest | None = None) -> list[StagePlan]:
        """Every stage of every target, up to date or stale and why. With ``stamp_for`` and nothing
        stale, leaves the no-op stamp that lets the next identical command answer at once."""
        plans = [p for t in targets for p in self.plan(t)]
        if stamp_for is not None and all(p.status == "up-to-date" for p in plans):
            self._write_stamp(targets, plans, stamp_for, nothing_to_do(len(targets)))
        if self.sync is not None and any(p.status != "up-to-date" for p in plans):
            planners = [self.planner(t) for t in targets]
            found = self.sync.discover(planners)  # which stale stages the remote can supply
            plans = [p for pl in planners for p in pl.plan(found)]
        return plans

    # ------------------------------------------------------------------ the remote cache

    def _need_remote(self) -> RemoteSync:
        if self.sync is None:
            raise UserInputError("no remote cache is configured",
                                 hint="pass --remote URL, set KOLM_REMOTE_CACHE, or add cache.remote to the kolmfile")
        return self.sync

    @locked
    def cache_status(self, targets: Sequence[ComposedTarget]) -> list[CacheRow]:
        """Where each stage's current run is: here, pulled (outputs on the remote), only on the remote, nowhere."""
        sync = self._need_remote()
        planners = [self.planner(t) for t in targets]
        found = sync.discover(planners)
        rows = []
        for pl in planners:
            for p in pl.plan(found):
                if p.status == "up-to-date" and p.record is not None:
                    pulled = p.record.origin is not None and not all(self.store.exists(c)
                                                                     for c in p.record.outputs.values())
                    rows.append(CacheRow(p.target, p.stage, p.key, "pulled" if pulled else "local"))
                else:
                    rows.append(CacheRow(p.target, p.stage, p.key, "remote" if p.remote else "missing"))
        return rows

    @locked
    def push(self, targets: Sequence[ComposedTarget]) -> PushReport:
        """Push every up-to-date stage of ``targets`` (objects the remote lacks, then signed records)."""
        sync = self._need_remote()
        if not sync.remote.writable:
            raise UserInputError(f"remote cache {sync.remote.display} is read-only (http): it cannot be pushed to")
        keys = [p.key for t in targets for p in self.plan(t) if p.status == "up-to-date" and p.key]
        report = sync.push(keys)
        sync.remote.flush()
        return report

    @locked
    def pull(self, targets: Sequence[ComposedTarget], progress: Progress | None = None) -> PullReport:
        """Adopt the remote's runs for the stale stages of ``targets`` and download every output of
        every stage, so the next build needs no network."""
        sync = self._need_remote()
        planners = [self.planner(t) for t in targets]
        found = sync.discover(planners)
        pulled = tuple(f"{pl.target}/{p.stage}" for pl in planners for p in sync.adopt(pl, found))
        before = sync.remote.stats.bytes_down
        wanted: list[str] = []
        missing: list[str] = []
        for pl in planners:
            for p in pl.plan():
                if p.record is None:
                    missing.append(f"{p.target}/{p.stage}")
                    continue
                wanted.extend(c for c in p.record.outputs.values() if not self.store.exists(c))
        wanted = list(dict.fromkeys(wanted))
        if progress is not None:
            progress.start("pulling objects", total=len(wanted))
        fetched = 0
        for cid in wanted:
            try:
                if self.store.fetch(cid):
                    fetched += 1
            except CorruptObject:
                sync.forget_unfetchable({cid}, [])
            if progress is not None:
                progress.advance(1)
        for pl in planners:  # a record whose object the remote could not supply is stale again
            missing.extend(f"{p.target}/{p.stage}" for p in pl.plan() if p.record is None
                           and f"{p.target}/{p.stage}" not in missing)
        stamp.invalidate(self.project.cache_dir)
        return PullReport(pulled, fetched, sync.remote.stats.bytes_down - before, tuple(missing))

    @locked
    def clean(self, targets: Sequence[ComposedTarget]) -> list[Path]:
        """Remove the installed artifacts of ``targets`` (the cache stays); return what was removed."""
        removed = []
        for t in targets:
            out = self.out_path(t)
            if out.is_file() or out.is_symlink():
                out.unlink()
                removed.append(out)
        stamp.invalidate(self.project.cache_dir)
        return removed

    @locked
    def gc(self, keep: Sequence[ComposedTarget]) -> GcReport:
        """Drop run records and objects that no current stage of ``keep`` references."""
        keep_keys: set[str] = set()
        for t in keep:
            keep_keys.update(p.key for p in self.plan(t) if p.key and p.record)
        keep_cids = self.runs.referenced_cids(keep_keys)
        removed_runs = self.runs.drop_runs_except(keep_keys)
        removed, freed = 0, 0
        for obj in self.store.iter_objects():
            if obj.name not in keep_cids:
                freed += obj.stat().st_size
                self.store.remove_entry(obj)
                removed += 1
        swept = self.store.sweep_tmp(older_than_s=0)  # we hold the lock: no build is mid-stage
        stamp.invalidate(self.project.cache_dir)
        return GcReport(removed, freed, removed_runs, swept)

    @locked
    def verify_cache(self, progress: Progress | None = None) -> CacheReport:
        """Re-hash every stored object; remove those that fail and the run records naming them."""
        started = time.perf_counter()
        checked, total, bad = self.store.check_all(progress)
        dropped = self.runs.drop_runs_using({b.name.rsplit("/", 1)[-1] for b in bad})
        stamp.invalidate(self.project.cache_dir)
        return CacheReport(checked, total, tuple(bad), dropped, time.perf_counter() - started)

    # ------------------------------------------------------------------ building

    @locked
    def build(self, targets: Sequence[ComposedTarget], options: BuildOptions | None = None,
              stamp_for: StampRequest | None = None) -> list[TargetOutcome]:
        """Build the stale stages of ``targets`` and install their artifacts.

        A damaged cache object met on the way is dropped and the target built again (up to
        :data:`REPAIRS` times), so what ships is made from intact bytes or not at all.
        """
        options = options or BuildOptions()
        for t in targets:
            self._check_install_path(t)
        outcomes = self._build_once(targets, options)
        local_repairs = 0
        # A repair for an object the remote could not supply drops at least one pulled run (whose
        # key is not asked for again), so those are bounded by the number of stages.
        for _ in range(REPAIRS + len(self.rules) * len(targets)):
            redo = [i for i, o in enumerate(outcomes) if isinstance(o.error, CorruptObject)]
            if not redo:
                break
            errors = [e for e in (outcomes[i].error for i in redo) if isinstance(e, CorruptObject)]
            if not all(self._remote_could_not_supply(e) for e in errors):
                local_repairs += 1
                if local_repairs > REPAIRS:
                    break
            for i, err in zip(redo, errors, strict=True):
                self.ui.note(f"{outcomes[i].target}: {err.message}; the stage that made it runs again")
            if self.sync is not None:  # pulled runs that cannot be fetched any more are not up to date
                self.sync.forget_unfetchable({e.cid for e in errors}, [self.planner(targets[i]) for i in redo])
            again = self._build_once([targets[i] for i in redo], options)
            for i, o in zip(redo, again, strict=True):
                prev = outcomes[i]
                status = "built" if o.status == "up-to-date" and prev.ran else o.status
                ran = prev.ran + o.ran
                pulled = [s for s in dict.fromkeys(prev.pulled + o.pulled) if s not in ran]
                outcomes[i] = replace(o, ran=ran, pulled=pulled, duration_s=prev.duration_s + o.duration_s,
                                      status=status)
        if self.remote is not None:
            self._push_built(outcomes)
        if exit_code(outcomes) == 0:
            if all(o.status == "up-to-date" for o in outcomes):
                self.ui.note(nothing_to_do(len(outcomes)))
            if stamp_for is not None:
                plans = [p for t in targets for p in self.plan(t)]
                self._write_stamp(targets, plans, stamp_for, nothing_to_do(len(outcomes)))
        return outcomes

    def _remote_could_not_supply(self, err: CorruptObject) -> bool:
        return self.remote is not None and (err.cid in self.remote.bad_cids or self.remote.down is not None)

    def _push_built(self, outcomes: list[TargetOutcome]) -> None:
        """With push on: the runs this build made here go to the remote (and the shared entries its
        stages wrote finish uploading)."""
        assert self.remote is not None and self.sync is not None
        try:
            if self.remote.push_enabled and self.remote.down is None:  # a down remote was warned about once
                for o in outcomes:
                    keys = [o.receipts[s].key for s in o.ran if s in o.receipts]
                    if keys:
                        report = self.sync.push(keys)
                        o.pushed.extend(report.runs)
                        for stage, why in report.skipped:
                            if self.remote.down is None:
                                self.ui.warn(f"{o.target}: {stage} was not pushed: {why}")
        finally:
            self.remote.flush()

    def _adopt_remote(self, states: Mapping[str, TargetState]) -> None:
        """Before anything runs: adopt the remote's runs for the stale stages it can supply."""
        if self.sync is None:
            return
        planners = [st.planner for st in states.values()]
        if all(p.status == "up-to-date" for pl in planners for p in pl.plan()):
            return  # the up-to-date path never touches the network
        found = self.sync.discover(planners)
        for st in states.values():
            for p in self.sync.adopt(st.planner, found):
                st.pulled.append(p.stage)
                self.ui.note(f"{st.composed.name}: {p.stage:<10} pulled from the remote cache")

    def _build_once(self, targets: Sequence[ComposedTarget], options: BuildOptions) -> list[TargetOutcome]:
        started = time.perf_counter()
        states = {t.name: TargetState(t, self.planner(t)) for t in targets}
        self._adopt_remote(states)
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
        return [self._outcome(st, refused.get(name), time.perf_counter() - started) for name, st in states.items()]

    def _check_budget(self, composed: ComposedTarget) -> None:
        if self.hooks.check_budget is not None:
            self.hooks.check_budget(composed.config, self.project.root)

    def _check_install_path(self, composed: ComposedTarget) -> None:
        """Refuse, before anything runs, an install path that is a folder or cannot be written."""
        if self.install_rule() is None:
            return
        dest = self.out_path(composed)
        if dest.is_dir():
            raise UserInputError(f"{dest}: the artifact's install path (out / --out) is a folder; name a file")
        parent = dest.parent
        while not parent.exists() and parent != parent.parent:
            parent = parent.parent
        if not parent.is_dir():
            raise UserInputError(f"{dest}: cannot install the artifact there: {parent} is not a folder")
        if not os.access(parent, os.W_OK | os.X_OK):
            raise UserInputError(f"{dest}: cannot install the artifact there: {parent} is not writable")

    def _outcome(self, st: TargetState, refused: KolmError | None, elapsed: float) -> TargetOutcome:
        cfg = st.composed.config
        base: dict[str, Any] = dict(
            target=st.composed.name, overrides=st.composed.overrides, backend=cfg.backend.name,
            gates=st.composed.choice("gates"), ran=list(st.ran), duration_s=elapsed,
            receipts=dict(st.receipts), pulled=[s for s in st.pulled if s not in st.ran],
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
        try:
            artifact = self._install(st)
        except KolmError as exc:
            return TargetOutcome(status="failed", error=exc, **base)
        return TargetOutcome(status="built" if st.ran or st.pulled else "up-to-date", artifact=artifact, **base)

    def _install(self, st: TargetState) -> Path | None:
        """Copy the install rule's output to the target's out path, re-hashed on the way (a
        damaged object raises CorruptObject and nothing is installed), by temp file and rename."""
        rule = self.install_rule()
        if rule is None or rule.name not in st.outputs:
            return None
        cid = st.outputs[rule.name].get(rule.spec.install or "")
        if cid is None:
            return None
        dest = self.out_path(st.composed)
        self._check_install_path(st.composed)
        if dest.is_file() and not dest.is_symlink() and str(self.stats.file_cid(dest)) == cid:
            return dest
        for stale in dest.parent.glob(glob.escape(f".{dest.name}.") + "*.tmp"):  # left by a build killed mid-install
            stale.unlink(missing_ok=True)
        try:
            with atomic_writer(dest, mode=0o644) as f:
                self.store.copy_to(cid, f)
                f.flush()
                self.faults.hit("before-install")
        except OSError as exc:
            raise UserInputError(f"{dest}: cannot install the artifact there: {exc.strerror or exc}") from exc
        self.faults.hit("after-install")
        self.ui.note(f"{st.composed.name}: wrote {os.path.relpath(dest, self.project.root)}")
        return dest

    def _write_stamp(self, targets: Sequence[ComposedTarget], plans: Sequence[StagePlan], request: StampRequest,
                     message: str) -> None:
        """Everything this "nothing to do" depended on, by stat (see engine/stamp.py)."""
        files = stamp.config_paths(self.project, self.rule_dirs) | self.watched.files
        files.update(self.out_path(t) for t in targets)
        objects = {self.store.path_of(c) for p in plans if p.record is not None for c in p.record.outputs.values()}
        env_names = [v for r in self.rules.values() for v in r.spec.env]
        env_names += [n for t in targets for n in t.env_names]  # ${oc.env:…} in the config
        if DYNAMIC in env_names:  # ${oc.env:${x}}: no fixed variable to watch, so no fast path
            return
        stamp.write_stamp(
            self.project.cache_dir, stamp.stamp_key(request.cwd, list(request.args)), files=files,
            dirs=set(self.watched.dirs), objects=objects, env_names=env_names,
            build_message=message, status_lines=[p.line() for p in plans],
        )

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

        reporter = _QuietReporter()
        config["reporter"] = reporter
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
        if rec is None and self.sync is not None:
            try:
                rec = self.sync.lookup(st.planner, rule, key, doc)
            except Exception as exc:  # --remote-required and the remote went down
                st.error = st.error or exc
                return False
            if rec is not None:
                st.pulled.append(rule.name)
                self.ui.note(f"{st.composed.name}: {rule.name:<10} pulled from the remote cache")
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
        with self.running.hold(key):  # a concurrent build (a sweep's other point) may be running this key
            done = st.planner.record_for(key)
            if done is not None:  # it just ran it: take that run, as a cache hit
                self._accept(st, replace(plan, status="up-to-date", record=done), done)
                self.runs.set_last(st.composed.name, rule.name, key, doc)
                return True
            progress = StageProgress(self.ui, f"{st.composed.name}: {rule.name}")
            try:
                rec = run_stage(st.planner, plan, st.outputs, st.receipts, progress, self.hooks.run_remote,
                                shared=self.remote)
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
