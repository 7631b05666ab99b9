"""The teacher's prompt for one example, and reading its answer back as an output value.

System: the task description and the output's shape (a JSON schema, a label set). Then up to
``shots`` other examples as user/assistant turns, then the example's input with the passages
recalled for it. The prompt depends only on the task, the examples and the index, so the same
example always makes the same request (and hits the same cache entry).
"""

from __future__ import annotations

import json
import re
from collections.abc import Sequence
from typing import Any

from kolmbuild.config.models import ShapeSpec, TeacherSpec
from kolmbuild.data.examples import Example
from kolmbuild.data.jsonl import loads_strict
from kolmbuild.recall.index import Hit
from kolmbuild.teacher.request import ChatRequest, Message

_FENCE = re.compile(r"^```[\w-]*\s*\n?(.*?)\n?```$", re.DOTALL)


def render(value: Any) -> str:
    """An input or output as prompt text: strings as they are, anything else as compact JSON."""
    return value if isinstance(value, str) else json.dumps(value, ensure_ascii=False, sort_keys=True)


def system_prompt(description: str, shape: ShapeSpec, custom: str | None = None) -> str:
    parts = [custom.strip()] if custom else [
        "You label examples for the task below. Reply with the output only: no explanation, "
        "no preamble, no code fences."
    ]
    if description.strip():
        parts.append(f"Task: {description.strip()}")
    if shape.output == "json":
        line = "The output is one JSON value"
        if shape.schema_:
            line += " valid against this JSON schema: " + json.dumps(shape.schema_, sort_keys=True)
        parts.append(line + ".")
    elif shape.output == "label" and shape.labels:
        parts.append("The output is exactly one of these labels: " + ", ".join(shape.labels) + ".")
    return "\n\n".join(parts)


def user_prompt(input_value: Any, hits: Sequence[Hit]) -> str:
    text = ""
    if hits:
        passages = "\n\n".join(f"[{i}] ({h.source}) {h.text}" for i, h in enumerate(hits, 1))
        text = f"Passages that may help:\n{passages}\n\n"
    return text + f"Input:\n{render(input_value)}"


SHOT_CHARS = 2000  # an example longer than this (input + output) is never a shot


def shot_pool(examples: Sequence[Example], shots: int) -> list[Example]:
    """The first ``shots + 1`` examples short enough to show (so one huge example is not copied
    into every request): enough for :func:`pick_shots` to leave the current one out. One pass."""
    out: list[Example] = []
    for e in examples:
        if len(out) > shots:
            break
        if len(render(e.input)) + len(render(e.output)) <= SHOT_CHARS:
            out.append(e)
    return out


def pick_shots(pool: Sequence[Example], current: Example, shots: int) -> list[Example]:
    """The first ``shots`` examples of ``pool`` (see :func:`shot_pool`) other than ``current``."""
    return [e for e in pool[: shots + 1] if e.id != current.id][:shots]


def build_requests(
    spec: TeacherSpec,
    system: str,
    example: Example,
    hits: Sequence[Hit],
    shots: Sequence[Example],
) -> list[ChatRequest]:
    """The k requests for one example (identical but for the sample number)."""
    turns: list[Message] = []
    for shot in shots:
        turns += [Message("user", user_prompt(shot.input, ())), Message("assistant", render(shot.output))]
    turns.append(Message("user", user_prompt(example.input, hits)))
    return [
        ChatRequest(spec.provider, spec.model, system, tuple(turns), spec.temperature, spec.max_tokens, sample)
        for sample in range(spec.k)
    ]


def parse_answer(text: str, shape: ShapeSpec) -> Any:
    """The teacher's reply as an output value. JSON outputs are parsed (a reply that does not parse
    stays a string, for the verifier to reject); fences and surrounding blank space are dropped."""
    body = text.strip()
    fenced = _FENCE.match(body)
    if fenced:
        body = fenced.group(1).strip()
    if shape.output == "json":
        try:
            return loads_strict(body)
        except (ValueError, RecursionError):  # not JSON, or NaN/Infinity (no canonical form)
            return body
    if shape.output == "label" and shape.labels:
        by_fold = {label.casefold(): label for label in shape.labels}
        return by_fold.get(body.casefold().rstrip("."), body)
    return body
