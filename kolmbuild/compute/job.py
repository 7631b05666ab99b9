"""A compute job: the work a quote is computed from, and what to ship when it runs.

Durations are estimated from work, never guessed: a job carries the model size, the training tokens
and epochs, and the evaluation cases. ``job_from_task`` derives them from a task's files (rows and
characters of the examples, about four characters per token), ``load_job_spec`` reads them from a
``--spec`` file (a job YAML, or a task YAML).
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from kolmbuild.config.models import TaskSpec
from kolmbuild.errors import ConfigError

CHARS_PER_TOKEN = 4.0
# Parameter counts of base models kolmbuild knows by name (the bundled SmolLM2 and common ids).
KNOWN_PARAMS: dict[str, int] = {
    "smollm2": 134_515_008,
    "smollm2-135m": 134_515_008,
    "smollm2-360m": 361_821_120,
    "smollm2-1.7b": 1_711_376_384,
}
_SIZE_IN_NAME = re.compile(r"(?<![\d.])(\d+(?:\.\d+)?)\s*([bm])(?![a-z])", re.IGNORECASE)
DEFAULT_EVAL_TOKENS = 128


@dataclass(frozen=True)
class Job:
    """What a quote needs (work) and what a run ships (payload). Frozen; build variants with ``replace``."""

    name: str
    model_params: int
    train_tokens: int  # per epoch
    epochs: float
    eval_cases: int
    eval_tokens_per_case: int = DEFAULT_EVAL_TOKENS
    kind: Literal["train", "infer"] = "train"
    min_vram_gb: float = 0.0
    rows: int = 0  # training rows (the teacher's estimate is per example)
    origin: str = ""  # where the numbers came from, shown in the quote's basis
    # payload: a command run in a folder that holds ``files``; ``outputs`` come back
    command: tuple[str, ...] = ()
    files: tuple[Path, ...] = ()
    outputs: tuple[str, ...] = ("out",)
    inputs: tuple[Any, ...] = ()  # inference inputs (serverless inference backends)
    labels: Mapping[str, str] = field(default_factory=dict)
    checkpoints: Any = None  # a kolmbuild.compute.checkpoints.CheckpointSink: where announced checkpoints go

    def with_payload(self, command: tuple[str, ...], files: tuple[Path, ...] = (),
                     outputs: tuple[str, ...] = ("out",)) -> Job:
        return replace(self, command=command, files=files, outputs=outputs)

    def train_flops(self) -> float:
        """LoRA fine-tuning: forward (2·N) plus activation gradients (2·N) per token; base weights frozen."""
        if self.kind != "train":
            return 0.0
        return 4.0 * self.model_params * self.train_tokens * self.epochs

    def eval_flops(self) -> float:
        return 2.0 * self.model_params * self.eval_cases * self.eval_tokens_per_case

    def work_flops(self) -> float:
        return self.train_flops() + self.eval_flops()

    def billed_tokens(self) -> int:
        train = self.train_tokens * self.epochs if self.kind == "train" else 0
        return int(math.ceil(train + self.eval_cases * self.eval_tokens_per_case))

    def to_json(self) -> dict[str, Any]:
        return {
            "name": self.name, "kind": self.kind, "model_params": self.model_params,
            "train_tokens": self.train_tokens, "epochs": self.epochs, "eval_cases": self.eval_cases,
            "eval_tokens_per_case": self.eval_tokens_per_case, "min_vram_gb": self.min_vram_gb,
        }


def training_memory_gb(params: int) -> float:
    """Memory a LoRA fine-tune needs: bf16 weights (2 bytes/param) plus 30% for activations and 1 GB."""
    return round(params * 2 * 1.3 / 1e9 + 1.0, 1)


# A job for comparing backends when no task is named: a 1B-parameter LoRA over 2M tokens.
REFERENCE_JOB = Job(
    name="reference", model_params=1_000_000_000, train_tokens=2_000_000, epochs=1.0, eval_cases=200,
    min_vram_gb=0.0, origin="reference job (1B params, 2M tokens, 1 epoch, 200 eval cases)",
)


def model_params(name: str, base_dir: Path) -> tuple[int, str]:
    """Parameter count of a base model and how it was found."""
    key = name.lower()
    if key in KNOWN_PARAMS:
        return KNOWN_PARAMS[key], f"{name}: {KNOWN_PARAMS[key] / 1e6:.0f}M params"
    path = Path(name).expanduser()
    path = path if path.is_absolute() else base_dir / path
    if path.is_file() and path.suffix == ".gguf":
        # quantized GGUF: about 5 bits per weight (Q4_1/Q5_0), so params ≈ bytes / 0.625
        n = int(path.stat().st_size / 0.625)
        return n, f"{path.name}: ~{n / 1e6:.0f}M params (GGUF size / 0.625 B)"
    if path.is_dir():
        size = sum(p.stat().st_size for p in path.glob("*.safetensors"))
        if size:
            n = size // 2
            return n, f"{path.name}: ~{n / 1e6:.0f}M params (safetensors bf16)"
    m = _SIZE_IN_NAME.search(name.rsplit("/", 1)[-1])
    if m:
        n = int(float(m.group(1)) * (1e9 if m.group(2).lower() == "b" else 1e6))
        return n, f"{name}: {m.group(1)}{m.group(2).upper()} params (from the name)"
    return 1_000_000_000, f"{name}: size unknown, assumed 1B params"


def _jsonl_stats(path: Path) -> tuple[int, int]:
    """(rows, characters) of a JSONL file, without parsing it (a quote must be cheap)."""
    rows = chars = 0
    with path.open("rb") as fh:
        for line in fh:
            if line.strip():
                rows += 1
                chars += len(line)
    return rows, chars


def job_from_task(task: TaskSpec, base_dir: Path, name: str | None = None) -> Job:
    params, model_note = model_params(task.base.name, base_dir)
    ex_path = Path(task.examples)
    ex_path = ex_path if ex_path.is_absolute() else base_dir / ex_path
    if not ex_path.is_file():
        raise ConfigError(f"task {task.name!r}: examples file {task.examples} not found (quote needs its size)")
    rows, chars = _jsonl_stats(ex_path)
    if task.eval:
        ev_path = Path(task.eval) if Path(task.eval).is_absolute() else base_dir / task.eval
        if not ev_path.is_file():
            raise ConfigError(f"task {task.name!r}: eval file {task.eval} not found (quote needs its size)")
        eval_cases, _ = _jsonl_stats(ev_path)
        train_rows, train_chars = rows, chars
    else:
        eval_cases = int(round(rows * task.split.holdout))
        train_rows = rows - eval_cases
        train_chars = int(chars * train_rows / rows) if rows else 0
    tokens = int(math.ceil(train_chars / CHARS_PER_TOKEN))
    epochs = task.train.epochs
    if task.train.max_steps:
        steps_per_epoch = max(1, math.ceil(train_rows / task.train.batch_size))
        epochs = min(epochs, task.train.max_steps / steps_per_epoch)
    per_case = task.shape.max_output_tokens + (int(chars / rows / CHARS_PER_TOKEN) if rows else 0)
    kind: Literal["train", "infer"] = "infer" if task.train.enabled == "never" else "train"
    return Job(
        name=name or task.name, model_params=params, train_tokens=tokens, epochs=epochs,
        eval_cases=eval_cases, eval_tokens_per_case=per_case, kind=kind, rows=train_rows,
        min_vram_gb=training_memory_gb(params) if kind == "train" else round(params * 2 / 1e9 + 0.5, 1),
        origin=f"{model_note}; {ex_path.name}: {rows} rows, ~{tokens} train tokens (chars/4)",
    )


class JobSpecFile(BaseModel):
    """A ``--spec`` job file: the work of a build, stated directly."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    name: str = "spec"
    kind: Literal["train", "infer"] = "train"
    model: str | None = None
    model_params: int | None = Field(default=None, ge=1)
    train_tokens: int = Field(default=0, ge=0)
    epochs: float = Field(default=1.0, gt=0)
    eval_cases: int = Field(default=0, ge=0)
    eval_tokens_per_case: int = Field(default=DEFAULT_EVAL_TOKENS, ge=1)
    min_vram_gb: float | None = Field(default=None, ge=0)


def load_job_spec(path: Path) -> Job:
    """A job from ``path``: a job spec (``model_params``/``model``, ``train_tokens`` …) or a task YAML."""
    from kolmbuild.config.kolmfile import format_validation_error

    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
    except OSError as exc:
        raise ConfigError(f"{path}: cannot read: {exc.strerror or exc}") from exc
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        raise ConfigError(f"{path}{f':{mark.line + 1}' if mark else ''}: invalid YAML") from exc
    if not isinstance(data, dict):
        raise ConfigError(f"{path}: expected a mapping (a job spec or a task)")
    if "examples" in data:  # a task file
        try:
            task = TaskSpec.model_validate(data)
        except ValidationError as exc:
            raise ConfigError(format_validation_error(exc, path, None)) from exc
        return job_from_task(task, path.parent)
    try:
        spec = JobSpecFile.model_validate(data)
    except ValidationError as exc:
        raise ConfigError(format_validation_error(exc, path, None)) from exc
    if spec.model_params is not None:
        params, note = spec.model_params, f"{spec.model_params / 1e6:.0f}M params"
    elif spec.model:
        params, note = model_params(spec.model, path.parent)
    else:
        raise ConfigError(f"{path}: model_params: required key is missing (or give `model: NAME`)")
    vram = spec.min_vram_gb if spec.min_vram_gb is not None else (
        training_memory_gb(params) if spec.kind == "train" else 0.0)
    return Job(
        name=spec.name, model_params=params, train_tokens=spec.train_tokens, epochs=spec.epochs,
        eval_cases=spec.eval_cases, eval_tokens_per_case=spec.eval_tokens_per_case, kind=spec.kind,
        min_vram_gb=vram, origin=f"{path.name}: {note}, {spec.train_tokens} tokens x {spec.epochs:g} epochs",
    )
