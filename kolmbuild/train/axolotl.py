"""The local-cuda path: an axolotl config generated from the task spec, and the axolotl run.

axolotl pins its own torch and CUDA packages, so it lives in the optional ``kolmbuild[cuda]``
extra and is never installed in the base install or CI. The config generation is plain data and
is tested here; :func:`run_axolotl` says plainly when axolotl is missing. Its output is the same
PEFT layout (``adapter_model.safetensors`` + ``adapter_config.json``) the CPU trainer writes, so
the GGUF export and everything after it are shared.
"""

from __future__ import annotations

import importlib.util
import json
import math
import os
import shutil
import subprocess
import sys
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from kolmbuild.config.models import ShapeSpec
from kolmbuild.errors import BuildFailed
from kolmbuild.models import BaseModel
from kolmbuild.runtime.prompt import ContextHit, build_messages
from kolmbuild.runtime.shape import input_text
from kolmbuild.train.settings import CHECKPOINT_FRACTION, TrainSettings

# Architectures liger-kernel patches (its RoPE, RMSNorm, SwiGLU and fused linear cross-entropy).
_LIGER_MODEL_TYPES = frozenset({"llama", "mistral", "mixtral", "qwen2", "qwen3", "gemma", "gemma2", "gemma3", "phi3"})
# Share of the GPU's memory a run may plan to use (the rest: fragmentation, optimizer state, spikes).
_VRAM_HEADROOM = 0.7


@dataclass(frozen=True)
class GpuInfo:
    name: str
    vram_gb: float
    capability: tuple[int, int]  # CUDA compute capability, e.g. (8, 0) for A100


def detect_gpu() -> GpuInfo | None:
    """The first CUDA device as torch sees it, or None."""
    import torch

    if not torch.cuda.is_available():
        return None
    props = torch.cuda.get_device_properties(0)
    return GpuInfo(props.name, props.total_memory / 2**30, (props.major, props.minor))


def weights_gb(n_params: int) -> float:
    """The frozen base in bf16: 2 bytes per parameter."""
    return 2 * n_params / 2**30


def activations_gb(seq_len: int, batch_size: int, hidden: int, layers: int) -> float:
    """Activations kept for backward without checkpointing: about 34 * seq * batch * hidden bytes
    per layer (Korthikanti et al., 2022, 16-bit, no recomputation)."""
    return 34 * seq_len * batch_size * hidden * layers / 2**30


def needs_qlora(n_params: int, gpu: GpuInfo) -> bool:
    """QLoRA NF4 when the bf16 weights plus 1 GB of CUDA context would pass the headroom: the
    4-bit base takes about a quarter of the memory."""
    return weights_gb(n_params) + 1.0 > _VRAM_HEADROOM * gpu.vram_gb


def needs_checkpointing(n_params: int, act_gb: float, gpu: GpuInfo) -> bool:
    """Gradient checkpointing when the activations are what would not fit."""
    base = weights_gb(n_params) / (4 if needs_qlora(n_params, gpu) else 1)
    return base + act_gb + 1.0 > _VRAM_HEADROOM * gpu.vram_gb


def attention_implementation(gpu: GpuInfo, *, flash_attn_installed: bool) -> str:
    """flash_attention_2 on Ampere or newer (compute capability 8.0+) when flash-attn is
    installed; PyTorch SDPA otherwise (it picks its own fused kernel per GPU)."""
    return "flash_attention_2" if gpu.capability >= (8, 0) and flash_attn_installed else "sdpa"


@dataclass(frozen=True)
class AxolotlInputs:
    base_model_dir: Path  # a HF folder (a GGUF base is dequantized into one first)
    model_type: str  # the HF model_type, for liger
    n_params: int
    hidden_size: int
    num_layers: int
    dataset: Path  # JSONL written by write_sft_dataset / write_preference_dataset
    output_dir: Path


def axolotl_config(
    settings: TrainSettings,
    inputs: AxolotlInputs,
    gpu: GpuInfo,
    *,
    rl: str | None = None,
    flash_attn_installed: bool = False,
    lora_model_dir: Path | None = None,
) -> dict[str, Any]:
    """The axolotl YAML (as a dict) for one run: supervised (``rl=None``) or ``dpo``/``orpo``."""
    lora = settings.lora
    act = activations_gb(settings.max_seq_len, settings.batch_size, inputs.hidden_size, inputs.num_layers)
    qlora = needs_qlora(inputs.n_params, gpu)
    bf16 = gpu.capability >= (8, 0)
    cfg: dict[str, Any] = {
        "base_model": str(inputs.base_model_dir),
        "trust_remote_code": False,
        "adapter": "qlora" if qlora else "lora",
        "load_in_4bit": qlora,
        "load_in_8bit": False,
        "lora_r": lora.rank,
        "lora_alpha": lora.alpha,
        "lora_dropout": lora.dropout,
        "lora_target_modules": list(lora.target_modules),
        "peft_use_dora": lora.use_dora,
        "peft_use_rslora": lora.use_rslora,
        "sequence_len": settings.max_seq_len,
        "micro_batch_size": settings.batch_size,
        "gradient_accumulation_steps": 1,
        "num_epochs": settings.epochs,
        "learning_rate": settings.lr,
        "optimizer": "adamw_torch",
        "lr_scheduler": "constant",
        "seed": settings.seed,
        # a float below 1 is a fraction of the run's steps for transformers' Trainer
        "save_steps": settings.checkpoint_every or CHECKPOINT_FRACTION,
        "save_safetensors": True,
        "auto_resume_from_checkpoints": True,
        "output_dir": str(inputs.output_dir),
        "dataset_prepared_path": str(inputs.output_dir / "prepared"),
        "bf16": bf16,
        "fp16": not bf16,
        "tf32": bf16,
        "attn_implementation": attention_implementation(gpu, flash_attn_installed=flash_attn_installed),
        "gradient_checkpointing": needs_checkpointing(inputs.n_params, act, gpu),
        "chat_template": "tokenizer_default",
        "val_set_size": 0.0,
        "logging_steps": 1,
    }
    if settings.max_steps:
        cfg["max_steps"] = settings.max_steps
    if qlora:
        cfg["bnb_config_kwargs"] = {"bnb_4bit_quant_type": "nf4", "bnb_4bit_use_double_quant": True}
    if settings.neftune_alpha:
        cfg["neftune_noise_alpha"] = settings.neftune_alpha
    if settings.loraplus_lr_ratio:
        cfg["loraplus_lr_ratio"] = settings.loraplus_lr_ratio
    if inputs.model_type in _LIGER_MODEL_TYPES and gpu.capability >= (7, 0):
        cfg["plugins"] = ["axolotl.integrations.liger.LigerPlugin"]
        cfg.update(liger_rope=True, liger_rms_norm=True, liger_glu_activation=True, liger_fused_linear_cross_entropy=True)
    if lora_model_dir is not None:
        cfg["lora_model_dir"] = str(lora_model_dir)
    if rl is None:
        cfg["datasets"] = [{
            "path": str(inputs.dataset), "ds_type": "json", "type": "chat_template",
            "field_messages": "messages", "roles_to_train": ["assistant"], "train_on_eos": "turn",
        }]
    elif rl == "dpo":
        cfg.update(rl="dpo", rl_beta=settings.dpo_beta)
        cfg["datasets"] = [{
            "path": str(inputs.dataset), "ds_type": "json", "type": "chat_template.default",
            "field_messages": "messages", "field_chosen": "chosen", "field_rejected": "rejected",
        }]
    elif rl == "orpo":
        cfg.update(rl="orpo", orpo_alpha=settings.orpo_lambda, remove_unused_columns=False)
        cfg["datasets"] = [{"path": str(inputs.dataset), "ds_type": "json", "type": "chat_template.argilla"}]
    else:
        raise ValueError(f"unknown rl {rl!r}")
    return cfg


def _write_jsonl(path: Path, rows: Sequence[dict[str, Any]]) -> Path:
    tmp = path.with_name(path.name + ".part")
    tmp.write_text("".join(json.dumps(r, ensure_ascii=False, sort_keys=True) + "\n" for r in rows))
    os.replace(tmp, path)
    return path


Context = Sequence[ContextHit]  # the recall passages of one prompt (kolmbuild.train.context)


def _with_contexts(contexts: Sequence[Context] | None, n: int) -> Sequence[Context]:
    return [()] * n if contexts is None else contexts


def write_sft_dataset(path: Path, description: str, shape: ShapeSpec, rows: Sequence[tuple[Any, Any]],
                      contexts: Sequence[Context] | None = None) -> Path:
    """OpenAI-style ``{"messages": [...]}`` rows, the same turns the CPU trainer uses (recall
    passages included: ``contexts[i]`` for row i)."""
    return _write_jsonl(path, [
        {"messages": [*build_messages(description, shape, i, hits), {"role": "assistant", "content": input_text(o)}]}
        for (i, o), hits in zip(rows, _with_contexts(contexts, len(rows)), strict=True)
    ])


def write_preference_dataset(
    path: Path, description: str, shape: ShapeSpec, rows: Sequence[tuple[Any, Any, Any]], rl: str,
    contexts: Sequence[Context] | None = None,
) -> Path:
    """DPO rows (``chat_template.default``: prompt turns, chosen/rejected assistant turns) or ORPO
    rows (``chat_template.argilla``: prompt text, chosen/rejected full conversations)."""
    out = []
    for (i, c, r), hits in zip(rows, _with_contexts(contexts, len(rows)), strict=True):
        prompt = build_messages(description, shape, i, hits)
        chosen = {"role": "assistant", "content": input_text(c)}
        rejected = {"role": "assistant", "content": input_text(r)}
        if rl == "dpo":
            out.append({"messages": prompt, "chosen": chosen, "rejected": rejected})
        else:
            out.append({"prompt": prompt[-1]["content"], "chosen": [*prompt, chosen], "rejected": [*prompt, rejected]})
    return _write_jsonl(path, out)


def axolotl_available() -> bool:
    return importlib.util.find_spec("axolotl") is not None


def require_axolotl() -> None:
    if not axolotl_available():
        raise BuildFailed(
            "training on local-cuda runs axolotl, which is not installed: it needs kolmbuild[cuda]",
            hint="pip install 'kolmbuild[cuda]' (it pins its own torch and CUDA packages), or build with --backend local-cpu",
        )


def run_axolotl(config: dict[str, Any], config_path: Path) -> None:
    """Write ``config`` as YAML and run ``python -m axolotl.cli.train`` on it (telemetry off)."""
    require_axolotl()
    import yaml  # type: ignore[import-untyped]

    tmp = config_path.with_name(config_path.name + ".part")
    tmp.write_text(yaml.safe_dump(config, sort_keys=True))
    os.replace(tmp, config_path)
    env = dict(os.environ, AXOLOTL_DO_NOT_TRACK="1", HF_HUB_OFFLINE="1")
    proc = subprocess.run([sys.executable, "-m", "axolotl.cli.train", str(config_path)], env=env,
                          capture_output=True, text=True)
    if proc.returncode != 0:
        tail = " | ".join((proc.stderr or proc.stdout).strip().splitlines()[-5:])
        raise BuildFailed(f"axolotl exited {proc.returncode}: {tail}")


@dataclass(frozen=True)
class AxolotlRun:
    steps: int
    final_loss: float | None
    trainable_params: int | None


def hf_base_dir(base: BaseModel, cache_dir: Path) -> tuple[Path, dict[str, Any]]:
    """A HF folder axolotl can load, and its config: the base's own folder, or (for a GGUF base)
    the GGUF dequantized once by transformers into ``cache_dir``."""
    if base.hf_dir is not None:
        return base.hf_dir, json.loads((base.hf_dir / "config.json").read_text())
    folder = cache_dir / f"hf-{base.sha256[:16]}"
    if not (folder / "config.json").is_file():
        from kolmbuild.train.trainer import load_base

        loaded = load_base(base, "cpu")
        tmp = cache_dir / f".hf-{base.sha256[:16]}.part"
        loaded.model.save_pretrained(tmp, safe_serialization=True)
        loaded.tokenizer.save_pretrained(tmp)
        os.replace(tmp, folder)
    return folder, json.loads((folder / "config.json").read_text())


def last_logged_state(output_dir: Path) -> AxolotlRun:
    """Steps and last training loss from the newest ``checkpoint-*/trainer_state.json``."""
    states = sorted(output_dir.glob("checkpoint-*/trainer_state.json"), key=lambda p: int(p.parent.name.split("-")[-1]))
    if not states:
        return AxolotlRun(0, None, None)
    state = json.loads(states[-1].read_text())
    losses = [e["loss"] for e in state.get("log_history", []) if "loss" in e]
    return AxolotlRun(int(state.get("global_step", 0)), float(losses[-1]) if losses else None, None)


def train_with_axolotl(
    base: BaseModel,
    settings: TrainSettings,
    description: str,
    shape: ShapeSpec,
    rows: Sequence[tuple[Any, Any]],
    pairs: Sequence[tuple[Any, Any, Any]],
    workdir: Path,
    out_dir: Path,
    row_contexts: Sequence[Context] | None = None,
    pair_contexts: Sequence[Context] | None = None,
) -> AxolotlRun:
    """Supervised LoRA, then DPO (``dpo``), or ORPO alone (``orpo``), each an axolotl run whose
    output folder is resumable (``auto_resume_from_checkpoints``); the adapter files end in
    ``out_dir`` in the PEFT layout."""
    gpu = detect_gpu()
    if gpu is None:
        raise BuildFailed("backend local-cuda: torch reports no CUDA GPU on this machine")
    require_axolotl()
    workdir.mkdir(parents=True, exist_ok=True)
    model_dir, hf_config = hf_base_dir(base, workdir)
    flash = importlib.util.find_spec("flash_attn") is not None
    n_params = _count_params(model_dir)

    def inputs(dataset: Path, out: Path) -> AxolotlInputs:
        return AxolotlInputs(model_dir, hf_config.get("model_type", ""), n_params, int(hf_config.get("hidden_size", 0)),
                             int(hf_config.get("num_hidden_layers", 0)), dataset, out)

    stages: list[tuple[str | None, Path]] = []
    if settings.preference == "orpo" and pairs:
        stages.append(("orpo", write_preference_dataset(workdir / "orpo.jsonl", description, shape, pairs, "orpo",
                                                                pair_contexts)))
    else:
        stages.append((None, write_sft_dataset(workdir / "sft.jsonl", description, shape, rows, row_contexts)))
        if settings.preference == "dpo" and pairs:
            stages.append(("dpo", write_preference_dataset(workdir / "dpo.jsonl", description, shape, pairs, "dpo",
                                                                   pair_contexts)))
    previous: Path | None = None
    total_steps, final_loss = 0, None
    for rl, dataset in stages:
        out = workdir / f"run-{rl or 'sft'}"
        config = axolotl_config(settings, inputs(dataset, out), gpu, rl=rl, flash_attn_installed=flash, lora_model_dir=previous)
        run_axolotl(config, workdir / f"axolotl-{rl or 'sft'}.yml")
        state = last_logged_state(out)
        total_steps += state.steps
        final_loss = state.final_loss if state.final_loss is not None else final_loss
        previous = out
    assert previous is not None
    out_dir.mkdir(parents=True, exist_ok=True)
    for name in ("adapter_model.safetensors", "adapter_config.json"):
        shutil.copyfile(previous / name, out_dir / name)
    return AxolotlRun(total_steps, final_loss, None)


def _count_params(model_dir: Path) -> int:
    from safetensors import safe_open

    total = 0
    for shard in model_dir.glob("*.safetensors"):
        with safe_open(str(shard), framework="np") as f:
            for key in f.keys():
                total += int(math.prod(f.get_slice(key).get_shape()))
    return total
