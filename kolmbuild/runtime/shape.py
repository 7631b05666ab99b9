"""The task's input/output shape as the runtime needs it: parse inputs, decode model outputs."""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from kolmbuild.config.models import RecallSpec, ShapeSpec
from kolmbuild.config.sections import section_of
from kolmbuild.errors import ArtifactError, UserInputError


@dataclass(frozen=True)
class TaskView:
    """What the runtime reads from a task block (the manifest's ``task``, a TaskSpec dump)."""

    name: str
    description: str
    shape: ShapeSpec
    top_k: int
    drafts: bool
    output_regex: str | None = None


def _section(task: Mapping[str, Any], key: str, model: type[Any], where: str) -> Any:
    return section_of(task, key, model, where=where, prefix="task.", error=ArtifactError)


def task_view(task: Mapping[str, Any], *, where: str = "task") -> TaskView:
    """Validate the parts of a task block the runtime uses; errors name ``where`` and the key."""
    if not isinstance(task, Mapping):
        raise ArtifactError(f"{where}: task must be a JSON object")
    shape = _section(task, "shape", ShapeSpec, where)
    recall = _section(task, "recall", RecallSpec, where)
    recipes = task.get("recipes") or {}
    drafts = bool(recipes.get("drafts", True)) if isinstance(recipes, Mapping) else True
    regex = task.get("output_regex")
    if regex is not None and not isinstance(regex, str):
        raise ArtifactError(f"{where}: task.output_regex must be a string")
    return TaskView(
        name=str(task.get("name") or "task"),
        description=str(task.get("description") or ""),
        shape=shape,
        top_k=recall.top_k,
        drafts=drafts,
        output_regex=regex,
    )


def parse_input(raw: str, shape: ShapeSpec, *, where: str = "input") -> Any:
    """A command-line input string as the task expects it (JSON text for ``input: json``)."""
    if shape.input != "json":
        return raw
    try:
        return json.loads(raw)
    except json.JSONDecodeError as exc:
        raise UserInputError(f"{where}: the task takes JSON input, but this is not JSON: {exc.msg}") from exc


def input_text(value: Any) -> str:
    """The text the model (and the recall index) sees for an input."""
    if isinstance(value, str):
        return value
    return json.dumps(value, ensure_ascii=False, sort_keys=True)


def decode_output(text: str, shape: ShapeSpec) -> Any:
    """A model's raw text as the task's output: parsed JSON, a label, or the text itself.

    Text that does not decode (a truncated JSON object, a label outside the list) is returned
    stripped as it is, so the verifier (not the runtime) decides whether it passes.
    """
    out = text.strip()
    if shape.output == "json":
        try:
            return json.loads(out)
        except json.JSONDecodeError:
            return out
    return out
