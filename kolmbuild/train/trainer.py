"""LoRA fine-tuning with transformers + peft on CPU or MPS (and ROCm/CUDA torch without axolotl).

The base loads through transformers (a GGUF is dequantized by ``from_pretrained(dir,
gguf_file=...)``), so the very file llama.cpp runs is the file we train on. A run is a fixed,
seeded schedule of batches (:mod:`kolmbuild.train.schedule`); every ``checkpoint_every`` steps
the adapter, the optimizer and the RNG state are written to one checkpoint file, so a run that
is interrupted continues from there and ends with the same adapter as an uninterrupted one.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import math
import tempfile
import warnings
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from kolmbuild.atomic import commit
from kolmbuild.errors import BuildFailed, UserInputError
from kolmbuild.models import BaseModel
from kolmbuild.progress import NullProgress, Progress
from kolmbuild.train.checkpoint import Checkpoint, clear_checkpoint, load_checkpoint, save_checkpoint
from kolmbuild.train.encoding import IGNORE, Encoded, EncodedPair
from kolmbuild.train.losses import answer_logps, dpo_loss, orpo_loss, sft_loss
from kolmbuild.train.progress import StepProgress
from kolmbuild.train.schedule import Step, build_schedule
from kolmbuild.train.settings import TrainSettings, checkpoint_interval

ADAPTER_FILES = ("adapter_model.safetensors", "adapter_config.json")


@dataclass(frozen=True)
class LoadedBase:
    """A base model loaded for training. ``model`` is restored (LoRA removed) after each run, so
    one load serves several runs."""

    base: BaseModel
    model: Any  # transformers.PreTrainedModel
    tokenizer: Any  # transformers.PreTrainedTokenizerBase
    device: str


@dataclass(frozen=True)
class TrainData:
    labels: tuple[Encoded, ...]
    pairs: tuple[EncodedPair, ...] = ()


@dataclass(frozen=True)
class TrainResult:
    steps: int
    final_loss: float
    losses: tuple[float, ...]
    trainable_params: int
    device: str
    resumed_from: int
    phases: dict[str, int] = field(default_factory=dict)


def pick_device(requested: str) -> str:
    """The torch device for a backend's ``device``: cpu, mps, or cuda (ROCm torch is "cuda" too)."""
    import torch

    if requested == "cpu":
        return "cpu"
    if requested == "mps":
        if not torch.backends.mps.is_available():
            raise BuildFailed("backend wants device 'mps' but torch reports no Apple GPU on this machine")
        return "mps"
    if requested in ("cuda", "rocm"):
        if not torch.cuda.is_available():
            raise BuildFailed(f"backend wants device {requested!r} but torch reports no GPU on this machine")
        return "cuda"
    raise BuildFailed(f"the train stage cannot run on device {requested!r} (supported: cpu, mps, cuda, rocm)")


# transformers modules that draw their own tqdm bars, ignoring its progress-bar switch (the GGUF
# loader's "Converting and de-quantizing GGUF tensors...")
_OWN_TQDM_MODULES = ("transformers.modeling_gguf_pytorch_utils",)


@contextlib.contextmanager
def _quiet_transformers() -> Iterator[None]:
    """transformers' own notices and tqdm bars while loading (the tokenizer's "legacy behaviour"
    note, "Converting and de-quantizing GGUF tensors"): the stage shows its own progress. The
    GGUF loader calls ``tqdm.auto.tqdm`` directly, so its module's ``tqdm`` is swapped for a
    disabled one for the duration. Everything is restored afterwards."""
    import functools
    import importlib

    from transformers.utils import logging as hf_logging

    verbosity, bars = hf_logging.get_verbosity(), hf_logging.is_progress_bar_enabled()
    hf_logging.set_verbosity_error()
    hf_logging.disable_progress_bar()
    swapped: list[tuple[Any, Any]] = []
    for name in _OWN_TQDM_MODULES:
        try:
            module = importlib.import_module(name)
        except ImportError:  # another transformers version: nothing to swap
            continue
        own = getattr(module, "tqdm", None)
        if own is not None:
            swapped.append((module, own))
            module.tqdm = functools.partial(own, disable=True)  # type: ignore[attr-defined]
    try:
        yield
    finally:
        for module, own in swapped:
            module.tqdm = own
        hf_logging.set_verbosity(verbosity)
        if bars:
            hf_logging.enable_progress_bar()


def load_base(base: BaseModel, device: str = "cpu") -> LoadedBase:
    """Load the base's tokenizer and float32 weights from local files only."""
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    if base.gguf_path is not None:
        folder, extra = base.gguf_path.parent, {"gguf_file": base.gguf_path.name}
    elif base.hf_dir is not None:
        folder, extra = base.hf_dir, {}
    else:
        raise UserInputError(f"task.base.name: base {base.name!r} has neither a GGUF file nor a model folder")
    try:
        with _quiet_transformers():
            tokenizer = AutoTokenizer.from_pretrained(folder, local_files_only=True, **extra)  # type: ignore[no-untyped-call]
            model = AutoModelForCausalLM.from_pretrained(folder, local_files_only=True, dtype=torch.float32, **extra)
    except (OSError, ValueError) as exc:
        raise UserInputError(f"task.base.name: cannot load base {base.name!r} for training: {exc}") from exc
    model.to(device)  # type: ignore[arg-type]  # transformers' wrapped .to() is mistyped
    return LoadedBase(base, model, tokenizer, device)


def run_fingerprint(base: BaseModel, settings: TrainSettings, data: TrainData) -> str:
    """What a checkpoint must match to be resumed: base, settings and every token of the data."""
    h = hashlib.sha256()
    h.update(base.sha256.encode())
    h.update(json.dumps(settings.to_json(), sort_keys=True).encode())
    for ex in data.labels:
        h.update(repr((ex.input_ids, ex.labels)).encode())
    for pair in data.pairs:
        h.update(repr((pair.chosen.input_ids, pair.chosen.labels, pair.rejected.input_ids, pair.rejected.labels)).encode())
    return h.hexdigest()


def _collate(rows: Sequence[Encoded], pad_id: int, device: str) -> dict[str, Any]:
    import torch

    width = max(len(r.input_ids) for r in rows)
    ids = torch.full((len(rows), width), pad_id, dtype=torch.long)
    labels = torch.full((len(rows), width), IGNORE, dtype=torch.long)
    mask = torch.zeros((len(rows), width), dtype=torch.long)
    for i, r in enumerate(rows):
        n = len(r.input_ids)
        ids[i, :n] = torch.tensor(r.input_ids)
        labels[i, :n] = torch.tensor(r.labels)
        mask[i, :n] = 1
    return {"input_ids": ids.to(device), "labels": labels.to(device), "attention_mask": mask.to(device)}


def _neftune_hook(alpha: float) -> Callable[..., Any]:
    """NEFTune (Jain et al., 2023): uniform noise of scale alpha / sqrt(L * d) on the input
    embeddings, in training mode only."""

    def hook(module: Any, args: Any, output: Any) -> Any:
        import torch

        if not module.training:
            return output
        scale = alpha / math.sqrt(output.size(1) * output.size(2))
        return output + torch.zeros_like(output).uniform_(-scale, scale)

    return hook


def _lora_config(settings: TrainSettings) -> Any:
    from peft import LoraConfig

    lora = settings.lora
    return LoraConfig(
        r=lora.rank,
        lora_alpha=lora.alpha,
        lora_dropout=lora.dropout,
        target_modules=list(lora.target_modules),
        use_dora=lora.use_dora,
        use_rslora=lora.use_rslora,
        bias="none",
        task_type="CAUSAL_LM",
    )


def _param_groups(model: Any, settings: TrainSettings) -> list[dict[str, Any]]:
    """One group, or with LoRA+ (Hayou et al., 2024) the B matrices at lr * ratio."""
    trainable = [(n, p) for n, p in model.named_parameters() if p.requires_grad]
    if not settings.loraplus_lr_ratio:
        return [{"params": [p for _, p in trainable], "lr": settings.lr}]
    b = [p for n, p in trainable if "lora_B" in n]
    rest = [p for n, p in trainable if "lora_B" not in n]
    return [{"params": rest, "lr": settings.lr}, {"params": b, "lr": settings.lr * settings.loraplus_lr_ratio}]


def _pair_batch(pairs: Sequence[EncodedPair], pad_id: int, device: str) -> dict[str, Any]:
    return _collate([p.chosen for p in pairs] + [p.rejected for p in pairs], pad_id, device)


def reference_logps(model: Any, data: TrainData, batch_size: int, pad_id: int, device: str) -> Any:
    """[n_pairs, 2] summed answer log-probabilities (chosen, rejected) under the model as it is now,
    dropout off: DPO's reference is the supervised policy at the start of the DPO phase."""
    import torch

    rows = []
    was_training = model.training
    model.eval()
    with torch.no_grad():
        for start in range(0, len(data.pairs), batch_size):
            chunk = data.pairs[start : start + batch_size]
            batch = _pair_batch(chunk, pad_id, device)
            logits = model(input_ids=batch["input_ids"], attention_mask=batch["attention_mask"]).logits
            logps, _ = answer_logps(logits, batch["labels"])
            rows.append(torch.stack([logps[: len(chunk)], logps[len(chunk) :]], dim=1).cpu())
    model.train(was_training)
    return torch.cat(rows)


def _step_loss(model: Any, step: Step, data: TrainData, settings: TrainSettings, pad_id: int, device: str,
               reference: Any) -> Any:
    if step.phase == "sft":
        batch = _collate([data.labels[i] for i in step.indices], pad_id, device)
        logits = model(input_ids=batch["input_ids"], attention_mask=batch["attention_mask"]).logits
        return sft_loss(logits, batch["labels"])
    batch = _pair_batch([data.pairs[i] for i in step.indices], pad_id, device)
    n = len(step.indices)
    logits = model(input_ids=batch["input_ids"], attention_mask=batch["attention_mask"]).logits
    logps, counts = answer_logps(logits, batch["labels"])
    if step.phase == "orpo":
        return orpo_loss(logps[:n], counts[:n], logps[n:], counts[n:], settings.orpo_lambda)
    ref = reference[list(step.indices)].to(device)
    return dpo_loss(logps[:n], logps[n:], ref[:, 0], ref[:, 1], settings.dpo_beta)


def train_lora(
    loaded: LoadedBase,
    data: TrainData,
    settings: TrainSettings,
    out_dir: Path,
    *,
    checkpoint_dir: Path | None = None,
    progress: Progress | None = None,
    on_step: Callable[[int, float], None] | None = None,
    on_checkpoint: Callable[[Path], None] | None = None,
    step_lines: bool = False,
) -> TrainResult:
    """Train a LoRA on ``data`` and write ``adapter_model.safetensors`` and ``adapter_config.json``
    (plain PEFT layout) into ``out_dir``. With ``checkpoint_dir``, resume from a matching checkpoint
    there and write one every ``settings.checkpoint_every`` steps (default: a tenth of the run, see
    :func:`checkpoint_interval`); it is removed on success. ``on_checkpoint(path)`` runs after each
    checkpoint is written (a remote stage ships it off the machine).
    ``on_step(step, loss)`` runs after each step (an exception there interrupts the run).
    ``progress`` gets a bar of the steps with the loss; ``step_lines`` adds a line every few steps
    (:mod:`kolmbuild.train.progress`) for when no terminal draws the bar."""
    import torch
    from peft import get_peft_model, set_peft_model_state_dict
    from peft.utils import get_peft_model_state_dict

    progress = progress or NullProgress()
    schedule = build_schedule(
        len(data.labels), len(data.pairs), preference=settings.preference, epochs=settings.epochs,
        batch_size=settings.batch_size, max_steps=settings.max_steps, seed=settings.seed,
    )
    if not schedule:
        raise UserInputError("task.train: there are no verified labels (or preference pairs) to train on")
    fingerprint = run_fingerprint(loaded.base, settings, data)
    pad_id = loaded.tokenizer.pad_token_id
    if pad_id is None:
        pad_id = loaded.tokenizer.eos_token_id or 0

    torch.manual_seed(settings.seed)
    model = get_peft_model(loaded.model, _lora_config(settings))
    hook = None
    try:
        optimizer = torch.optim.AdamW(_param_groups(model, settings), weight_decay=0.0)
        start, losses, reference = 0, [], None
        ckpt = load_checkpoint(checkpoint_dir, fingerprint) if checkpoint_dir else None
        if ckpt is not None and ckpt.step < len(schedule):
            set_peft_model_state_dict(model, ckpt.adapter)
            optimizer.load_state_dict(ckpt.optimizer)
            torch.set_rng_state(ckpt.rng)
            start, losses, reference = ckpt.step, list(ckpt.losses), ckpt.reference
        if settings.neftune_alpha:
            hook = model.get_input_embeddings().register_forward_hook(_neftune_hook(settings.neftune_alpha))
        trainable = sum(p.numel() for p in model.parameters() if p.requires_grad)
        every = checkpoint_interval(settings, len(schedule))
        steps = StepProgress(progress, len(schedule), lines=step_lines)
        steps.start(f"train LoRA r={settings.lora.rank} on {loaded.device}", start, losses[-1] if start else None)
        model.train()
        for index in range(start, len(schedule)):
            if schedule[index].phase == "dpo" and reference is None:
                reference = reference_logps(model, data, settings.batch_size, pad_id, loaded.device)
            loss = _step_loss(model, schedule[index], data, settings, pad_id, loaded.device, reference)
            if not torch.isfinite(loss):
                raise BuildFailed(f"training diverged at step {index + 1}: loss is {loss.item()} (lower task.train.lr)")
            loss.backward()
            optimizer.step()
            optimizer.zero_grad(set_to_none=True)
            value = round(float(loss.item()), 6)
            losses.append(value)
            done = index + 1
            steps.step(done, value)
            if checkpoint_dir and done % every == 0 and done < len(schedule):
                saved = save_checkpoint(
                    checkpoint_dir,
                    Checkpoint(fingerprint, done, tuple(losses),
                               {k: v.detach().cpu().clone() for k, v in _quiet_peft(get_peft_model_state_dict, model).items()},
                               optimizer.state_dict(), torch.get_rng_state(), reference),
                )
                if on_checkpoint is not None:
                    on_checkpoint(saved)
            if on_step is not None:
                on_step(done, value)
        model.eval()
        _save_adapter(model, loaded.base.name, out_dir)
        if checkpoint_dir:
            clear_checkpoint(checkpoint_dir)
        phases: dict[str, int] = {}
        for step in schedule:
            phases[step.phase] = phases.get(step.phase, 0) + 1
        return TrainResult(len(schedule), losses[-1], tuple(losses), trainable, loaded.device, start, phases)
    finally:
        if hook is not None:
            hook.remove()
        model.unload()  # take the LoRA layers out again: loaded.model is the plain base once more


def _quiet_peft(call: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
    """``call`` without peft's "Could not find a config file … will assume that the vocabulary was not
    modified": peft looks for a config.json next to the base to see whether the vocabulary grew, the
    base here is a GGUF file and the embeddings are never saved, so the warning says nothing to a user."""
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message="Could not find a config file", category=UserWarning)
        return call(*args, **kwargs)


def _save_adapter(model: Any, base_name: str, out_dir: Path) -> None:
    """The PEFT adapter files, with the base named by its kolmbuild name (no machine paths)."""
    config = model.peft_config["default"]
    config.base_model_name_or_path = base_name
    config.revision = None
    out_dir.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=out_dir, prefix=".adapter-") as tmp:
        _quiet_peft(model.save_pretrained, tmp, safe_serialization=True, save_embedding_layers=False)
        _canonicalize_config(Path(tmp) / "adapter_config.json")
        for name in ADAPTER_FILES:
            commit(Path(tmp) / name, out_dir / name)


def _canonicalize_config(path: Path) -> None:
    """peft writes target_modules from a set, whose order changes between processes; sort it so the
    file's bytes (and the artifact's) depend only on the settings."""
    config = json.loads(path.read_text())
    if isinstance(config.get("target_modules"), list):
        config["target_modules"] = sorted(config["target_modules"])
    path.write_text(json.dumps(config, indent=2, sort_keys=True) + "\n")
