"""The prompt format shared by training and the runtime: chat messages, values rendered as text.

The runtime must build the same messages at inference (``messages_for``) and let the model's
own chat template (stored in the GGUF) render them; the answer is the assistant turn.
"""

from __future__ import annotations

from typing import Any

from kolmbuild.hashing.jcs import canonical_json


def render_value(value: Any) -> str:
    """A string as itself; anything else (JSON inputs/outputs) as RFC 8785 canonical JSON."""
    if isinstance(value, str):
        return value
    return canonical_json(value).decode("utf-8")


def messages_for(description: str, input_value: Any) -> list[dict[str, str]]:
    """The chat turns that precede the answer: the task description as the system turn (when set)
    and the rendered input as the user turn."""
    messages: list[dict[str, str]] = []
    if description.strip():
        messages.append({"role": "system", "content": description.strip()})
    messages.append({"role": "user", "content": render_value(input_value)})
    return messages
