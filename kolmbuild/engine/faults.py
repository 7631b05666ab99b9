"""A test hook: ``KOLM_FAULT=POINT:N`` kills the build with SIGKILL the N-th time it reaches POINT.

The engine's crash-safety claim ("kill -9 at any moment leaves a complete entry or nothing") is
about the moments between its commit points, which a kill from outside hits only by luck. The
points, in the order a stage passes them:

``after-put``       an output was renamed into ``cache/objects/`` (the run is not recorded yet)
``after-record``    the run record was committed to ``cache/state.db`` (``last`` not yet updated)
``after-last``      the (target, stage) → key row for ``status`` was committed
``before-install``  the artifact's temp copy beside the install path is complete, not yet renamed
``after-install``   the artifact was renamed into place (the no-op stamp is not written yet)

Unset (the normal case) it costs one dictionary lookup per engine. This is for tests and for
anyone who wants to check the claim on their own machine; it is not a feature.
"""

from __future__ import annotations

import os
import signal
import threading
from collections.abc import Mapping
from dataclasses import dataclass, field

from kolmbuild.errors import ConfigError

ENV = "KOLM_FAULT"
POINTS = ("after-put", "after-record", "after-last", "before-install", "after-install")


@dataclass
class Faults:
    point: str | None = None
    at: int = 0
    _seen: int = 0
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> Faults:
        raw = (os.environ if environ is None else environ).get(ENV, "")
        if not raw:
            return cls()
        point, _, count = raw.partition(":")
        if point not in POINTS or not count.isdigit() or int(count) < 1:
            raise ConfigError(
                f"{ENV}={raw!r}: expected POINT:N with N >= 1",
                hint="POINT is one of " + ", ".join(POINTS),
            )
        return cls(point, int(count))

    def hit(self, point: str) -> None:
        """Die here (SIGKILL, as ``kill -9`` would) if this is the configured point's N-th visit."""
        if point != self.point:
            return
        with self._lock:
            self._seen += 1
            if self._seen == self.at:
                os.kill(os.getpid(), signal.SIGKILL)
