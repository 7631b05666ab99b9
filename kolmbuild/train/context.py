"""The recall passages a training prompt carries: the ones the runtime adds for the same input.

When an artifact ships a recall index, the runtime puts the ``top_k`` passages the index returns
for an input into the user turn (:func:`kolmbuild.runtime.prompt.build_messages`). Training on
prompts without them would teach the model a prompt it never sees (train/serve skew), so the
train stage asks the same index the same question: one ``Index.search`` per input, on the input
as the runtime renders it (:func:`kolmbuild.runtime.shape.input_text`), with the task's
``recall.top_k``.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

from kolmbuild.recall import open_index
from kolmbuild.runtime.prompt import ContextHit
from kolmbuild.runtime.shape import input_text

Context = tuple[ContextHit, ...]


def recall_contexts(index_path: Path | None, inputs: Sequence[Any], top_k: int) -> list[Context]:
    """One context per input (empty ones without an index): what the runtime would recall."""
    if index_path is None:
        return [() for _ in inputs]
    contexts: dict[str, Context] = {}  # an input that recurs is searched once
    with open_index(index_path) as index:
        for value in inputs:
            text = input_text(value)
            if text not in contexts:
                contexts[text] = tuple(ContextHit(h.text, h.source, float(h.score)) for h in index.search(text, top_k))
        return [contexts[input_text(v)] for v in inputs]
