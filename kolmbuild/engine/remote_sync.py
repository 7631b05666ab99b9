"""Between the local cache and a remote one: which stale stages the remote can supply, adopting
their records, and pushing what was built here.

Lookups happen only for stages that are not up to date here, wave by wave along the stage graph
(a stage's key needs its upstream outputs, which a remote record supplies), each wave's keys fetched
concurrently. A record is adopted only when it fits the stage's rule (its stage, declared outputs,
required outputs present): the remote proved who signed it, the rule decides whether it makes sense.
Adopted records are stored here with their ``origin``; their objects are fetched only when a stage
reads them or the install copies one (kolmbuild.engine.store).
"""

from __future__ import annotations

import threading
from collections.abc import Iterable, Mapping, Sequence
from typing import TYPE_CHECKING, Any

from kolmbuild.engine.plan import Planner, StagePlan
from kolmbuild.engine.results import PushReport
from kolmbuild.engine.rules import Rule
from kolmbuild.engine.store import RunDB, RunRecord, Store
from kolmbuild.remote.records import RunDoc

if TYPE_CHECKING:
    from kolmbuild.remote.cache import RemoteCache


def check_run(doc: RunDoc, rule: Rule) -> str | None:
    """Why a (trusted) remote record cannot be this rule's run, or None when it fits."""
    if doc.stage != rule.name:
        return f"it is a run of stage {doc.stage!r}, not {rule.name!r}"
    declared = {o.name: o.optional for o in rule.outputs}
    extra = sorted(set(doc.outputs) - set(declared))
    if extra:
        return f"it names {extra[0]!r}, which is not an output of {rule.name!r}"
    missing = [n for n, optional in declared.items() if not optional and n not in doc.outputs]
    if missing:
        return f"it lacks the output {missing[0]!r}"
    if doc.sizes and set(doc.sizes) != set(doc.outputs.values()):
        return "its sizes do not match its outputs"
    return None


def as_record(doc: RunDoc, origin: str) -> RunRecord:
    return RunRecord(doc.key, doc.stage, dict(doc.outputs), dict(doc.metrics), doc.duration_s, dict(doc.sizes),
                     origin)


def as_doc(rec: RunRecord) -> RunDoc:
    return RunDoc(rec.key, rec.stage, dict(rec.outputs), dict(rec.sizes), dict(rec.metrics), rec.duration_s)


class RemoteSync:
    def __init__(self, remote: RemoteCache, store: Store, runs: RunDB) -> None:
        self.remote = remote
        self.store = store
        self.runs = runs
        # Each key is asked of the remote once per process, and the answer kept: a sweep's points
        # build on threads, and one must not miss a run another has just found but not yet recorded.
        self._guard = threading.Lock()
        self._seen: dict[str, RunDoc | None] = {}  # key -> the remote's record (None: none, or unusable now)
        self._recording = threading.Lock()

    def _ask(self, keys: Sequence[str]) -> dict[str, RunDoc]:
        """The remote's records for ``keys``, each asked once (concurrent callers wait for the first
        asker's answer). A down remote supplies nothing more."""
        with self._guard:
            if self.remote.down is not None:
                return {}
            new = [k for k in dict.fromkeys(keys) if k not in self._seen]
            if new:
                docs = self.remote.get_runs(new)
                for k in new:
                    self._seen[k] = docs.get(k)
            return {k: d for k in keys if (d := self._seen.get(k)) is not None}

    def _forget(self, cids: set[str]) -> None:
        """Records naming any of ``cids`` are not used again in this process."""
        with self._guard:
            for k, d in self._seen.items():
                if d is not None and cids.intersection(d.outputs.values()):
                    self._seen[k] = None

    def discover(self, planners: Sequence[Planner]) -> dict[str, RunRecord]:
        """Trusted remote runs (by key) for the stages of ``planners`` that are stale here."""
        found: dict[str, RunRecord] = {}
        tried: set[str] = set()
        while self.remote.down is None:
            ask: list[tuple[str, Rule]] = []
            for planner in planners:
                for p in planner.plan(found):
                    if p.status == "stale" and not p.remote and p.key is not None and p.key not in tried:
                        ask.append((p.key, p.rule))
            if not ask:
                break
            tried.update(k for k, _ in ask)
            docs = self._ask([k for k, _ in ask])
            new = 0
            for key, rule in ask:
                doc = docs.get(key)
                if doc is None or key in found:
                    continue
                problem = check_run(doc, rule)
                if problem:
                    self.remote.warn_once(f"runs/{key}.json",
                                          f"remote cache {self.remote.display}: ignoring runs/{key}.json: {problem}")
                    continue
                found[key] = as_record(doc, self.remote.display)
                new += 1
            if not new:
                break
        return found

    def adopt(self, planner: Planner, found: Mapping[str, RunRecord]) -> list[StagePlan]:
        """Record here the remote runs ``planner``'s stale stages can use; return the plans of those
        this call recorded (not those another build of this engine recorded first)."""
        adopted = []
        for p in planner.plan(found):
            if p.remote and p.record is not None and p.key is not None and p.doc is not None:
                if self._record(planner, p.stage, p.key, p.doc, p.record):
                    adopted.append(p)
        return adopted

    def lookup(self, planner: Planner, rule: Rule, key: str, key_doc: Mapping[str, Any]) -> RunRecord | None:
        """Mid-build, for one stage whose key became known only now (an upstream stage ran here and
        made bytes the remote has seen: early cutoff): the remote's run, adopted, or None (also when
        another build of this engine has just recorded it: the stage then finds it here)."""
        doc = self._ask([key]).get(key)
        if doc is None:
            return None
        problem = check_run(doc, rule)
        if problem:
            self.remote.warn_once(f"runs/{key}.json",
                                  f"remote cache {self.remote.display}: ignoring runs/{key}.json: {problem}")
            return None
        rec = as_record(doc, self.remote.display)
        return rec if self._record(planner, rule.name, key, key_doc, rec) else None

    def _record(self, planner: Planner, stage: str, key: str, key_doc: Mapping[str, Any], rec: RunRecord) -> bool:
        """Record ``rec`` here; False when a usable run of ``key`` was recorded meanwhile (a sweep's
        other point pulled or ran it: each key is pulled once)."""
        with self._recording:
            if planner.record_for(key) is None:
                for cid in rec.outputs.values():  # a damaged copy here must not shadow the remote's
                    if self.store.exists(cid) and not self.store.intact(cid, rec.sizes.get(cid)):
                        self.store.drop(cid)
                self.runs.put(rec)
                new = True
            else:
                new = False
            self.runs.set_last(planner.target, stage, key, key_doc)
        return new

    def forget_unfetchable(self, cids: set[str], planners: Sequence[Planner]) -> None:
        """After a failed fetch: drop the pulled runs that name ``cids`` (or any object the remote
        refused), and, when the remote is down, every pulled run of ``planners`` whose outputs are
        not all here (none of them can be fetched now): the next attempt rebuilds them here."""
        unfetchable = cids | self.remote.bad_cids
        if self.remote.down is not None:
            unfetchable |= {c for pl in planners for p in pl.plan() if p.record is not None and p.record.origin
                            for c in p.record.outputs.values() if not self.store.exists(c)}
        self._forget(unfetchable)
        self.runs.drop_runs_using(unfetchable, pulled_only=True)

    def push(self, keys: Iterable[str]) -> PushReport:
        """Push the recorded runs of ``keys``: objects the remote lacks first, each signed record last."""
        report = PushReport()
        for key in dict.fromkeys(keys):
            rec = self.runs.get(key)
            if rec is None:
                continue
            local = {c: (self.store.path_of(c) if self.store.intact(c, rec.sizes.get(c)) else None)
                     for c in rec.outputs.values()}
            try:
                uploaded = self.remote.push_run(as_doc(rec), local)
            except KeyError as exc:
                report.skipped.append((rec.stage, f"its output {exc.args[0]} is neither here nor on the remote"))
                continue
            if uploaded < 0:
                report.skipped.append((rec.stage, f"the remote is unavailable ({self.remote.down})"))
                break
            report.runs.append(rec.stage)
            report.objects += uploaded
        return report
