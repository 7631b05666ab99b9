"""The prompt a compiled task's model sees: one definition, shared by training and the runtime.

Chat messages (rendered with the base model's own chat template)::

    system: <task description>\n<output instruction>
    user:   [Context:\n[1] (source) text\n…\n\n]<input as text>

The output instruction follows the task's shape: one of the labels, a JSON object (with its schema
when the task gives one), or the output alone. Recall hits come first in the user turn, best first.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from kolmbuild.config.models import ShapeSpec
from kolmbuild.runtime.shape import input_text


@dataclass(frozen=True)
class ContextHit:
    text: str
    source: str
    score: float = 0.0


def output_instruction(shape: ShapeSpec) -> str:
    if shape.output == "label" and shape.labels:
        return "Answer with exactly one of these labels: " + ", ".join(shape.labels) + "."
    if shape.output == "json":
        if shape.schema_:
            return "Answer with one JSON object that follows this JSON schema: " + json.dumps(
                shape.schema_, sort_keys=True, separators=(",", ":")
            )
        return "Answer with one JSON object only."
    return "Answer with the output only."


def system_prompt(description: str, shape: ShapeSpec) -> str:
    head = description.strip() or "Transform the input as the task requires."
    return f"{head}\n{output_instruction(shape)}"


def user_prompt(value: Any, hits: Sequence[ContextHit] = ()) -> str:
    text = input_text(value)
    if not hits:
        return text
    ctx = "\n".join(f"[{i}] ({h.source}) {h.text.strip()}" for i, h in enumerate(hits, 1))
    return f"Context:\n{ctx}\n\n{text}"


def build_messages(description: str, shape: ShapeSpec, value: Any, hits: Sequence[ContextHit] = ()) -> list[dict[str, str]]:
    return [
        {"role": "system", "content": system_prompt(description, shape)},
        {"role": "user", "content": user_prompt(value, hits)},
    ]
