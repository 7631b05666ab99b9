"""Training settings: the user's :class:`TrainSpec` plus its quality preset, as a frozen dataclass."""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass
from typing import Any, Literal

from kolmbuild.config.models import TrainSpec

Preference = Literal["none", "dpo", "orpo"]

# What each preset turns on. "quality" bundles the presets that cost nothing at inference and
# need no special kernels; DoRA stays opt-in (slower to train, and llama.cpp cannot run it).
NEFTUNE_ALPHA = 5.0
LORAPLUS_LR_RATIO = 16.0
PRESETS: dict[str, frozenset[str]] = {
    "none": frozenset(),
    "neftune": frozenset({"neftune"}),
    "loraplus": frozenset({"loraplus"}),
    "dora": frozenset({"dora"}),
    "rslora": frozenset({"rslora"}),
    "quality": frozenset({"neftune", "loraplus", "rslora"}),
}
# Without task.train.checkpoint_every, a run writes a checkpoint every tenth of its steps: a rerun
# after an interruption loses at most a tenth of the work, and a 40-step run checkpoints at all.
CHECKPOINT_FRACTION = 0.1
# A prompt longer than this is cut from the left; the answer keeps at least half of it.
DEFAULT_MAX_SEQ_LEN = 1024


@dataclass(frozen=True)
class LoraSettings:
    rank: int
    alpha: int
    dropout: float
    target_modules: tuple[str, ...]
    use_dora: bool = False
    use_rslora: bool = False

    @property
    def scale(self) -> float:
        """The factor peft applies to B @ A: alpha / r, or alpha / sqrt(r) with rsLoRA."""
        return self.alpha / (self.rank**0.5 if self.use_rslora else self.rank)


@dataclass(frozen=True)
class TrainSettings:
    lora: LoraSettings
    epochs: float
    max_steps: int | None
    lr: float
    batch_size: int
    seed: int
    checkpoint_every: int | None  # None: a fraction of the run (checkpoint_interval)
    preference: Preference = "none"
    neftune_alpha: float | None = None
    loraplus_lr_ratio: float | None = None
    max_seq_len: int = DEFAULT_MAX_SEQ_LEN
    dpo_beta: float = 0.1
    orpo_lambda: float = 0.1

    def to_json(self) -> dict[str, Any]:
        data = asdict(self)
        data["lora"]["target_modules"] = list(self.lora.target_modules)
        return data


def settings_from_spec(spec: TrainSpec, *, max_output_tokens: int = 256) -> TrainSettings:
    """Turn the validated task.train section into settings, expanding ``preset``."""
    features = PRESETS[spec.preset]
    return TrainSettings(
        lora=LoraSettings(
            rank=spec.rank,
            alpha=spec.alpha,
            dropout=spec.dropout,
            target_modules=tuple(spec.target_modules),
            use_dora="dora" in features,
            use_rslora="rslora" in features,
        ),
        epochs=spec.epochs,
        max_steps=spec.max_steps,
        lr=spec.lr,
        batch_size=spec.batch_size,
        seed=spec.seed,
        checkpoint_every=spec.checkpoint_every,
        preference=spec.preference,
        neftune_alpha=NEFTUNE_ALPHA if "neftune" in features else None,
        loraplus_lr_ratio=LORAPLUS_LR_RATIO if "loraplus" in features else None,
        max_seq_len=max(DEFAULT_MAX_SEQ_LEN, 2 * max_output_tokens),
    )


def checkpoint_interval(settings: TrainSettings, total_steps: int) -> int:
    """Steps between checkpoints: ``checkpoint_every`` when set, else a tenth of the run (at least 1)."""
    if settings.checkpoint_every is not None:
        return settings.checkpoint_every
    return max(1, math.ceil(total_steps * CHECKPOINT_FRACTION))
