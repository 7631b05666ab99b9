"""The gate: K_min, and the optional p50_ms_max and size_mb_max of conf/gates.

A gate fails on K below ``K_min`` or on an exceeded limit. K is a weighted mean of the terms, so
whenever K < K_min at least one term is below K_min: those are the terms that "fell short", named
in the order of the K points they cost.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from kolmbuild.config.models import GatesSpec
from kolmbuild.errors import GateFailed
from kolmbuild.evaluate.terms import TERM_NAMES, Terms


@dataclass(frozen=True)
class Shortfall:
    """One reason the gate failed: a term below K_min, or a limit exceeded."""

    key: str  # "A" … "V", "K_min", "p50_ms_max" or "size_mb_max"
    value: float
    limit: float
    text: str

    def to_json(self) -> dict[str, Any]:
        return {"key": self.key, "value": self.value, "limit": self.limit, "text": self.text}


def check_gate(terms: Terms, *, p50_ms: float, footprint_mb: float, gates: GatesSpec) -> tuple[Shortfall, ...]:
    """Every way the scored artifact misses ``gates``; empty when it passes."""
    out: list[Shortfall] = []
    K = terms.K
    if K < gates.K_min:
        out.append(Shortfall("K_min", K, gates.K_min, f"K {K:.4f} < K_min {gates.K_min:.2f}"))
        lost = terms.lost()
        short = [k for k, v in terms.as_dict().items() if v < gates.K_min]
        for k in sorted(short, key=lambda t: (-lost[t], t)):
            v = terms.as_dict()[k]
            out.append(
                Shortfall(k, v, gates.K_min, f"{k} ({TERM_NAMES[k]}) {v:.4f} < {gates.K_min:.2f}, costs {lost[k]:.4f} of K")
            )
    if gates.p50_ms_max is not None and p50_ms > gates.p50_ms_max:
        out.append(
            Shortfall("p50_ms_max", p50_ms, gates.p50_ms_max, f"L (latency): p50 {p50_ms:.3f} ms > p50_ms_max {gates.p50_ms_max:g}")
        )
    if gates.size_mb_max is not None and footprint_mb > gates.size_mb_max:
        out.append(
            Shortfall("size_mb_max", footprint_mb, gates.size_mb_max, f"S (size): {footprint_mb:.3f} MB > size_mb_max {gates.size_mb_max:g}")
        )
    return tuple(out)


def gate_error(target: str, K: float, shortfalls: Sequence[Shortfall], detail: Sequence[str] = ()) -> GateFailed:
    """The error a failed gate raises: names each short term or exceeded limit."""
    keys = ", ".join(s.key for s in shortfalls if s.key != "K_min")
    lines = [f"target {target!r} failed its gate (K = {K:.4f}); short: {keys or 'K_min'}"]
    lines += [f"  - {s.text}" for s in shortfalls]
    lines += [f"  {d}" for d in detail]
    return GateFailed("\n".join(lines), hint="no artifact was written; see docs/k-score.md for each term")
