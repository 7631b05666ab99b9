"""The points of a sweep: one (target, overrides) each, with a folder name a person can read.

``kolmbuild -m backend=local-cpu,vast gates=default,strict`` has four points per target. Each point's
artifact lands in ``sweeps/<UTC timestamp>/<NN>-<target>-<what changed>/``, e.g.
``03-redact-backend-vast-gates-strict/redact-0.1.0.kolm``: the number keeps names unique and in
sweep order, the rest says which values the point used.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass, replace
from pathlib import Path

from kolmbuild.config.compose import ComposedTarget, split_sweeps

MAX_SLUG = 80  # characters of a point's folder name that describe its overrides
_UNSAFE = re.compile(r"[^A-Za-z0-9._-]+")


def _part(override: str) -> str:
    """``task.train.rank=32`` → ``rank-32``; ``+x=1`` → ``x-1``; ``~y`` → ``no-y``."""
    text = override.strip()
    if text.startswith("~"):
        return "no-" + text[1:].rsplit(".", 1)[-1].split("=", 1)[0]
    key, _, value = text.lstrip("+").partition("=")
    return f"{key.rsplit('.', 1)[-1]}-{value}" if value else key.rsplit(".", 1)[-1]


def slug(overrides: Sequence[str]) -> str:
    """A file-name-safe summary of a point's overrides (empty when it has none)."""
    text = "-".join(_part(o) for o in overrides)
    text = _UNSAFE.sub("_", text).strip("._-")
    return text[:MAX_SLUG].rstrip("._-")


def _key(override: str) -> str:
    return override.strip().lstrip("+~").split("=", 1)[0]


@dataclass(frozen=True)
class SweepPoint:
    """One build of a sweep: what to build and where its artifact goes (relative to the sweep folder).
    Plain values only, so an executor can ship it to another process or machine."""

    index: int  # 1-based, in sweep order
    target: str
    overrides: tuple[str, ...]
    width: int = 2  # digits of the index in the folder name (all points of a sweep share it)
    varying: frozenset[str] | None = None  # the override keys whose values differ between points

    @property
    def name(self) -> str:
        """``NN-target-<the values that tell this point from the others>``."""
        shown = [o for o in self.overrides if self.varying is None or _key(o) in self.varying]
        described = slug(shown or self.overrides)
        return f"{self.index:0{self.width}d}-{self.target}" + (f"-{described}" if described else "")

    @property
    def label(self) -> str:
        return f"{self.target} {' '.join(self.overrides)}".strip()


def sweep_points(targets: Sequence[str], overrides: Sequence[str]) -> list[SweepPoint]:
    """Every (point, target) of the sweep that ``overrides`` describe, in Hydra's sweep order."""
    combos = split_sweeps(list(overrides))
    pairs = [(t, tuple(c)) for c in combos for t in targets]
    width = max(2, len(str(len(pairs))))
    seen: dict[str, set[str | None]] = {}  # key -> the overrides that set it, None where a point leaves it out
    for c in combos:
        for k in {_key(o) for o in c}:
            seen.setdefault(k, set())
    for c in combos:
        by_key = {_key(o): o for o in c}
        for k, forms in seen.items():
            forms.add(by_key.get(k))
    varying = frozenset(k for k, forms in seen.items() if len(forms) > 1)
    return [SweepPoint(i, t, o, width, varying) for i, (t, o) in enumerate(pairs, 1)]


def placed(composed: ComposedTarget, folder: Path) -> ComposedTarget:
    """``composed`` installing into ``folder`` under its usual file name. The install path is not
    part of any stage's key (the artifact's bytes do not depend on it)."""
    name = Path(composed.config.out_path()).name
    return replace(composed, config=composed.config.model_copy(update={"out": str(folder / name)}))
