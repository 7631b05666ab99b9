"""Map a Ludwig config (what Predibase fine-tunes from) and a PEFT adapter_config.json to a task plan.

What maps: ``input_features`` / ``output_features`` (name, column, type) → the input/output columns
and the task shape; ``prompt.template`` → the columns it fills; ``model_type: llm`` + ``base_model``
→ ``base.name``; ``quantization.bits`` → ``base.quantize``; ``adapter`` (lora: r, alpha, dropout,
target_modules, use_dora/use_rslora) and ``trainer`` (epochs, learning_rate, batch_size,
train_steps) → ``train``. What kolmbuild cannot reproduce (image/audio features, nested features,
encoder ensembles, non-LoRA adapters, tree models) is refused with every offending key named;
settings that have no kolmbuild equivalent are listed in :attr:`LudwigPlan.ignored`, never dropped
silently.
"""

from __future__ import annotations

import json
import re
import string
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from kolmbuild.errors import UserInputError

INPUT_TYPES = {"text", "category", "binary", "number"}
OUTPUT_TYPES = {"text", "category", "binary"}
MEDIA_TYPES = {"image", "audio", "timeseries", "h3", "date", "vector", "set", "bag", "sequence"}
NESTED_KEYS = ("features", "input_features", "output_features", "fields", "children")
_SPECIAL_FIELD = re.compile(r"^__\w+__$")


@dataclass(frozen=True)
class Feature:
    name: str
    type: str
    column: str


@dataclass
class LudwigPlan:
    source: str  # where the plan came from (file names), for messages and the task description
    model_type: str = "llm"
    inputs: list[Feature] = field(default_factory=list)
    outputs: list[Feature] = field(default_factory=list)
    template: str | None = None
    base: str | None = None
    quantize: str | None = None
    train: dict[str, Any] = field(default_factory=dict)
    max_output_tokens: int | None = None
    ignored: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)

    def input_columns(self) -> list[str]:
        cols = template_columns(self.template) if self.template else []
        return cols or [f.column for f in self.inputs]

    def output_columns(self) -> list[str]:
        return [f.column for f in self.outputs]


def template_columns(template: str) -> list[str]:
    """Columns a Ludwig prompt template fills (``{col}``), in order; specials like ``{__sample__}`` aside."""
    cols: list[str] = []
    try:
        parsed = list(string.Formatter().parse(template))
    except ValueError:
        return cols
    for _, name, _, _ in parsed:
        if name and not _SPECIAL_FIELD.match(name) and name not in cols:
            cols.append(name)
    return cols


def load_config_file(path: Path) -> dict[str, Any]:
    """A Ludwig config: config.yaml / .yml, or a saved model's model_hyperparameters.json."""
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise UserInputError(f"{path}: cannot read: {exc.strerror}") from exc
    try:
        data = json.loads(text) if path.suffix == ".json" else yaml.safe_load(text)
    except (yaml.YAMLError, json.JSONDecodeError) as exc:
        raise UserInputError(
            f"{path}: not valid {'JSON' if path.suffix == '.json' else 'YAML'}: {exc}"
        ) from exc
    if not isinstance(data, dict):
        raise UserInputError(f"{path}: expected a mapping of Ludwig config keys at the top level")
    return data


def load_adapter_config(path: Path) -> dict[str, Any]:
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, json.JSONDecodeError) as exc:
        raise UserInputError(f"{path}: not a readable adapter_config.json: {exc}") from exc
    if not isinstance(data, dict):
        raise UserInputError(f"{path}: expected a JSON object")
    return data


def _features(
    cfg: dict[str, Any], key: str, allowed: set[str], problems: list[str], ignored: list[str], src: str
) -> list[Feature]:
    raw = cfg.get(key)
    if raw is None:
        return []
    if not isinstance(raw, list):
        problems.append(f"{src}: {key} must be a list of features")
        return []
    feats: list[Feature] = []
    for i, f in enumerate(raw):
        where = f"{key}[{i}]"
        if not isinstance(f, dict) or not f.get("name"):
            problems.append(f"{src}: {where}: a feature needs a name")
            continue
        name, ftype = str(f["name"]), str(f.get("type", "")).lower()
        where = f"{where} {name!r}"
        nested = [k for k in NESTED_KEYS if k in f]
        if nested or ftype == "nested":
            what = ", ".join(nested) or "type nested"
            problems.append(f"{src}: {where}: nested features ({what}) are not supported")
            continue
        enc = f.get("encoder")
        if isinstance(enc, list) or (
            isinstance(enc, dict) and (enc.get("type") == "ensemble" or "encoders" in enc)
        ):
            problems.append(f"{src}: {where}: encoder ensembles are not supported")
            continue
        if ftype not in allowed:
            kind = f"{ftype} features" if ftype else "features without a type"
            problems.append(
                f"{src}: {where}: {kind} are not supported (supported: {', '.join(sorted(allowed))})"
            )
            continue
        ignored.extend(f"{where}.{k}" for k in ("encoder", "decoder", "preprocessing", "loss") if k in f)
        feats.append(Feature(name, ftype, str(f.get("column") or name)))
    return feats


_ADAPTER_KEYS = {
    "type",
    "r",
    "alpha",
    "dropout",
    "target_modules",
    "use_dora",
    "use_rslora",
    "pretrained_adapter_weights",
}
_TRAINER_KEYS = {"type", "epochs", "learning_rate", "batch_size", "train_steps"}
_TOP_KEYS = {
    "model_type",
    "base_model",
    "input_features",
    "output_features",
    "prompt",
    "adapter",
    "trainer",
    "quantization",
    "generation",
    "ludwig_version",
    "backend",
    "preprocessing",
    "defaults",
    "hyperopt",
}


def _number(value: Any) -> float | None:
    return float(value) if isinstance(value, int | float) and not isinstance(value, bool) else None


def plan_from_ludwig(cfg: dict[str, Any], *, source: str) -> LudwigPlan:
    """Validate what kolmbuild can take from a Ludwig config; raise one error naming every unsupported key."""
    problems: list[str] = []
    plan = LudwigPlan(source=source)
    plan.model_type = str(cfg.get("model_type", "ecd")).lower()
    if plan.model_type not in ("llm", "ecd"):
        problems.append(f"{source}: model_type {plan.model_type!r} is not supported (supported: llm, ecd)")
    if plan.model_type == "ecd":
        plan.notes.append(
            "model_type ecd: kolmbuild fine-tunes a base LLM with LoRA instead of Ludwig's encoders"
        )
    combiner = cfg.get("combiner")
    if isinstance(combiner, dict) and str(combiner.get("type", "concat")) not in ("concat",):
        problems.append(
            f"{source}: combiner type {combiner.get('type')!r} (an encoder ensemble) is not supported"
        )
    elif combiner is not None:
        plan.ignored.append("combiner")
    plan.inputs = _features(cfg, "input_features", INPUT_TYPES, problems, plan.ignored, source)
    plan.outputs = _features(cfg, "output_features", OUTPUT_TYPES, problems, plan.ignored, source)
    if "input_features" in cfg and not plan.inputs and not problems:
        problems.append(f"{source}: input_features is empty")
    if "output_features" in cfg and not plan.outputs and not problems:
        problems.append(f"{source}: output_features is empty")

    prompt = cfg.get("prompt")
    if isinstance(prompt, dict):
        if prompt.get("template"):
            plan.template = str(prompt["template"])
        plan.ignored.extend(f"prompt.{k}" for k in prompt if k != "template")
    elif prompt is not None:
        problems.append(f"{source}: prompt must be a mapping (with a template)")

    if cfg.get("base_model"):
        plan.base = str(cfg["base_model"])
    quant = cfg.get("quantization")
    if isinstance(quant, dict) and quant.get("bits") is not None:
        bits = quant.get("bits")
        if bits in (4, 8):
            plan.quantize = f"int{bits}"
        else:
            problems.append(f"{source}: quantization.bits {bits!r} is not supported (supported: 4, 8)")

    adapter = cfg.get("adapter")
    if isinstance(adapter, dict):
        atype = str(adapter.get("type", "lora")).lower()
        if atype != "lora":
            problems.append(f"{source}: adapter type {atype!r} is not supported (supported: lora)")
        _lora_settings(plan.train, adapter, rank_key="r", alpha_key="alpha", dropout_key="dropout")
        plan.ignored.extend(f"adapter.{k}" for k in adapter if k not in _ADAPTER_KEYS)
    elif adapter is None and plan.model_type == "llm":
        plan.notes.append(
            "no adapter in the config (full fine-tune): kolmbuild trains a LoRA adapter instead"
        )

    trainer = cfg.get("trainer")
    if isinstance(trainer, dict):
        ttype = str(trainer.get("type", "finetune")).lower()
        if ttype == "none":
            plan.train["enabled"] = "never"
            plan.notes.append("trainer.type none (no fine-tuning): train.enabled set to never")
        epochs = _number(trainer.get("epochs"))
        if epochs is not None and epochs > 0:
            plan.train["epochs"] = epochs
        lr = _number(trainer.get("learning_rate"))
        if lr is not None and lr > 0:
            plan.train["lr"] = lr
        elif trainer.get("learning_rate") is not None:
            plan.ignored.append(f"trainer.learning_rate={trainer['learning_rate']!r}")
        bs = trainer.get("batch_size")
        if isinstance(bs, int) and not isinstance(bs, bool) and bs >= 1:
            plan.train["batch_size"] = bs
        elif bs is not None:
            plan.ignored.append(f"trainer.batch_size={bs!r}")
        steps = trainer.get("train_steps")
        if isinstance(steps, int) and steps >= 1:
            plan.train["max_steps"] = steps
        plan.ignored.extend(f"trainer.{k}" for k in trainer if k not in _TRAINER_KEYS)

    gen = cfg.get("generation")
    if isinstance(gen, dict) and isinstance(gen.get("max_new_tokens"), int) and gen["max_new_tokens"] >= 1:
        plan.max_output_tokens = int(gen["max_new_tokens"])
    plan.ignored.extend(k for k in cfg if k not in _TOP_KEYS and k != "combiner")
    for k in ("preprocessing", "defaults", "hyperopt", "backend"):
        if k in cfg:
            plan.ignored.append(k)
    if problems:
        raise UserInputError(
            "the Ludwig config uses features kolmbuild does not support:\n  " + "\n  ".join(problems),
            hint="remove them from the config (kolmbuild tasks take text/category/binary/number columns)",
        )
    return plan


def _lora_settings(
    train: dict[str, Any], src: dict[str, Any], *, rank_key: str, alpha_key: str, dropout_key: str
) -> None:
    r = src.get(rank_key)
    if isinstance(r, int) and not isinstance(r, bool) and r >= 1:
        train["rank"] = r
    alpha = src.get(alpha_key)
    if isinstance(alpha, int | float) and not isinstance(alpha, bool) and alpha >= 1:
        train["alpha"] = int(alpha)
    dropout = _number(src.get(dropout_key))
    if dropout is not None and 0 <= dropout < 1:
        train["dropout"] = dropout
    mods = src.get("target_modules")
    if isinstance(mods, list) and mods and all(isinstance(m, str) for m in mods):
        train["target_modules"] = list(mods)
    if src.get("use_dora"):
        train["preset"] = "dora"
    elif src.get("use_rslora"):
        train["preset"] = "rslora"


def merge_adapter_config(plan: LudwigPlan, adapter_cfg: dict[str, Any], *, source: str) -> None:
    """A PEFT adapter_config.json names what was actually trained: its base and rank win (with a note)."""
    peft_type = str(adapter_cfg.get("peft_type", "LORA")).upper()
    if peft_type != "LORA":
        raise UserInputError(f"{source}: peft_type {peft_type!r} is not supported (supported: LORA)")
    before = dict(plan.train)
    _lora_settings(plan.train, adapter_cfg, rank_key="r", alpha_key="lora_alpha", dropout_key="lora_dropout")
    for key in ("rank", "alpha"):
        if key in before and before[key] != plan.train.get(key):
            plan.notes.append(
                f"{key}: config says {before[key]}, {source} says {plan.train[key]} (using the adapter's)"
            )
    base = adapter_cfg.get("base_model_name_or_path")
    if isinstance(base, str) and base:
        if plan.base and plan.base != base:
            plan.notes.append(
                f"base: config says {plan.base!r}, {source} says {base!r} (using the adapter's)"
            )
        plan.base = base
