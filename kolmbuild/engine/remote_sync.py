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
        self._asked: set[str] = set()  # keys looked up already (found ones are recorded here)

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
            keys = [k for k in dict.fromkeys(k for k, _ in ask) if k not in self._asked]
            if not keys:
                break
            tried.update(keys)
            self._asked.update(keys)
            docs = self.remote.get_runs(keys)
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
        """Record here the remote runs ``planner``'s stale stages can use; return their plans."""
        adopted = []
        for p in planner.plan(found):
            if p.remote and p.record is not None and p.key is not None and p.doc is not None:
                self._record(planner.target, p.stage, p.key, p.doc, p.record)
                adopted.append(p)
        return adopted

    def lookup(self, target: str, rule: Rule, key: str, key_doc: Mapping[str, Any]) -> RunRecord | None:
        """Mid-build, for one stage whose key became known only now (an upstream stage ran here and
        made bytes the remote has seen: early cutoff): the remote's run, adopted, or None."""
        if key in self._asked:
            return None
        self._asked.add(key)
        doc = self.remote.get_runs([key]).get(key)
        if doc is None:
            return None
        problem = check_run(doc, rule)
        if problem:
            self.remote.warn_once(f"runs/{key}.json",
                                  f"remote cache {self.remote.display}: ignoring runs/{key}.json: {problem}")
            return None
        rec = as_record(doc, self.remote.display)
        self._record(target, rule.name, key, key_doc, rec)
        return rec

    def _record(self, target: str, stage: str, key: str, key_doc: Mapping[str, Any], rec: RunRecord) -> None:
        for cid in rec.outputs.values():  # a damaged copy here must not shadow the remote's
            if self.store.exists(cid) and not self.store.intact(cid, rec.sizes.get(cid)):
                self.store.drop(cid)
        self.runs.put(rec)
        self.runs.set_last(target, stage, key, key_doc)

    def forget_unfetchable(self, cids: set[str], planners: Sequence[Planner]) -> None:
        """After a failed fetch: drop the pulled runs that name ``cids`` (or any object the remote
        refused), and, when the remote is down, every pulled run of ``planners`` whose outputs are
        not all here (none of them can be fetched now): the next attempt rebuilds them here."""
        self.runs.drop_runs_using(cids | self.remote.bad_cids, pulled_only=True)
        if self.remote.down is None:
            return
        absent = {c for pl in planners for p in pl.plan() if p.record is not None and p.record.origin
                  for c in p.record.outputs.values() if not self.store.exists(c)}
        self.runs.drop_runs_using(absent, pulled_only=True)

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
