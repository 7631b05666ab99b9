"""Run one stage: prepare its context, call its action, store its outputs, record the run."""

from __future__ import annotations

import importlib
import os
import re
import shutil
import stat
import subprocess
import sys
import time
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

from kolmbuild.config.envvalues import under
from kolmbuild.engine.hooks import RemoteRunner
from kolmbuild.engine.plan import Planner, StagePlan
from kolmbuild.engine.stage import (
    NullProgress,
    Progress,
    SharedEntries,
    StageContext,
    StageReceipt,
    StageResult,
)
from kolmbuild.engine.store import RunRecord
from kolmbuild.errors import BuildFailed, KolmError
from kolmbuild.remote.records import is_cid


def resolve_action(spec: str, project_root: Path) -> Callable[[StageContext], StageResult | None]:
    module_name, func = spec.split(":")
    if str(project_root) not in sys.path:  # project-local actions, like make's local scripts
        sys.path.append(str(project_root))
    try:
        module = importlib.import_module(module_name)
    except ModuleNotFoundError as exc:
        raise BuildFailed(f"action {spec!r}: cannot import {exc.name!r}") from exc
    fn = getattr(module, func, None)
    if not callable(fn):
        raise BuildFailed(f"action {spec!r}: {module_name} has no function {func!r}")
    return fn


def _stays_local(rule: Any, project_root: Path, ctx: StageContext) -> bool:
    """A remote rule's action module may define ``stays_local(ctx) -> bool``: True when this run
    needs no remote machine (the train stage deciding not to train), so nothing is rented for it."""
    if not rule.spec.action:
        return False
    module_name = rule.spec.action.split(":")[0]
    resolve_action(rule.spec.action, project_root)  # imports the module, with a located error
    check = getattr(sys.modules[module_name], "stays_local", None)
    return bool(check(ctx)) if callable(check) else False


def _env_name(*parts: str) -> str:
    return "_".join(re.sub(r"[^A-Za-z0-9]", "_", p).upper() for p in parts)


def run_shell(command: str, ctx: StageContext) -> StageResult:
    """Shell rules see their paths as variables: KOLM_OUT, KOLM_IN_<PATH>, KOLM_UP_<STAGE>_<OUTPUT>."""
    env = dict(os.environ)
    env["KOLM_OUT"] = str(ctx.outdir)
    env["KOLM_TARGET"] = ctx.target
    for dotted, path in ctx.inputs.items():
        env[_env_name("KOLM_IN", dotted)] = str(path) if path else ""
    for stage, outs in ctx.upstream.items():
        for name, path in outs.items():
            env[_env_name("KOLM_UP", stage, name)] = str(path)
    proc = subprocess.run(command, shell=True, cwd=ctx.project_dir, env=env, capture_output=True, text=True)
    if proc.returncode != 0:
        tail = (proc.stderr or proc.stdout).strip().splitlines()[-5:]
        raise BuildFailed(f"stage {ctx.stage!r} of {ctx.target!r}: shell exited {proc.returncode}: " + " | ".join(tail))
    return StageResult()


def _link_upstream(workdir: Path, planner: Planner, outputs: Mapping[str, Mapping[str, str]], after: list[str]) -> dict[str, dict[str, Path]]:
    """Upstream outputs under their declared names (symlinks into the read-only store), each one
    re-hashed first: a stage never reads a damaged object (CorruptObject: the engine rebuilds it)."""
    view: dict[str, dict[str, Path]] = {}
    for stage in after:
        folder = workdir / "_up" / stage
        folder.mkdir(parents=True, exist_ok=True)
        view[stage] = {}
        for name, cid in outputs.get(stage, {}).items():
            planner.store.verify(cid)
            link = folder / name
            os.symlink(planner.store.path_of(cid), link)
            view[stage][name] = link
    return view


def _output_kind(path: Path) -> str | None:
    """None for a regular file; else what it is (a stage output must be a plain file)."""
    try:
        st = os.lstat(path)
    except FileNotFoundError:
        return "missing"
    if stat.S_ISREG(st.st_mode):
        return None
    if stat.S_ISLNK(st.st_mode):
        return "a symbolic link"
    return "a folder" if stat.S_ISDIR(st.st_mode) else "not a regular file"


def run_stage(
    planner: Planner,
    plan: StagePlan,
    outputs: Mapping[str, Mapping[str, str]],
    receipts: Mapping[str, StageReceipt],
    progress: Progress | None = None,
    run_remote: RemoteRunner | None = None,
    shared: SharedEntries | None = None,
) -> RunRecord:
    """Execute a stale stage and record it. Raises KolmError subclasses on failure.

    A ``remote: true`` rule on a non-local backend goes to ``run_remote`` (the caller's hook; the
    engine never imports the compute layer); without one it fails before anything is rented.
    ``shared``: the remote cache's shared entries, handed to the stage as ``ctx.shared``."""
    assert plan.key is not None and plan.doc is not None
    rule, store = plan.rule, planner.store
    work = store.new_workdir(f"{plan.target}-{rule.name}")
    outdir = work / "out"
    outdir.mkdir()
    try:
        ctx = StageContext(
            target=plan.target,
            stage=rule.name,
            key=plan.key,
            project_dir=planner.root,
            outdir=outdir,
            cache_dir=store.root,
            params={p: plan.doc["params"][p] for p in rule.spec.reads},
            env_values={k: v for k, v in planner.composed.env_values().items()
                        if any(under(k, r) for r in rule.spec.reads)},
            inputs={p: planner.input_path(p) for p in rule.spec.inputs},
            upstream=_link_upstream(work, planner, outputs, rule.spec.after),
            receipts=dict(receipts),
            progress=progress or NullProgress(),
            shared=shared,
        )
        started = time.perf_counter()
        try:
            backend = planner.composed.config.backend
            if rule.spec.remote and backend.kind != "local" and not _stays_local(rule, planner.root, ctx):
                # the stage runs on the rented/remote machine
                if run_remote is None:
                    raise BuildFailed(
                        f"stage {rule.name!r} of target {plan.target!r} runs on backend {backend.name!r}, "
                        "but this engine was made without a remote runner",
                        hint="pass hooks=kolmbuild.wiring.engine_hooks() to Engine",
                    )
                result = run_remote(ctx, rule.spec, planner.composed.config, work / "remote")
            elif rule.spec.action:
                result = resolve_action(rule.spec.action, planner.root)(ctx) or StageResult()
            else:
                result = run_shell(rule.spec.shell or "", ctx)
        except KolmError:
            raise
        except Exception as exc:
            raise BuildFailed(f"stage {rule.name!r} of target {plan.target!r} failed: {type(exc).__name__}: {exc}") from exc
        duration = time.perf_counter() - started
        stored: dict[str, str] = {}
        sizes: dict[str, int] = {}
        for out in rule.outputs:
            path = outdir / out.name
            kind = _output_kind(path)
            if kind is None:
                obj = store.put(path)
                stored[out.name], sizes[obj.cid] = obj.cid, obj.size
            elif kind != "missing":
                raise BuildFailed(f"stage {rule.name!r} of target {plan.target!r}: its output {out.name!r} is {kind}; "
                                  "outputs must be plain files (a link is never stored, nor made read-only)")
            elif out.name in result.remote_outputs and result.origin:
                cid, size = result.remote_outputs[out.name]
                if not is_cid(cid) or not isinstance(size, int) or size < 0:
                    raise BuildFailed(f"stage {rule.name!r} of target {plan.target!r}: its output {out.name!r} "
                                      f"is said to be in the remote cache as {cid!r}, which is not a CID")
                stored[out.name], sizes[cid] = cid, size
            elif not out.optional:
                raise BuildFailed(f"stage {rule.name!r} of target {plan.target!r} did not write its output {out.name!r}")
        metrics: dict[str, Any] = dict(result.metrics)
        pulled = result.origin if any(n in result.remote_outputs for n in stored) else None
        record = RunRecord(plan.key, rule.name, stored, metrics, duration, sizes, pulled)
        planner.runs.put(record)  # committed only now: every output is already in the store
        store.faults.hit("after-record")
        planner.runs.set_last(plan.target, rule.name, plan.key, plan.doc)
        store.faults.hit("after-last")
        return record
    finally:
        shutil.rmtree(work, ignore_errors=True)


def receipt_of(plan: StagePlan, record: RunRecord) -> StageReceipt:
    return StageReceipt(
        stage=plan.stage,
        version=plan.rule.spec.version,
        key=record.key,
        outputs=dict(record.outputs),
        metrics=dict(record.metrics),
        duration_s=record.duration_s,
    )
