"""Pick a backend: filter, then score, with the reasons for both.

S = 0.35·available + 0.20·(1 − cost/max_cost) + 0.15·(1 − cold_start/max_cold)
    + 0.15·repro + 0.15·perf_bias

``available`` is 1 when detection says ok; ``cost`` is the backend's hourly price for the job (the
rate, or its quote spread over the quoted hours for per-token / per-call pricing); the maxima are over
the backends that survive the filters (a term is 1 when its maximum is 0); ``repro`` is 1 for an
air-gapped or pinned backend (an image pinned by digest), 0.6 for managed cloud, else 0.5.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

from kolmbuild.compute.detect import Detection
from kolmbuild.compute.job import REFERENCE_JOB, Job
from kolmbuild.compute.quote import Quote, hourly_usd, quote
from kolmbuild.compute.registry import Registry
from kolmbuild.compute.settings import settings_for
from kolmbuild.config.models import BackendSpec

PICKER_VERSION = "picker/1 (0.35 avail, 0.20 cost, 0.15 cold, 0.15 repro, 0.15 perf)"
WEIGHTS = {"available": 0.35, "cost": 0.20, "cold": 0.15, "repro": 0.15, "perf": 0.15}


@dataclass(frozen=True)
class PickRequest:
    airgap: bool = False
    budget_usd: float | None = None
    min_vram_gb: float | None = None
    role: Literal["train", "infer"] = "train"
    job: Job | None = None  # None: hourly prices for the budget filter, the reference job for the rest


@dataclass(frozen=True)
class Scored:
    backend: str
    score: float
    terms: Mapping[str, float]
    hourly_usd: float
    quote: Quote
    device: str

    def to_json(self) -> dict[str, Any]:
        return {"backend": self.backend, "score": round(self.score, 4),
                "terms": {k: round(v, 4) for k, v in self.terms.items()},
                "hourly_usd": round(self.hourly_usd, 4), "device": self.device, "quote": self.quote.to_json()}


@dataclass(frozen=True)
class Filtered:
    backend: str
    reason: str

    def __str__(self) -> str:
        return f"{self.backend} ({self.reason})"


@dataclass(frozen=True)
class PickResult:
    ranked: tuple[Scored, ...]
    filtered: tuple[Filtered, ...]
    request: PickRequest
    version: str = PICKER_VERSION
    notes: tuple[str, ...] = field(default_factory=tuple)

    @property
    def picked(self) -> Scored | None:
        return self.ranked[0] if self.ranked else None

    @property
    def runners_up(self) -> tuple[Scored, ...]:
        return self.ranked[1:4]

    def reason(self) -> str:
        p = self.picked
        if p is None:
            return "every backend was filtered out"
        top = max(p.terms, key=lambda k: p.terms[k] * WEIGHTS[k])
        parts = [f"{k} {v:.2f}" for k, v in p.terms.items()]
        return f"highest score; strongest term: {top} ({', '.join(parts)})"

    def to_json(self) -> dict[str, Any]:
        p = self.picked
        return {
            "picked": p.backend if p else None,
            "device": p.device if p else None,
            "score": round(p.score, 4) if p else None,
            "reason": self.reason(),
            "runners_up": [s.to_json() for s in self.runners_up],
            "ranked": [s.to_json() for s in self.ranked],
            "filtered": [{"backend": f.backend, "reason": f.reason} for f in self.filtered],
            "picker_version": self.version,
        }


def repro_of(spec: BackendSpec) -> float:
    settings = settings_for(spec)
    image = str(getattr(settings, "image", "") or "")
    if spec.airgap or settings.pinned or "@sha256:" in image:
        return 1.0
    if spec.kind == "cloud-managed":
        return 0.6
    return 0.5


def _vram_of(spec: BackendSpec, det: Detection) -> float:
    if spec.kind == "local" and (settings_for(spec).device or "cpu") != "cpu" and det.memory_gb:
        return det.memory_gb
    return spec.vram_cap_gb


def _memory_of(spec: BackendSpec, det: Detection) -> float | None:
    """Memory a job can use: accelerator memory, or RAM for local-cpu; None when unknown (not filtered)."""
    if spec.kind == "local" and (settings_for(spec).device or "cpu") == "cpu":
        return det.memory_gb
    vram = _vram_of(spec, det)
    return vram if vram > 0 else None


def _filter(spec: BackendSpec, det: Detection, req: PickRequest, job: Job) -> str | None:
    if req.role == "train" and not spec.train:
        return "inference only"
    if req.role == "infer" and not spec.infer:
        return "training only"
    if req.airgap and not spec.airgap:
        return "not air-gapped"
    if req.min_vram_gb is not None:
        vram = _vram_of(spec, det)
        if vram < req.min_vram_gb:
            return f"vram {vram:g} GB < {req.min_vram_gb:g}"
    if req.job is not None and job.min_vram_gb:
        mem = _memory_of(spec, det)
        if mem is not None and mem < job.min_vram_gb:
            return f"job needs {job.min_vram_gb:g} GB, has {mem:g} GB"
    if req.budget_usd is not None:
        if req.job is not None:
            q = quote(spec, job)
            if q.cost_usd > req.budget_usd:
                return f"estimate ${q.cost_usd:.2f} > budget ${req.budget_usd:.2f}"
        else:
            hourly = hourly_usd(spec, job)
            if hourly > req.budget_usd:
                return f"${hourly:.2f}/hr > {req.budget_usd:.2f}"
    return None


def pick(registry: Registry, detections: Mapping[str, Detection], req: PickRequest) -> PickResult:
    job = req.job or REFERENCE_JOB
    if job.kind != req.role:
        from dataclasses import replace

        job = replace(job, kind=req.role)
    survivors: list[tuple[BackendSpec, Detection]] = []
    filtered: list[Filtered] = []
    for spec in registry:
        det = detections.get(spec.name) or Detection(spec.name, "not detected", "not probed")
        why = _filter(spec, det, req, job)
        if why is None:
            survivors.append((spec, det))
        else:
            filtered.append(Filtered(spec.name, why))
    hourly = {s.name: hourly_usd(s, job) for s, _ in survivors}
    max_cost = max(hourly.values(), default=0.0)
    max_cold = max((s.cold_start_seconds for s, _ in survivors), default=0.0)
    ranked: list[Scored] = []
    for spec, det in survivors:
        terms = {
            "available": 1.0 if det.available else 0.0,
            "cost": 1.0 - hourly[spec.name] / max_cost if max_cost > 0 else 1.0,
            "cold": 1.0 - spec.cold_start_seconds / max_cold if max_cold > 0 else 1.0,
            "repro": repro_of(spec),
            "perf": spec.perf_bias,
        }
        score = sum(WEIGHTS[k] * v for k, v in terms.items())
        device = settings_for(spec).device
        if det.available and spec.kind == "local" and det.detail:
            device = f"{device}: {det.detail}"
        ranked.append(Scored(spec.name, score, terms, hourly[spec.name], quote(spec, job), device))
    ranked.sort(key=lambda s: (-round(s.score, 12), s.backend))
    notes = () if req.job is not None else (job.origin,)
    return PickResult(tuple(ranked), tuple(filtered), req, notes=notes)


def detect_all(registry: Registry, environ: Mapping[str, str] | None = None,
               only: Sequence[str] | None = None) -> dict[str, Detection]:
    from kolmbuild.compute.detect import detect

    return {s.name: detect(s, environ) for s in registry if only is None or s.name in only}
