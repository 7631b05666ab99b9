"""Pydantic v2 models for what users write: the kolmfile and the composed per-target config.

Hydra composes plain dicts; these models validate the resolved result. Nested sections forbid
unknown keys so a typo (``task.trian``) is an error that names the key, not a silent default.
"""

from __future__ import annotations

import re
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


# ---------------------------------------------------------------- task (conf/task/*.yaml)


class ShapeSpec(_Strict):
    """What goes in and comes out. ``label`` outputs pick one of ``labels``."""

    input: Literal["text", "json"] = "text"
    output: Literal["text", "json", "label"] = "text"
    labels: list[str] | None = None
    schema_: dict[str, Any] | None = Field(default=None, alias="schema")
    max_output_tokens: int = Field(default=256, ge=1)

    model_config = ConfigDict(extra="forbid", frozen=True, populate_by_name=True)


class SplitSpec(_Strict):
    """How gold rows are split: ``train`` (learned from), ``select`` (chooses recipes, early-stops
    training) and ``test`` (scores K, seen by no choice). ``holdout`` is the test share when the
    task has no eval set (an eval set *is* the test set); ``select`` is the share of the examples
    held for selection. Each row's part is decided by a hash of (seed, input): docs/k-score.md."""

    holdout: float = Field(default=0.2, gt=0, lt=1)
    select: float = Field(default=0.2, gt=0, lt=1)
    seed: int = 0

    @model_validator(mode="after")
    def _room_to_train(self) -> SplitSpec:
        if self.holdout + self.select >= 1:
            raise ValueError(f"holdout ({self.holdout}) + select ({self.select}) must leave rows to train on (< 1)")
        return self


class RecallSpec(_Strict):
    embedder: str = "all-MiniLM-L6-v2"
    chunk_chars: int = Field(default=800, ge=64)
    overlap_chars: int = Field(default=100, ge=0)
    top_k: int = Field(default=4, ge=1)


class TeacherSpec(_Strict):
    """An OpenAI-compatible chat endpoint or Anthropic's Messages API."""

    provider: Literal["openai", "anthropic"] = "openai"
    model: str
    base_url: str | None = None
    api_key_env: str = "KOLM_TEACHER_TOKEN"
    # the key itself, only as ${oc.env:NAME} (compose refuses a literal): used, never recorded
    api_key: str | None = Field(default=None, repr=False)
    price_in_per_mtok: float = Field(default=0.0, ge=0)
    price_out_per_mtok: float = Field(default=0.0, ge=0)
    k: int = Field(default=8, ge=1)
    temperature: float = Field(default=0.7, ge=0)
    max_tokens: int = Field(default=512, ge=1)
    concurrency: int = Field(default=4, ge=1)
    timeout_s: float = Field(default=60.0, gt=0)
    max_retries: int = Field(default=4, ge=0)
    budget_usd: float = Field(default=1.0, ge=0)
    system_prompt: str | None = None
    # an unlabelled input's label is kept only when this share of its k samples agree on it
    # (self-consistency; a clear majority, so above one half)
    min_agreement: float = Field(default=0.6, gt=0.5, le=1)


class VerifierSpec(_Strict):
    kind: Literal["auto", "exact", "json", "regex", "python"] = "auto"
    path: str | None = None  # user-supplied Python verifier: defines verify(input, output, reference) -> bool


class RecipesSpec(_Strict):
    enabled: bool = True
    kinds: list[Literal["span", "lookup", "classifier"]] = ["span", "lookup", "classifier"]
    min_accuracy: float = Field(default=0.95, ge=0, le=1)
    drafts: bool = True
    # span redaction/extraction: "broad" offers each entity's shape in every known format first and
    # keeps it unless it errs where a narrower shape does not; "exact" keeps the formats the examples
    # show (docs/recipes.md)
    generalize: Literal["broad", "exact"] = "broad"


class BaseModelSpec(_Strict):
    """The base model: ``smollm2`` (the bundled GGUF), a GGUF path, a local HF folder, or a hub id."""

    name: str = "smollm2"
    revision: str | None = None
    quantize: Literal["none", "int8", "int4"] = "int8"


class TrainSpec(_Strict):
    enabled: Literal["auto", "always", "never"] = "auto"
    rank: int = Field(default=8, ge=1)
    alpha: int = Field(default=16, ge=1)
    dropout: float = Field(default=0.05, ge=0, lt=1)
    target_modules: list[str] = ["q_proj", "v_proj"]
    epochs: float = Field(default=1.0, gt=0)
    max_steps: int | None = Field(default=None, ge=1)
    lr: float = Field(default=2e-4, gt=0)
    batch_size: int = Field(default=4, ge=1)
    seed: int = 0
    checkpoint_every: int | None = Field(default=None, ge=1)  # None: every tenth of the run
    preset: Literal["none", "neftune", "loraplus", "dora", "rslora", "quality"] = "none"
    preference: Literal["none", "dpo", "orpo"] = "none"


class LimitsSpec(_Strict):
    """Bounds on what a task's files may hold, so one huge example cannot exhaust memory or time."""

    max_example_bytes: int = Field(default=1 << 20, ge=64, le=1 << 30)  # one JSONL line of examples/eval


class TaskSpec(_Strict):
    name: str
    version: str = "0.1.0"
    description: str = ""
    shape: ShapeSpec = ShapeSpec()
    examples: str
    eval: str | None = None
    unlabeled: str | None = None  # JSONL of {"input": …}: the teacher labels them (docs/distill.md)
    split: SplitSpec = SplitSpec()
    corpus: str | None = None
    recall: RecallSpec = RecallSpec()
    teacher: TeacherSpec | None = None
    verifier: VerifierSpec = VerifierSpec()
    recipes: RecipesSpec = RecipesSpec()
    base: BaseModelSpec = BaseModelSpec()
    train: TrainSpec = TrainSpec()
    limits: LimitsSpec = LimitsSpec()

    @field_validator("name")
    @classmethod
    def _name_is_slug(cls, v: str) -> str:
        if not v or any(c.isspace() or c in "/\\" for c in v):
            raise ValueError("must be a non-empty name without spaces or slashes")
        return v


# ---------------------------------------------------------------- gates (conf/gates/*.yaml)


class GatesSpec(_Strict):
    K_min: float = Field(default=0.70, ge=0, le=1)
    p50_ms_max: float | None = Field(default=None, gt=0)
    size_mb_max: float | None = Field(default=None, gt=0)


# ---------------------------------------------------------------- backend (conf/backend/*.yaml)


class PricingSpec(_Strict):
    basis: Literal["per-hour", "per-token", "per-second", "per-call"] = "per-hour"
    rate_usd: float = Field(default=0.0, ge=0)  # per hour / per 1M tokens / per second / per call


class BackendSpec(BaseModel):
    """One compute backend. Unknown keys are kept for the adapter (base URLs, images, regions)."""

    model_config = ConfigDict(extra="allow", frozen=True)

    name: str
    kind: Literal["local", "cloud-serverless", "cloud-managed", "cloud-marketplace", "self-hosted"]
    train: bool = True
    infer: bool = True
    airgap: bool = False
    cost_per_hour_usd: float = Field(default=0.0, ge=0)
    pricing: PricingSpec = PricingSpec()
    cold_start_seconds: float = Field(default=0.0, ge=0)
    vram_cap_gb: float = Field(default=0.0, ge=0)
    auth: list[str] = []
    tier: str = "free"
    perf_bias: float = Field(default=0.5, ge=0, le=1)
    catalog_date: str = "2026-11-01"
    enables: str = ""
    runtime: str = ""


class BudgetSpec(_Strict):
    usd: float | None = Field(default=None, ge=0)


# ---------------------------------------------------------------- one composed target


class TargetConfig(BaseModel):
    """The composed, resolved, validated config of one target: what a build reads."""

    model_config = ConfigDict(extra="allow", frozen=True)

    target: str
    task: TaskSpec
    backend: BackendSpec
    gates: GatesSpec = GatesSpec()
    budget: BudgetSpec = BudgetSpec()
    out: str | None = None

    def out_path(self) -> str:
        return self.out or f"artifacts/{self.target}-{self.task.version}.kolm"


# ---------------------------------------------------------------- the kolmfile itself


class TargetDecl(_Strict):
    """A target as declared in kolmfile.yaml: which options of each group, plus overrides."""

    task: str
    backend: str | None = None
    gates: str | None = None
    budget: BudgetSpec | None = None
    out: str | None = None
    overrides: list[str] = []


class KolmfileDefaults(_Strict):
    backend: str | None = None  # None: KOLM_BACKEND, then `compute use`, then local-cpu
    gates: str = "default"


class CacheSpec(_Strict):
    """The kolmfile's ``cache:`` block: a remote stage cache shared by CI and teammates (docs/engine.md).

    ``remote`` is any fsspec URL (``s3://``, ``gs://``, ``az://``, ``sftp://``, a folder, ``http(s)://``
    read-only); ``KOLM_REMOTE_CACHE`` and ``--remote`` override it. ``push`` (or ``KOLM_CACHE_PUSH=1``,
    ``--push``) uploads what a build ran. ``trust``: public keys (paths from the kolmfile's folder) whose
    records are used, besides the keys folder ``kolmbuild verify`` trusts. ``storage_options`` go to
    fsspec as they are (an endpoint, a profile): they are never printed, logged, pushed or recorded.
    """

    remote: str | None = None
    push: bool = False
    trust: list[str] = []
    storage_options: dict[str, Any] = {}


# HOST:PORT (a cluster's GCS, as `ray start --head` prints it), ray://HOST:PORT (Ray Client, e.g. a
# KubeRay head's port 10001), or auto (the cluster this machine is part of). Never Ray's "local",
# which would start a new one-machine cluster instead of using one.
_RAY_ADDRESS = re.compile(r"(ray://)?(\[[0-9A-Fa-f:.]+\]|[A-Za-z0-9][A-Za-z0-9.-]*):[0-9]{1,5}")


def check_ray_address(value: str) -> str:
    """A Ray cluster address as kolmbuild accepts it (ValueError says what is expected)."""
    text = value.strip()
    m = _RAY_ADDRESS.fullmatch(text)
    if text != "auto" and (m is None or not 0 < int(text.rsplit(":", 1)[1]) < 65536):
        raise ValueError("expected HOST:PORT, ray://HOST:PORT or auto")
    return text


class ExecutorSpec(_Strict):
    """The kolmfile's ``executor:`` block: where a sweep's (``-m``) points are built (docs/compute.md).

    ``local`` (default): on this machine, one after another or ``-j N`` at once. ``ray``: each point a
    Ray task on the cluster at ``address`` (``--ray-address`` and ``RAY_ADDRESS`` override it), the
    project shipped as Ray's working_dir without ``cache/``, ``artifacts/``, ``sweeps/``, ``.venv/``,
    ``.git/`` and the paths in ``excludes`` (gitignore patterns), results coming back through the
    remote cache (``cache.remote``), which the Ray executor requires.
    """

    kind: Literal["local", "ray"] = "local"
    address: str | None = None
    excludes: list[str] = []

    @field_validator("address")
    @classmethod
    def _address(cls, v: str | None) -> str | None:
        return None if v is None else check_ray_address(v)


class Kolmfile(_Strict):
    version: Literal[1] = 1
    defaults: KolmfileDefaults = KolmfileDefaults()
    budget: BudgetSpec = BudgetSpec()
    cache: CacheSpec = CacheSpec()
    executor: ExecutorSpec = ExecutorSpec()
    pipeline: list[str] | None = None  # stages to build (and what they come after); default: all rules
    targets: dict[str, TargetDecl]

    @field_validator("targets")
    @classmethod
    def _some_targets(cls, v: dict[str, TargetDecl]) -> dict[str, TargetDecl]:
        if not v:
            raise ValueError("declare at least one target")
        return v
