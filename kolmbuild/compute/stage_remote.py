"""Run one build stage on the target's compute backend instead of in this process.

The engine hands a stage here when its rule says ``remote: true`` and the target's backend is not a
local one. The stage's inputs, upstream outputs and (when the action is a project-local module) that
module go into ``stage.tar``; its params, receipts, non-secret ``env`` values and the archive's
sha256 into ``stage.json``. Both ship through the backend's adapter, the same rent flow as
``kolmbuild compute rent`` (remote-ssh: your host; vast/lambda/runpod: provision, wait for SSH,
upload, run, download, release in ``finally`` with the ledger written first), and the far side runs
``python3 -m kolmbuild.compute.stage_runner stage.json``. Progress lines stream back into the
stage's Progress; the declared outputs come back into ``ctx.outdir``; the stage's metrics get a
``compute`` record (backend, host or instance id, and for a rented machine what it was billed: kept
in the run record, so a rebuild from the cache reuses it).

Serverless backends (together, replicate, fal, modal) run their own training jobs, not arbitrary
stages: a remote stage on one of them is refused with a ComputeError.
"""

from __future__ import annotations

import json
import os
import shutil
import tarfile
from collections.abc import Mapping
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from kolmbuild.compute import stage_runner as wire
from kolmbuild.compute.checkpoints import CheckpointSink, LocalSink
from kolmbuild.compute.rent import NotConfirmed
from kolmbuild.compute.secrets import is_secret_name
from kolmbuild.compute.stage_cache import FarCache, by_reference, checkpoint_sink, far_cache
from kolmbuild.config.models import BackendSpec, TargetConfig
from kolmbuild.engine.rules import RuleSpec
from kolmbuild.engine.stage import Progress, StageContext, StageResult
from kolmbuild.errors import BuildFailed, ComputeError
from kolmbuild.remote.cache import RemoteCache
from kolmbuild.remote.records import is_cid

TAIL_LINES = 8


@dataclass(frozen=True)
class Bundle:
    description: Path
    archive: Path


def _project_module(action: str | None, project_root: Path) -> Path | None:
    """The file or top-level package of a project-local action (kolmbuild's own are installed there)."""
    if not action:
        return None
    module = action.split(":")[0]
    top = module.split(".")[0]
    if top == "kolmbuild":
        return None
    as_path = project_root / module.replace(".", "/")
    if not (as_path.with_suffix(".py").is_file() or (as_path / "__init__.py").is_file()):
        return None
    return project_root / top if "." in module else as_path.with_suffix(".py")


def _no_pycache(info: tarfile.TarInfo) -> tarfile.TarInfo | None:
    return None if "__pycache__" in info.name.split("/") else info


def forwarded_env(names: list[str], environ: Mapping[str, str]) -> dict[str, str]:
    """The rule's ``env`` values the far side sees; secrets (keys, tokens) never leave this machine."""
    return {n: environ[n] for n in names if n in environ and not is_secret_name(n)}


def _check_no_secret_values(text: str, environ: Mapping[str, str]) -> None:
    for name, value in environ.items():
        if is_secret_name(name) and len(value) >= 8 and value in text:
            raise ComputeError(f"refusing to ship the stage: its description would carry the value of {name}")


def make_bundle(ctx: StageContext, spec: RuleSpec, backend: str, dest: Path,
                environ: Mapping[str, str], checkpoints: CheckpointSink | None = None,
                cache: FarCache | None = None, refs: Mapping[str, Mapping[str, str]] | None = None) -> Bundle:
    """Write ``stage.tar`` and ``stage.json`` for ``ctx`` into ``dest``; the checkpoints a previous,
    interrupted run sent back go in under ``cache/`` (the far side's stage cache). With a remote
    ``cache`` the far side can reach, the upstream outputs in ``refs`` (stage -> {name: CID}) are not
    shipped: the far side fetches them from the cache (kolmbuild.compute.stage_cache)."""
    refs = refs or {}
    dest.mkdir(parents=True, exist_ok=True)
    archive = dest / wire.ARCHIVE
    inputs: dict[str, str | None] = {}
    upstream: dict[str, dict[str, str]] = {}
    with tarfile.open(archive, "w", dereference=True, format=tarfile.PAX_FORMAT) as tar:
        for dotted, path in sorted(ctx.inputs.items()):
            if path is None or not path.exists():
                inputs[dotted] = None
                continue
            rel = f"inputs/{dotted}/{path.name}"
            tar.add(path, arcname=rel, filter=_no_pycache)
            inputs[dotted] = rel
        for stage, outs in sorted(ctx.upstream.items()):
            upstream[stage] = {}
            for name, path in sorted(outs.items()):
                if name in refs.get(stage, {}):
                    continue  # in the remote cache: the far side fetches it
                rel = f"upstream/{stage}/{name}"
                tar.add(path.resolve(), arcname=rel)
                upstream[stage][name] = rel
        module = _project_module(spec.action, ctx.project_dir)
        if module is not None:
            tar.add(module, arcname=f"project/{module.name}", filter=_no_pycache)
        restored = sorted((checkpoints.restore() if checkpoints is not None else {}).items())
        for rel, path in restored:
            tar.add(path, arcname=f"cache/{rel}", recursive=False)
    description = {
        "format": wire.BUNDLE_FORMAT, "target": ctx.target, "stage": ctx.stage, "key": ctx.key,
        "backend": backend, "action": spec.action, "shell": spec.shell, "outputs": list(spec.outputs),
        "params": dict(ctx.params), "inputs": inputs, "upstream": upstream,
        "receipts": {name: r.to_json() for name, r in sorted(ctx.receipts.items())},
        "env": forwarded_env(list(spec.env), environ),
        "checkpoints": {"via": "caller", "restored": [rel for rel, _ in restored]},
        "archive": {"name": wire.ARCHIVE, "sha256": wire.sha256_file(archive)},
    }
    if cache is not None:
        description["remote_cache"] = cache.to_json()
        description["upstream_cache"] = {s: dict(outs) for s, outs in sorted(refs.items()) if outs}
    text = json.dumps(description, sort_keys=True, indent=1) + "\n"
    _check_no_secret_values(text, environ)
    desc = dest / wire.DESCRIPTION
    desc.write_text(text, encoding="utf-8")
    return Bundle(desc, archive)


class RemoteLines:
    """Turns the far side's output into Progress calls and keeps the tail of its ordinary lines."""

    def __init__(self, progress: Progress) -> None:
        self.progress = progress
        self.tail: list[str] = []

    def __call__(self, line: str) -> None:
        call = wire.parse_progress(line)
        if call is None:
            if line.strip() and not line.startswith((wire.RUNNER_PREFIX, "bootstrap: ")):
                self.tail.append(line)
                del self.tail[:-TAIL_LINES]
                self.progress.log(line)
            return
        op = call["op"]
        if op == "start":
            total = call.get("total")
            self.progress.start(str(call.get("description", "")),
                                total=float(total) if isinstance(total, (int, float)) else None)
        elif op == "advance":
            raw = call.get("fields")
            fields: dict[str, Any] = raw if isinstance(raw, dict) else {}
            amount = call.get("amount")
            self.progress.advance(float(amount) if isinstance(amount, (int, float)) else 1.0, **fields)
        else:
            self.progress.log(str(call.get("message", "")))


def ssh_host(adapter: Any, environ: Mapping[str, str]) -> str | None:
    """``host:port`` of a remote-ssh backend (the user name is left out); None for other adapters."""
    from kolmbuild.compute.adapters.direct import RemoteSSHAdapter
    from kolmbuild.compute.transport import SSHTarget

    if not isinstance(adapter, RemoteSSHAdapter):
        return None
    t = SSHTarget.parse(environ.get("KOLM_REMOTE_HOST", ""))
    return f"{t.host}:{t.port}"


def compute_record(spec: BackendSpec, result: Any, host: str | None, ledger_detail: Mapping[str, Any]
                   ) -> dict[str, Any]:
    """What goes under ``metrics["compute"]``: where it ran and, for a rented machine, what it was
    billed (the ledger's metered time × the quoted rate, or the provider's reported cost).

    The bill is measured: it is written once, into this stage's run record, and every later build
    that finds the stage up to date reuses it, so a rebuild from the cache keeps the same bytes.
    The stage's wall time is the run record's own ``duration_s`` (the compute block reads it)."""
    record: dict[str, Any] = {"backend": spec.name, "kind": spec.kind, "ran": "remote"}
    if host is not None:
        record["host"] = host
    if result.instance_id is not None:
        record["instance_id"] = str(result.instance_id)
        record["run_id"] = result.run_id
        for k in ("offer_id", "image", "ssh_host"):
            if k in ledger_detail:
                record["host" if k == "ssh_host" else k] = str(ledger_detail[k])
        if isinstance(result.actual_usd, (int, float)):
            billed = result.detail.get("billed") if isinstance(result.detail, Mapping) else None
            record["cost_usd"] = round(float(result.actual_usd), 6)
            record["cost_source"] = str(result.detail.get("cost_source") or "ledger")
            if isinstance(billed, Mapping):
                record["billed_seconds"] = billed.get("billed_seconds")
                record["rate_usd_per_hour"] = billed.get("rate_usd_per_hour")
    return record


def _consent(spec: BackendSpec, config: TargetConfig, cost_usd: float, stage: str) -> None:
    """A build asks nothing mid-run: paid compute needs a budget (the build already held the quote to it)."""
    if cost_usd > 0 and config.budget.usd is None:
        raise NotConfirmed(
            f"refused: stage {stage!r} would rent {spec.name} (estimate ${cost_usd:.2f}) and the target has no budget",
            hint="set budget.usd in the kolmfile or pass --budget USD: the build rents paid compute only under a cap",
        )


def _check_adapter(adapter: Any, spec: BackendSpec) -> None:
    from kolmbuild.compute.adapters.base import ProvisionedAdapter
    from kolmbuild.compute.adapters.direct import DirectAdapter

    if not isinstance(adapter, (DirectAdapter, ProvisionedAdapter)):
        raise ComputeError(
            f"backend {spec.name!r} ({spec.kind}) runs its provider's own training jobs, not kolmbuild stages",
            hint="run remote stages on remote-ssh or a rented machine (vast, lambda, runpod), or a local backend",
        )


def collect_outputs(spec: RuleSpec, remote_out: Path, outdir: Path) -> None:
    """Move the declared outputs the far side wrote into the stage's outdir (nothing else comes in)."""
    for raw in spec.outputs:
        name = raw.rstrip("?")
        src = remote_out / name
        if src.is_file() and not src.is_symlink():
            shutil.move(str(src), outdir / name)


def _remote_error(staging: Path, run_id: str, exit_code: int) -> str:
    """``Type: message (exit N, at file.py:LINE in fn)`` from the far side's result.json."""
    try:
        err = json.loads((staging / run_id / wire.RESULT).read_text(encoding="utf-8"))["error"]
        text, where = f"{err['type']}: {err['message']}", err.get("where")
    except (OSError, ValueError, KeyError, TypeError):
        text, where = "no result.json came back", None
    return f"{text} (exit {exit_code}{f', at {where}' if where else ''})"


def _resume_hint(sink: CheckpointSink) -> str | None:
    kept = sink.restore()
    return f"the {len(kept)} checkpoint file(s) it sent back are kept: a rebuild resumes from them" if kept else None


class BootstrapLines:
    """Passes the far side's lines on, keeping its bootstrap report (setup time) when one comes."""

    def __init__(self, inner: RemoteLines) -> None:
        self.inner = inner
        self.report: dict[str, Any] | None = None

    def __call__(self, line: str) -> None:
        from kolmbuild.compute.bootstrap import parse_report

        report = parse_report(line)
        if report is None:
            self.inner(line)
            return
        self.report = report
        how = "reused" if report.get("reused") else "installed"
        self.inner.progress.log(f"bootstrap: kolmbuild {how} on the far side in {float(report['setup_s']):.1f} s"
                                f" ({report.get('variant')} torch)")


def run_remote(ctx: StageContext, spec: RuleSpec, config: TargetConfig, staging: Path,
               environ: Mapping[str, str] | None = None) -> StageResult:
    """Run the stage on ``config.backend``; return its result with the compute record merged in."""
    from kolmbuild.compute.adapters import adapter_for
    from kolmbuild.compute.bootstrap import measured_setup, prepare, record_setup
    from kolmbuild.compute.job import job_from_task
    from kolmbuild.compute.ledger import new_run_id
    from kolmbuild.compute.rent import refuse_over_budget, run_rental, wall_clock_limit
    from kolmbuild.userconfig import state_dir

    env = os.environ if environ is None else environ
    backend = config.backend
    staging.mkdir(parents=True, exist_ok=True)
    adapter = adapter_for(backend, workdir=staging, environ=env)
    _check_adapter(adapter, backend)
    conf = adapter.conf
    boot = getattr(conf, "bootstrap", None)
    job = job_from_task(config.task, ctx.project_dir, name=ctx.target)
    setup = measured_setup(state_dir(), backend.name) if boot is not None and boot.mode != "off" else None
    q = adapter.quote(job, setup_s=setup)
    refuse_over_budget(q, config.budget.usd)  # no provider call yet
    _consent(backend, config, q.cost_usd, ctx.stage)
    if backend.auth:
        adapter.token()  # credentials (or KOLM_REMOTE_HOST) present, still no provider call
    host = ssh_host(adapter, env)
    local = LocalSink.for_stage(ctx.cache_dir, ctx.stage, ctx.key,
                                on_saved=lambda rel: ctx.progress.log(f"{ctx.stage}: checkpoint {rel} is safe here"))
    sink = checkpoint_sink(ctx, local)  # and in the remote cache, when the build has one
    cache = far_cache(ctx.shared)
    refs = by_reference(ctx.shared, ctx) if cache is not None and isinstance(ctx.shared, RemoteCache) else {}
    if refs:
        n = sum(len(v) for v in refs.values())
        ctx.progress.log(f"{ctx.stage}: {n} input(s) go by reference: the far side fetches them from the remote cache")
    bundle = make_bundle(ctx, spec, backend.name, staging / "bundle", env, sink, cache, refs)
    restored = sink.restore()
    if restored:
        ctx.progress.log(f"{ctx.stage}: resuming from {len(restored)} checkpoint file(s) an earlier run sent back")
    run_id = new_run_id()
    over_ssh = host is not None or (adapter.provisioned and conf.transport != "local")
    runner = ("-m", "kolmbuild.compute.stage_runner", *(["--hangup"] if over_ssh else []), wire.DESCRIPTION)
    plan = prepare(boot, conf.python, staging / "bootstrap") if boot is not None else None
    command = plan.command(runner) if plan is not None else (getattr(conf, "python", "python3"), *runner)
    files = (bundle.description, bundle.archive, *(plan.files if plan is not None else ()))
    shipped = replace(job.with_payload(command, files, (wire.OUT_DIR, wire.RESULT)), checkpoints=sink)
    lines = RemoteLines(ctx.progress)
    relay = BootstrapLines(lines)
    ctx.progress.log(f"running on {backend.name} (run {run_id})")
    limit = wall_clock_limit(q, adapter.hourly_rate(), config.budget.usd, conf.run_limit_slack)
    try:
        result = run_rental(adapter, shipped, relay, run_id=run_id, estimate_usd=q.cost_usd, limit_s=limit)
    except ComputeError as exc:
        raise type(exc)(f"stage {ctx.stage!r} of target {ctx.target!r} failed on {backend.name}: {exc.message}",
                        hint=_resume_hint(sink) or exc.hint) from exc
    if relay.report is not None:
        record_setup(state_dir(), backend.name, relay.report)
    if result.exit_code != 0:
        tail = " | ".join(lines.tail[-5:])
        raise BuildFailed(
            f"stage {ctx.stage!r} of target {ctx.target!r} failed on {backend.name}: "
            f"{_remote_error(staging, run_id, result.exit_code)}" + (f"; remote output: {tail}" if tail else ""),
            hint=_resume_hint(sink))
    try:
        doc = json.loads((staging / run_id / wire.RESULT).read_text(encoding="utf-8"))
        metrics = dict(doc["metrics"])
        summary = str(doc.get("summary") or "")
    except (OSError, ValueError, KeyError, TypeError) as exc:
        raise BuildFailed(f"stage {ctx.stage!r} of target {ctx.target!r}: {backend.name} sent back no "
                          f"readable {wire.RESULT} ({type(exc).__name__})") from exc
    collect_outputs(spec, staging / run_id / wire.OUT_DIR, ctx.outdir)
    in_cache = _remote_outputs(spec, doc, ctx.outdir) if cache is not None and cache.push_outputs else {}
    sink.done()
    rental = adapter.ledger.get(run_id) if result.instance_id is not None else None
    record = compute_record(backend, result, host, rental.detail if rental else {})
    prior = metrics.get("compute")
    metrics["compute"] = {**(prior if isinstance(prior, dict) else {}), **record}
    origin = ctx.shared.display if in_cache and isinstance(ctx.shared, RemoteCache) else None
    return StageResult(metrics=metrics, summary=summary, remote_outputs=in_cache, origin=origin)


def _remote_outputs(spec: RuleSpec, doc: Mapping[str, Any], outdir: Path) -> dict[str, tuple[str, int]]:
    """The declared outputs the far side pushed to the remote cache instead of sending back."""
    declared = {raw.rstrip("?") for raw in spec.outputs}
    raw = doc.get("remote_outputs")
    out: dict[str, tuple[str, int]] = {}
    for name, pair in (raw.items() if isinstance(raw, dict) else ()):
        if name not in declared or (outdir / name).exists():
            continue
        if isinstance(pair, list) and len(pair) == 2 and is_cid(pair[0]) and isinstance(pair[1], int):
            out[name] = (pair[0], pair[1])
    return out
