"""Read what the K-score needs from a task block: the model profile and the teacher's price.

The task block is a ``TaskSpec`` dump: the evaluate stage's ``task`` config, or a manifest's
``task`` when ``kolmbuild eval`` re-scores an artifact. Sections are validated with the task's own
pydantic models, so a malformed manifest is an error naming the key, not a crash.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any, TypeVar

from pydantic import BaseModel

from kolmbuild.config.models import GatesSpec, RecallSpec, ShapeSpec, TeacherSpec
from kolmbuild.config.sections import section_of
from kolmbuild.errors import ConfigError, UserInputError
from kolmbuild.evaluate.estimate import ModelProfile, TeacherPrice, recall_context_tokens, teacher_price

M = TypeVar("M", bound=BaseModel)


def section(block: Mapping[str, Any] | None, key: str, model: type[M], *, where: str) -> M:
    """``block[key]`` validated as ``model`` (missing: the model's defaults)."""
    return section_of(block, key, model, where=where, error=UserInputError)


def gates_of(raw: Mapping[str, Any] | None, *, where: str) -> GatesSpec:
    return section({"gates": raw}, "gates", GatesSpec, where=where)


def load_gates(spec: str, root: Path) -> GatesSpec:
    """A gate by ``conf/gates`` name (the project's at ``root``, then the built-in ones) or a YAML file path."""
    import yaml

    from kolmbuild.resources import builtin_dir

    candidates = [Path(spec)] if spec.endswith((".yaml", ".yml")) else [
        root / "conf" / "gates" / f"{spec}.yaml", builtin_dir("conf") / "gates" / f"{spec}.yaml"
    ]  # fmt: skip
    path = next((p for p in candidates if p.is_file()), None)
    if path is None:
        raise ConfigError(f"--gates {spec}: no such gate (looked in {', '.join(str(p) for p in candidates)})")
    try:
        raw = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
    except UnicodeDecodeError as exc:
        raise ConfigError(f"{path}: not UTF-8 text (byte {exc.start}: {exc.reason})") from None
    except yaml.YAMLError as exc:
        raise ConfigError(f"{path}: invalid YAML: {exc}") from exc
    if not isinstance(raw, dict):
        raise ConfigError(f"{path}: a gate must be a mapping (K_min, p50_ms_max, size_mb_max)")
    return gates_of(raw, where=str(path))


def model_profile(task: Mapping[str, Any], *, weight_bytes: int, has_index: bool, where: str = "task") -> ModelProfile:
    shape = section(task, "shape", ShapeSpec, where=where)
    recall = section(task, "recall", RecallSpec, where=where)
    context = recall_context_tokens(recall.top_k, recall.chunk_chars) if has_index and weight_bytes else 0
    return ModelProfile(
        weight_bytes=weight_bytes,
        context_tokens=context,
        recall=has_index and weight_bytes > 0,
        max_output_tokens=shape.max_output_tokens,
    )


def teacher_of(task: Mapping[str, Any], *, has_index: bool, where: str = "task") -> TeacherPrice:
    context = 0
    if has_index:  # distill grounds each teacher prompt on the recalled chunks
        recall = section(task, "recall", RecallSpec, where=where)
        context = recall_context_tokens(recall.top_k, recall.chunk_chars)
    if not task.get("teacher"):
        return teacher_price(None, None, context_tokens=context)
    spec = section(task, "teacher", TeacherSpec, where=where)
    return teacher_price(
        spec.price_in_per_mtok, spec.price_out_per_mtok, system_prompt=spec.system_prompt, context_tokens=context
    )


def file_sizes(files: Mapping[str, Path | None]) -> dict[str, int]:
    """Byte sizes of the present files, by name."""
    return {name: Path(p).stat().st_size for name, p in sorted(files.items()) if p is not None}
