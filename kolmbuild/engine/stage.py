"""The contract between the engine and a stage's action.

A rule (``rules/<stage>.yaml``) names the action, ``package.module:function``, called as
``action(ctx) -> StageResult | None``. The action reads only what its rule declares:

* ``ctx.param("task.teacher")``: a config subtree listed in the rule's ``reads`` (it is part of
  the stage key, so reading anything else would make the cache lie; undeclared paths raise);
* ``ctx.inputs["task.examples"]``: user files/folders listed in the rule's ``inputs``;
* ``ctx.upstream["ingest"]["train.jsonl"]``: outputs of the stages listed in ``after``;

and writes each declared output into ``ctx.outdir`` under its declared name. The engine hashes
the outputs, moves them into the content-addressed store atomically and records the receipt.
Persistent stage-private caches (teacher calls, embeddings) live under ``ctx.cache_dir``; with a
remote cache configured, ``ctx.shared`` shares their entries with other machines (signed, checked).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

from kolmbuild.config.envvalues import overlay


class Progress(Protocol):
    """Reports long work. The engine passes a rich-backed one; tests pass :class:`NullProgress`."""

    def start(self, description: str, total: float | None = None) -> None: ...

    def advance(self, amount: float = 1.0, **fields: Any) -> None: ...

    def log(self, message: str) -> None: ...


class NullProgress:
    def start(self, description: str, total: float | None = None) -> None:
        pass

    def advance(self, amount: float = 1.0, **fields: Any) -> None:
        pass

    def log(self, message: str) -> None:
        pass


class SharedEntries(Protocol):
    """Stage-private cache entries shared through the remote cache (kolmbuild.remote.RemoteCache).

    ``kind`` is the cache (``teacher``, ``embeddings``), ``name`` the entry's content address. What
    ``get_entry`` returns was signed by a trusted key; the caller still checks that it is the entry
    of ``name`` (a request's CID, a text's hash) before using it. ``put_entry`` shares an entry when
    pushing is on (in the background) and does nothing otherwise.
    """

    def get_entry(self, kind: str, name: str) -> bytes | None: ...

    def get_entries(self, kind: str, names: Sequence[str]) -> dict[str, bytes]: ...

    def put_entry(self, kind: str, name: str, payload: bytes, *, wait: bool = False) -> bool: ...


@dataclass(frozen=True)
class StageReceipt:
    """What a finished stage leaves: its key, its outputs by CID, and metrics for the manifest."""

    stage: str
    version: int
    key: str
    outputs: Mapping[str, str]
    metrics: Mapping[str, Any] = field(default_factory=dict)
    duration_s: float = 0.0

    def to_json(self) -> dict[str, Any]:
        """The receipt as it goes into a manifest. Wall-clock duration is left out on purpose: an
        artifact must be a function of its inputs' bytes, so it stays byte-reproducible."""
        return {
            "stage": self.stage,
            "version": self.version,
            "key": self.key,
            "outputs": dict(sorted(self.outputs.items())),
            "metrics": dict(self.metrics),
        }


@dataclass(frozen=True)
class StageResult:
    """Returned by an action: metrics (JSON-able) that go into the receipt and the manifest.

    ``remote_outputs``: declared outputs the stage left in the remote cache instead of ``outdir``
    (name -> (CID, size); a remote stage whose far side pushed them there), with ``origin`` naming
    that remote. They are recorded like a pulled run's: fetched by CID, re-hashed, when read."""

    metrics: Mapping[str, Any] = field(default_factory=dict)
    summary: str = ""
    remote_outputs: Mapping[str, tuple[str, int]] = field(default_factory=dict)
    origin: str | None = None


@dataclass(frozen=True)
class StageContext:
    target: str
    stage: str
    key: str
    project_dir: Path
    outdir: Path
    cache_dir: Path
    params: Mapping[str, Any]
    inputs: Mapping[str, Path | None]
    upstream: Mapping[str, Mapping[str, Path]]
    receipts: Mapping[str, StageReceipt]
    progress: Progress = field(default_factory=NullProgress)
    env_values: Mapping[str, Any] = field(default_factory=dict)  # dotted key -> value from ${oc.env:…}
    shared: SharedEntries | None = None

    def param(self, path: str) -> Any:
        """The config subtree at ``path`` (dotted), which must be declared in the rule's reads.
        Values from ``${oc.env:…}`` are the environment's: use them, never write them to an output."""
        return overlay(self.public_param(path), path, self.env_values)

    def public_param(self, path: str) -> Any:
        """:meth:`param` as it may be recorded (a manifest): values from the environment appear as
        their interpolation, e.g. ``${oc.env:OPENAI_API_KEY}``."""
        if path in self.params:
            return self.params[path]
        for declared, value in self.params.items():
            if path.startswith(declared + "."):
                node = value
                for part in path[len(declared) + 1 :].split("."):
                    if not isinstance(node, Mapping) or part not in node:
                        return None
                    node = node[part]
                return node
        raise KeyError(f"stage {self.stage!r} reads {path!r} without declaring it in its rule's reads")

    def output(self, name: str) -> Path:
        """Where to write the declared output ``name``."""
        return self.outdir / name

    def up(self, stage: str, name: str) -> Path | None:
        """An upstream output's path, or None when that optional output was not produced."""
        return self.upstream.get(stage, {}).get(name)
