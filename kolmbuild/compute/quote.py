"""Quotes from work: cold start + work ÷ the device's throughput, times a 2× slack, priced by basis.

A quote runs no code and calls no provider: it is arithmetic over the backend's catalog entry
(``effective_tflops``, ``cold_start_seconds``, ``pricing``) and the job's work.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from kolmbuild.compute.job import Job
from kolmbuild.compute.settings import settings_for
from kolmbuild.config.models import BackendSpec

SLACK = 2.0


@dataclass(frozen=True)
class Quote:
    backend: str
    duration_s: float  # with slack
    cost_usd: float
    basis: str  # how both were computed, printed beside them
    pricing: str  # "per-hour $2.50"
    catalog_date: str
    eligible: bool = True
    reason: str = ""  # why not eligible

    def to_json(self) -> dict[str, Any]:
        return {
            "backend": self.backend, "duration_s": round(self.duration_s, 1), "cost_usd": round(self.cost_usd, 4),
            "basis": self.basis, "pricing": self.pricing, "catalog_date": self.catalog_date,
            "eligible": self.eligible, "reason": self.reason,
        }


def pricing_label(spec: BackendSpec) -> str:
    p = spec.pricing
    if p.basis == "per-hour":
        return f"${p.rate_usd:.2f}/h"
    if p.basis == "per-second":
        return f"${p.rate_usd:g}/s"
    if p.basis == "per-token":
        return f"${p.rate_usd:g}/1M tok"
    return f"${p.rate_usd:g}/call"


def throughput_flops(spec: BackendSpec) -> float:
    return float(settings_for(spec).effective_tflops) * 1e12


def _flops(x: float) -> str:
    for unit, scale in (("EFLOP", 1e18), ("PFLOP", 1e15), ("TFLOP", 1e12), ("GFLOP", 1e9)):
        if x >= scale:
            return f"{x / scale:.3g} {unit}"
    return f"{x:.3g} FLOP"


def setup_seconds(spec: BackendSpec) -> float:
    """The catalog's time to set a machine up (install kolmbuild there), for backends that bootstrap."""
    boot = getattr(settings_for(spec), "bootstrap", None)
    return float(boot.seconds) if boot is not None and boot.mode != "off" else 0.0


def quote(spec: BackendSpec, job: Job, *, setup_s: float | None = None) -> Quote:
    """Estimate duration and cost of ``job`` on ``spec``. Ineligible roles get a reason, not a price.

    The cold-start term is the catalog's ``cold_start_seconds`` plus the machine's setup time:
    ``setup_s`` when the caller measured one (see :mod:`kolmbuild.compute.bootstrap`), else the
    catalog's ``bootstrap.seconds``. Without ``setup_s`` the quote is a pure function of the conf."""
    label = pricing_label(spec)
    if job.kind == "train" and not spec.train:
        return Quote(spec.name, 0.0, 0.0, "", label, spec.catalog_date, False, "inference only")
    if job.kind == "infer" and not spec.infer:
        return Quote(spec.name, 0.0, 0.0, "", label, spec.catalog_date, False, "training only")
    work = job.work_flops()
    tput = throughput_flops(spec)
    compute_s = work / tput
    measured = setup_s is not None
    setup = float(setup_s) if setup_s is not None else setup_seconds(spec)
    cold = spec.cold_start_seconds + setup
    duration = (cold + compute_s) * SLACK
    p = spec.pricing
    if p.basis == "per-hour":
        cost = duration / 3600.0 * p.rate_usd
        priced = f"{duration / 3600:.3f} h x ${p.rate_usd:.2f}/h"
    elif p.basis == "per-second":
        cost = duration * p.rate_usd
        priced = f"{duration:.0f} s x ${p.rate_usd:g}/s"
    elif p.basis == "per-token":
        tokens = job.billed_tokens()
        cost = tokens / 1e6 * p.rate_usd
        priced = f"{tokens / 1e6:.3g}M tok x ${p.rate_usd:g}/1M"
    else:  # per-call: one call per evaluation case
        calls = job.eval_cases
        cost = calls * p.rate_usd
        priced = f"{calls} calls x ${p.rate_usd:g}"
    cost = max(cost, float(settings_for(spec).min_charge_usd))
    setup_note = f" + {setup:.0f} s setup{' (measured)' if measured else ''}" if setup or measured else ""
    basis = (
        f"({spec.cold_start_seconds:g} s cold{setup_note} + {_flops(work)} / {tput / 1e12:g} TFLOP/s = "
        f"{cold + compute_s:.0f} s) x{SLACK:g} slack; {priced}"
    )
    return Quote(spec.name, duration, cost, basis, label, spec.catalog_date)


def hourly_usd(spec: BackendSpec, job: Job) -> float:
    """What an hour of this backend costs for ``job``: the rate, or the quote spread over its duration."""
    p = spec.pricing
    if p.basis == "per-hour":
        return p.rate_usd
    if p.basis == "per-second":
        return p.rate_usd * 3600.0
    q = quote(spec, job)
    if not q.eligible or q.duration_s <= 0:
        return 0.0
    return q.cost_usd / (q.duration_s / 3600.0)
