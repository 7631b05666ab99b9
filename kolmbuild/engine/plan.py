"""Stage keys and up-to-date decisions.

A stage's key is the CID of the canonical JSON of::

    {rule, version, code: {shell | action (+ kolmbuild release)}, params: {path: subtree},
     inputs: {path: CID}, env: {VAR: digest}, upstream: {stage: {output: CID}},
     config_env?: {key: digest}}   # values from ${oc.env:…}: params hold the interpolation

Up to date ⇔ a run with that key is recorded and all its outputs are in the store (for a run pulled
from a remote cache: every output it has here is intact; the others are fetched when read). Upstream
*output* CIDs (not keys) go into the key, so a stage that reruns and makes the same bytes stops
the rebuild there (early cutoff).
"""

from __future__ import annotations

import functools
import hashlib
import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from kolmbuild.config.compose import ComposedTarget
from kolmbuild.config.envvalues import under
from kolmbuild.engine.rules import Rule
from kolmbuild.engine.store import RunDB, RunRecord, Store
from kolmbuild.errors import DataError
from kolmbuild.hashing.cid import cid_of_json
from kolmbuild.hashing.files import StatCache


def lookup(tree: Mapping[str, Any], dotted: str) -> Any:
    node: Any = tree
    for part in dotted.split("."):
        if not isinstance(node, Mapping) or part not in node:
            return None
        node = node[part]
    return node


_SECRET_WORDS = ("KEY", "TOKEN", "SECRET", "PASSWORD", "PASSPHRASE")


def env_fingerprint(name: str) -> str | None:
    """A digest of an env var's value: enough to notice a change, never the value itself.

    Stage keys must be the same on every machine (they are the receipt CIDs of a reproducible
    artifact), so the digest cannot be salted per cache. For a variable that names a secret
    (``KOLM_SIGNING_KEY``, ``*_TOKEN``), it is scrypt with a fixed per-name salt rather than one
    sha256, so a weak secret cannot be guessed cheaply from ``cache/state.db``.
    """
    value = os.environ.get(name)
    if value is None:
        return None
    if any(w in name.upper() for w in _SECRET_WORDS):
        return _slow_digest(name, value)
    return hashlib.sha256(value.encode()).hexdigest()


@functools.lru_cache(maxsize=32)
def _slow_digest(name: str, value: str) -> str:
    salt = b"kolmbuild/env/" + name.encode()
    return "scrypt:" + hashlib.scrypt(value.encode(), salt=salt, n=2**14, r=8, p=1, dklen=32).hex()


def code_identity(action: str | None, shell: str | None) -> dict[str, str]:
    """What a stage runs, as part of its key: a shell rule's command text; for a Python action, the
    kolmbuild release for built-in actions (an upgrade that changes a stage's output format
    rebuilds it) and the action's own name. Edits inside a project-local action module are not
    tracked: bump the rule's ``version`` for those, as for a built-in action between releases."""
    if shell is not None:
        return {"shell": shell}
    assert action is not None
    if action.startswith("kolmbuild."):
        from kolmbuild import __version__

        return {"action": action, "kolmbuild": __version__}
    return {"action": action}


def is_url(value: str) -> bool:
    return "://" in value and not value.startswith("file://")


@dataclass
class Watched:
    """Paths the decision depended on, for the no-op fast path's stamp."""

    files: set[Path] = field(default_factory=set)
    dirs: set[Path] = field(default_factory=set)


PlanStatus = Literal["up-to-date", "stale", "waiting"]  # waiting: an upstream stage must run first


@dataclass
class StagePlan:
    target: str
    rule: Rule
    status: PlanStatus
    key: str | None = None
    doc: dict[str, Any] | None = None
    record: RunRecord | None = None
    reasons: list[str] = field(default_factory=list)
    remote: bool = False  # stale here, and the remote cache has a trusted run of this key (``record``)

    @property
    def stage(self) -> str:
        return self.rule.name

    def line(self, dry_run: bool = False) -> str:
        """The line `status` (and `-n`) prints for this stage."""
        label = {"up-to-date": "up to date", "stale": "would run" if dry_run else "stale",
                 "waiting": "would run" if dry_run else "stale"}[self.status]
        if self.remote:
            label = "would pull" if dry_run else "stale"
        reasons = [*self.reasons, "the remote cache has it"] if self.remote else self.reasons
        why = f"  ({'; '.join(reasons)})" if reasons else ""
        key = f"  {self.key}" if self.key and self.status == "up-to-date" else ""
        return f"{self.target}: {self.stage:<10} {label}{why}{key}"

    def to_json(self) -> dict[str, Any]:
        return {"target": self.target, "stage": self.stage, "status": self.status, "key": self.key,
                "reasons": self.reasons, "outputs": dict(self.record.outputs) if self.record else None,
                "remote": self.remote}


class Planner:
    """Computes keys and statuses for one composed target."""

    def __init__(
        self,
        project_root: Path,
        composed: ComposedTarget,
        rules: Mapping[str, Rule],
        store: Store,
        runs: RunDB,
        stats: StatCache,
        watched: Watched | None = None,
    ) -> None:
        self.root = project_root
        self.composed = composed
        self.rules = rules
        self.store = store
        self.runs = runs
        self.stats = stats
        self.watched = watched if watched is not None else Watched()
        self.tree = composed.dump()  # values from ${oc.env:…} appear as written, never as values
        self._real_tree = composed.real_dump() if composed.env_leaves else self.tree  # input paths only
        self._input_cids: dict[str, str | None] = {}

    @property
    def target(self) -> str:
        return self.composed.name

    def input_path(self, dotted: str) -> Path | None:
        value = lookup(self._real_tree, dotted)
        if value is None:
            return None
        if not isinstance(value, str):
            raise DataError(f"target {self.target!r}: {dotted} must be a path, got {value!r}")
        if is_url(value):
            return None
        p = Path(value.removeprefix("file://"))
        return p if p.is_absolute() else self.root / p

    def input_cid(self, dotted: str) -> str | None:
        if dotted in self._input_cids:
            return self._input_cids[dotted]
        value = lookup(self._real_tree, dotted)
        cid: str | None
        if value is None:
            cid = None
        elif isinstance(value, str) and is_url(value):
            cid = str(cid_of_json({"url": value}))  # remote inputs are named, not hashed
        else:
            path = self.input_path(dotted)
            assert path is not None
            if not path.exists():
                raise DataError(f"target {self.target!r}: {dotted}: {value}: no such file or folder")
            if path.is_dir():
                self.watched.dirs.add(path)
            else:
                self.watched.files.add(path)
            try:
                cid = str(self.stats.path_cid(path))
            except OSError as exc:  # a symlink loop, an unreadable file inside a folder
                where = exc.filename or path
                raise DataError(f"target {self.target!r}: {dotted}: {where}: {exc.strerror or exc}") from None
        self._input_cids[dotted] = cid
        return cid

    def key_doc(self, rule: Rule, upstream: Mapping[str, Mapping[str, str]]) -> dict[str, Any]:
        spec = rule.spec
        doc = {
            "rule": spec.name,
            "version": spec.version,
            "code": code_identity(spec.action, spec.shell),
            "params": {p: lookup(self.tree, p) for p in spec.reads},
            "inputs": {p: self.input_cid(p) for p in spec.inputs},
            "env": {v: env_fingerprint(v) for v in spec.env},
            "upstream": {s: dict(upstream[s]) for s in spec.after},
        }
        # config values from ${oc.env:…} under this rule's reads: fingerprints, as for `env`
        config_env = {k: fp for k, fp in self.composed.env_prints if any(under(k, r) for r in spec.reads)}
        if config_env:
            doc["config_env"] = config_env
        return doc

    def record_for(self, key: str) -> RunRecord | None:
        """The recorded run of ``key`` if every output it made is intact in the store (a run pulled
        from a remote cache: every output that is here is intact; absent ones are fetched on read)."""
        rec = self.runs.get(key)
        if rec is None:
            return None
        for c in rec.outputs.values():
            if not self.store.intact(c, rec.sizes.get(c)) and not (rec.origin and not self.store.exists(c)):
                return None
        return rec

    def damaged_outputs(self, key: str) -> list[str]:
        """Why a recorded run is not usable: its outputs missing from, or damaged in, the store."""
        rec = self.runs.get(key)
        if rec is None:
            return []
        out = []
        for name, cid in sorted(rec.outputs.items()):
            if not self.store.has(cid):
                out.append(f"output {name} missing from the cache")
            elif not self.store.intact(cid, rec.sizes.get(cid)):
                out.append(f"output {name} damaged in the cache")
        return out

    def plan(self, remote: Mapping[str, RunRecord] | None = None) -> list[StagePlan]:
        """Statuses without running anything (for -n, status, and the build's first look).

        ``remote``: runs a remote cache holds, by key. A stale stage whose key is among them is
        marked ``remote`` and the stages after it are planned as if it were here."""
        plans: list[StagePlan] = []
        outputs: dict[str, Mapping[str, str]] = {}
        blocked: set[str] = set()
        for name, rule in self.rules.items():
            waiting_on = [d for d in rule.spec.after if d in blocked]
            if waiting_on:
                plans.append(StagePlan(self.target, rule, "waiting", reasons=[f"after {', '.join(waiting_on)} reruns"]))
                blocked.add(name)
                continue
            doc = self.key_doc(rule, outputs)
            key = str(cid_of_json(doc))
            rec = self.record_for(key)
            if rec is not None:
                plans.append(StagePlan(self.target, rule, "up-to-date", key, doc, rec))
                outputs[name] = rec.outputs
            elif remote is not None and key in remote:
                plans.append(StagePlan(self.target, rule, "stale", key, doc, remote[key],
                                       reasons=self.why(rule, key, doc), remote=True))
                outputs[name] = remote[key].outputs
            else:
                plans.append(StagePlan(self.target, rule, "stale", key, doc, reasons=self.why(rule, key, doc)))
                blocked.add(name)
        return plans

    def why(self, rule: Rule, key: str, doc: Mapping[str, Any]) -> list[str]:
        damaged = self.damaged_outputs(key)  # this very key ran before: its outputs are the problem
        if damaged:
            return damaged
        last = self.runs.last(self.target, rule.name)
        if last is None:
            return ["never built"]
        last_key, last_doc = last
        if last_key == key:
            return ["outputs missing from the cache"]
        reasons = []
        if last_doc.get("version") != doc["version"]:
            reasons.append(f"rule version {last_doc.get('version')} -> {doc['version']}")
        if last_doc.get("code") != doc["code"]:
            reasons.append("rule's command changed" if doc["code"].get("shell") else "action code changed")
        for section, label in (("inputs", "input"), ("params", "config"), ("env", "env"),
                               ("config_env", "config from env"), ("upstream", "upstream")):
            old, new = last_doc.get(section, {}), doc.get(section, {})
            for k in sorted(set(old) | set(new)):
                if old.get(k) != new.get(k):
                    reasons.append(f"{label} {k} changed")
        return reasons or ["key changed"]
