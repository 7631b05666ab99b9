"""Training checkpoints: one file, written whole (temp + os.replace), tied to a run fingerprint."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from kolmbuild.atomic import atomic_path

CHECKPOINT_FILE = "checkpoint.pt"


@dataclass(frozen=True)
class Checkpoint:
    """Everything needed to continue a run exactly where it stopped."""

    fingerprint: str
    step: int  # steps completed
    losses: tuple[float, ...]
    adapter: dict[str, Any]  # peft adapter state dict
    optimizer: dict[str, Any]
    rng: Any  # torch CPU RNG state (dropout, NEFTune noise)
    reference: Any = None  # DPO reference log-probabilities [n_pairs, 2], once the DPO phase began


def save_checkpoint(folder: Path, ckpt: Checkpoint) -> Path:
    import torch

    folder.mkdir(parents=True, exist_ok=True)
    dst = folder / CHECKPOINT_FILE
    payload = {
        "fingerprint": ckpt.fingerprint,
        "step": ckpt.step,
        "losses": list(ckpt.losses),
        "adapter": ckpt.adapter,
        "optimizer": ckpt.optimizer,
        "rng": ckpt.rng,
        "reference": ckpt.reference,
    }
    with atomic_path(dst) as tmp:
        torch.save(payload, tmp)
    return dst


def load_checkpoint(folder: Path, fingerprint: str) -> Checkpoint | None:
    """The checkpoint in ``folder`` when it belongs to the run ``fingerprint``; None otherwise
    (absent, from another run, or unreadable: a fresh start is always safe)."""
    import torch

    path = folder / CHECKPOINT_FILE
    if not path.is_file():
        return None
    try:
        data = torch.load(path, map_location="cpu", weights_only=True)
    except Exception:
        return None
    if not isinstance(data, dict) or data.get("fingerprint") != fingerprint:
        return None
    return Checkpoint(
        fingerprint=fingerprint,
        step=int(data["step"]),
        losses=tuple(float(x) for x in data["losses"]),
        adapter=data["adapter"],
        optimizer=data["optimizer"],
        rng=data["rng"],
        reference=data.get("reference"),
    )


def clear_checkpoint(folder: Path) -> None:
    (folder / CHECKPOINT_FILE).unlink(missing_ok=True)
