"""The train stage: a LoRA on the verified labels, exported to GGUF, with the base it runs on.

``task.train.enabled``: ``never`` skips, ``always`` trains, ``auto`` skips when the recipes
already cover the held-out inputs (:mod:`kolmbuild.train.decision`). Training runs in-process with
transformers + peft on cpu/mps (ROCm torch too), or through axolotl on local-cuda. Outputs:
``adapter_model.safetensors`` + ``adapter_config.json`` (PEFT), ``adapter.gguf`` (llama.cpp),
``base.gguf`` only when the base had to be quantized (otherwise the artifact names the base by
``train.json``'s ``base {name, sha256}`` and the runtime resolves it), and ``train.json``.
Checkpoints live in ``ctx.cache_dir/train/<stage key>``, so a rerun after an interruption resumes.
"""

from __future__ import annotations

import json
import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from kolmbuild.config.models import BaseModelSpec, RecallSpec, ShapeSpec, TrainSpec
from kolmbuild.config.sections import validate_section
from kolmbuild.engine.stage import StageContext, StageResult
from kolmbuild.errors import ComputeError, UserInputError
from kolmbuild.hashing.jcs import canonical_json
from kolmbuild.models import BaseModelError, resolve_base
from kolmbuild.models.gguf_info import read_gguf_info
from kolmbuild.models.quantize import decide_quantization, quantize_gguf
from kolmbuild.models.resolve import file_sha256
from kolmbuild.train.decision import decide
from kolmbuild.train.settings import TrainSettings, settings_from_spec

RECORD = "train.json"


def _read_json(path: Path | None) -> Mapping[str, Any] | None:
    if path is None:
        return None
    try:
        doc = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, json.JSONDecodeError):
        return None
    return doc if isinstance(doc, Mapping) else None


def _write_record(ctx: StageContext, record: Mapping[str, Any]) -> None:
    dst = ctx.output(RECORD)
    tmp = dst.with_name(dst.name + ".part")
    tmp.write_bytes(canonical_json(dict(record)) + b"\n")
    os.replace(tmp, dst)


def _labels(ctx: StageContext) -> list[tuple[Any, Any]]:
    from kolmbuild.data import read_jsonl

    path = ctx.up("distill", "labels.jsonl")
    if path is None:
        return []
    return [(r["input"], r["output"]) for r in read_jsonl(path) if r.get("verified", r.get("source") == "gold")]


def _pairs(ctx: StageContext, settings: TrainSettings) -> list[tuple[Any, Any, Any]]:
    from kolmbuild.data import read_jsonl

    path = ctx.up("distill", "preferences.jsonl")
    if settings.preference == "none" or path is None:
        return []
    return [(r["input"], r["chosen"], r["rejected"]) for r in read_jsonl(path) if r.get("chosen") != r.get("rejected")]


def _device(backend: Mapping[str, Any], environ: Mapping[str, str]) -> tuple[str, bool]:
    """(torch device kind, whether axolotl is required) for the backend this stage runs under.

    A local backend names its device (local-cuda means axolotl). A remote backend's train stage
    runs on its machine through ``kolmbuild.compute.stage_remote``; there (``KOLM_REMOTE_STAGE``
    set) the device is the backend's ``device`` or what torch finds, and axolotl is used when the
    machine has it. Reaching this action for a remote backend anywhere else is refused.
    """
    from kolmbuild.compute.stage_runner import REMOTE_ENV

    name = backend.get("name", "?")
    if backend.get("kind") == "local":
        device = str(backend.get("device") or "cpu")
        return device, device == "cuda"
    if not environ.get(REMOTE_ENV):
        raise ComputeError(
            f"backend {name!r} is remote: its train stage runs on the backend's machine through "
            "kolmbuild.compute.stage_remote, not in this process"
        )
    named = str(backend.get("device") or "")
    if named in ("cpu", "mps", "cuda", "rocm"):
        return named, False
    # a remote backend's `device` describes its machine ("A100-80GB", "remote"): ask torch there
    import torch

    if torch.cuda.is_available():
        return "cuda", False
    return ("mps" if torch.backends.mps.is_available() else "cpu"), False


def _decision(ctx: StageContext, spec: TrainSpec) -> Any:
    min_accuracy = ctx.param("task.recipes.min_accuracy")
    return decide(spec.enabled, _read_json(ctx.up("decompose", "decompose.json")),
                  float(min_accuracy) if min_accuracy is not None else 0.95)


def stays_local(ctx: StageContext) -> bool:
    """On a remote backend, rent nothing when this run will not train (the engine asks first)."""
    spec: TrainSpec = validate_section(TrainSpec, ctx.param("task.train"), key="task.train")
    return not _decision(ctx, spec).train


def run(ctx: StageContext) -> StageResult:
    spec: TrainSpec = validate_section(TrainSpec, ctx.param("task.train"), key="task.train")
    base_spec: BaseModelSpec = validate_section(BaseModelSpec, ctx.param("task.base"), key="task.base")
    shape: ShapeSpec = validate_section(ShapeSpec, ctx.param("task.shape"), key="task.shape")
    description = str(ctx.param("task.description") or "")
    decision = _decision(ctx, spec)
    record: dict[str, Any] = {
        "trained": False, "reason": decision.reason, "base": {"name": base_spec.name, "sha256": None},
        "steps": 0, "final_loss": None, "seed": spec.seed, "trainable_params": 0, "device": None,
    }
    if not decision.train:
        try:
            record["base"]["sha256"] = resolve_base(base_spec, base_dir=ctx.project_dir).sha256
        except BaseModelError:
            pass  # a recipe-only artifact needs no base on this machine
        _write_record(ctx, record)
        return StageResult(metrics=record, summary=decision.reason)

    settings = settings_from_spec(spec, max_output_tokens=shape.max_output_tokens)
    if settings.lora.use_dora:
        raise UserInputError("task.train.preset: 'dora' adapters cannot run in llama.cpp (no DoRA there), so they "
                             "cannot ship in a .kolm; use 'rslora', 'loraplus', 'neftune' or 'quality'")
    base = resolve_base(base_spec, base_dir=ctx.project_dir)
    rows = _labels(ctx)
    if not rows:
        raise UserInputError("task.train: distill produced no verified labels to train on")
    pairs = _pairs(ctx, settings)
    contexts = training_contexts(ctx, rows, pairs)
    device, axolotl_required = _device(ctx.param("backend") or {}, os.environ)
    workdir = ctx.cache_dir / "train" / ctx.key[:40]

    if device == "cuda" and (axolotl_required or _axolotl_available()):
        from kolmbuild.train.axolotl import train_with_axolotl

        run_cuda = train_with_axolotl(base, settings, description, shape, rows, pairs, workdir, ctx.outdir, *contexts)
        steps, final_loss, trainable = run_cuda.steps, run_cuda.final_loss, run_cuda.trainable_params
    else:
        steps, final_loss, trainable, device = _train_in_process(ctx, base, settings, description, shape, rows, pairs,
                                                                  device, workdir, contexts)

    from kolmbuild.train.export_gguf import arch_of, export_lora_gguf

    export_lora_gguf(ctx.outdir, arch_of(base), ctx.output("adapter.gguf"), name=f"{ctx.target}-lora")
    record.update(
        trained=True, base=_ship_base(ctx, base, base_spec), steps=steps, final_loss=final_loss,
        trainable_params=trainable, device=device, preference=settings.preference if pairs else "none",
        preset=spec.preset, examples=len(rows), pairs=len(pairs),
    )
    if ctx.up("recall", "index.sqlite") is not None:
        record["recall_top_k"] = _recall_spec(ctx).top_k  # the prompts carried the runtime's passages
    _write_record(ctx, record)
    return StageResult(metrics=record, summary=f"LoRA r={settings.lora.rank}: {steps} steps, final loss {final_loss}")


def _axolotl_available() -> bool:
    from kolmbuild.train.axolotl import axolotl_available

    return axolotl_available()


def _recall_spec(ctx: StageContext) -> RecallSpec:
    spec: RecallSpec = validate_section(RecallSpec, ctx.param("task.recall"), key="task.recall")
    return spec


def training_contexts(ctx: StageContext, rows: list[tuple[Any, Any]], pairs: list[tuple[Any, Any, Any]]
                      ) -> tuple[list[Any], list[Any]]:
    """The recall passages of each label row's and each pair's prompt: when the artifact ships a
    recall index, the ones the runtime adds for that input (no train/serve skew), else none."""
    index = ctx.up("recall", "index.sqlite")
    if index is None:
        return [()] * len(rows), [()] * len(pairs)
    from kolmbuild.train.context import recall_contexts

    top_k = _recall_spec(ctx).top_k
    ctx.progress.log(f"recalling the top {top_k} passages for {len(rows) + len(pairs)} training prompts")
    return recall_contexts(index, [i for i, _ in rows], top_k), recall_contexts(index, [i for i, _, _ in pairs], top_k)


def _train_in_process(
    ctx: StageContext, base: Any, settings: TrainSettings, description: str, shape: ShapeSpec,
    rows: list[tuple[Any, Any]], pairs: list[tuple[Any, Any, Any]], device: str, workdir: Path,
    contexts: tuple[list[Any], list[Any]],
) -> tuple[int, float, int, str]:
    from kolmbuild.compute.checkpoints import announcer
    from kolmbuild.train.encoding import encode_examples, encode_pairs
    from kolmbuild.train.progress import wants_lines
    from kolmbuild.train.trainer import TrainData, load_base, pick_device, train_lora

    ctx.progress.log(f"loading base {base.name} for training")
    loaded = load_base(base, pick_device(device))
    data = TrainData(
        tuple(encode_examples(loaded.tokenizer, description, shape, rows, settings.max_seq_len, contexts[0])),
        tuple(encode_pairs(loaded.tokenizer, description, shape, pairs, settings.max_seq_len, contexts[1])),
    )
    result = train_lora(loaded, data, settings, ctx.outdir, checkpoint_dir=workdir, progress=ctx.progress,
                        on_checkpoint=announcer(ctx.cache_dir),  # on a remote machine: ship each one home
                        step_lines=wants_lines())  # a remote machine's stderr is no terminal either
    return result.steps, result.final_loss, result.trainable_params, loaded.device


def _ship_base(ctx: StageContext, base: Any, spec: BaseModelSpec) -> dict[str, Any]:
    """The base record, quantizing into ``base.gguf`` when ``task.base.quantize`` asks for fewer bits
    than the base has (see :mod:`kolmbuild.models.quantize`)."""
    ref: dict[str, Any] = {"name": base.name, "sha256": base.sha256}
    if spec.revision:
        ref["revision"] = spec.revision
    if base.gguf_path is None:
        return ref
    info = read_gguf_info(base.gguf_path)
    plan = decide_quantization(info.weight_type, info.weight_bits, spec.quantize)
    ref["quantize"] = plan.ftype_name if plan.quantize else info.weight_type
    if plan.quantize:
        ctx.progress.log(plan.reason)
        quantize_gguf(base.gguf_path, ctx.output("base.gguf"), plan)
        ref["file"] = "base.gguf"
        ref["shipped_sha256"] = file_sha256(ctx.output("base.gguf"))
    return ref
