"""Token sequences for training: chat template applied, loss only on the answer's tokens.

The prompt turns are the runtime's own (:func:`kolmbuild.runtime.prompt.build_messages`, with the
recall passages the runtime adds: :mod:`kolmbuild.train.context`), and an answer is rendered as
the runtime decodes it (:func:`kolmbuild.runtime.shape.input_text`: text as itself, JSON as
sorted-key JSON), so the model is trained on exactly what it will be asked.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Protocol

from kolmbuild.config.models import ShapeSpec
from kolmbuild.errors import UserInputError
from kolmbuild.runtime.prompt import ContextHit, build_messages
from kolmbuild.runtime.shape import input_text

IGNORE = -100  # label value that cross-entropy skips


class ChatTokenizer(Protocol):
    chat_template: str | None

    def apply_chat_template(self, conversation: Any, **kwargs: Any) -> Any: ...


@dataclass(frozen=True)
class Encoded:
    """One training sequence. ``labels`` equals ``input_ids`` on the answer and IGNORE elsewhere."""

    input_ids: tuple[int, ...]
    labels: tuple[int, ...]

    @property
    def answer_tokens(self) -> int:
        return sum(1 for x in self.labels if x != IGNORE)


@dataclass(frozen=True)
class EncodedPair:
    chosen: Encoded
    rejected: Encoded


def _ids(tokenizer: ChatTokenizer, messages: list[dict[str, str]], *, generation_prompt: bool) -> list[int]:
    out = tokenizer.apply_chat_template(messages, tokenize=True, add_generation_prompt=generation_prompt)
    if isinstance(out, dict) or hasattr(out, "keys"):  # BatchEncoding in newer transformers
        out = out["input_ids"]
    return [int(x) for x in out]


def fit(prompt: list[int], answer: list[int], max_len: int) -> tuple[list[int], list[int]]:
    """Cut a (prompt, answer) pair to ``max_len`` tokens: the answer keeps at least half of the
    budget (its end is dropped first), then the prompt loses its start."""
    if len(prompt) + len(answer) <= max_len:
        return prompt, answer
    answer = answer[: max(max_len - len(prompt), max_len // 2)]
    prompt = prompt[len(prompt) - (max_len - len(answer)) :] if max_len > len(answer) else []
    return prompt, answer


def encode_example(
    tokenizer: ChatTokenizer, description: str, shape: ShapeSpec, input_value: Any, output_value: Any, max_len: int,
    context: Sequence[ContextHit] = (),
) -> Encoded:
    """The chat-templated conversation (system, user with ``context`` first, assistant), masked so
    that only the assistant's tokens (answer plus the end-of-turn marker) carry loss."""
    if not tokenizer.chat_template:
        raise UserInputError("task.base.name: the base model's tokenizer has no chat template; kolmbuild trains chat models")
    prompt_msgs = build_messages(description, shape, input_value, context)
    prompt = _ids(tokenizer, prompt_msgs, generation_prompt=True)
    full = _ids(tokenizer, [*prompt_msgs, {"role": "assistant", "content": input_text(output_value)}], generation_prompt=False)
    if full[: len(prompt)] != prompt:
        raise UserInputError(
            "task.base.name: the base model's chat template does not render the prompt as a prefix of the "
            "full conversation, so the answer's tokens cannot be isolated"
        )
    prompt, answer = fit(prompt, full[len(prompt) :], max_len)
    return Encoded(tuple(prompt + answer), tuple([IGNORE] * len(prompt) + answer))


def _contexts(contexts: Sequence[Sequence[ContextHit]] | None, n: int) -> Sequence[Sequence[ContextHit]]:
    if contexts is None:
        return [()] * n
    if len(contexts) != n:
        raise ValueError(f"{len(contexts)} recall contexts for {n} rows")
    return contexts


def encode_examples(
    tokenizer: ChatTokenizer, description: str, shape: ShapeSpec, rows: Sequence[tuple[Any, Any]], max_len: int,
    contexts: Sequence[Sequence[ContextHit]] | None = None,
) -> list[Encoded]:
    """``contexts[i]``: the recall passages of row i's prompt (none when not given)."""
    ctx = _contexts(contexts, len(rows))
    return [encode_example(tokenizer, description, shape, i, o, max_len, c) for (i, o), c in zip(rows, ctx, strict=True)]


def encode_pairs(
    tokenizer: ChatTokenizer, description: str, shape: ShapeSpec, rows: Sequence[tuple[Any, Any, Any]], max_len: int,
    contexts: Sequence[Sequence[ContextHit]] | None = None,
) -> list[EncodedPair]:
    ctx = _contexts(contexts, len(rows))
    return [
        EncodedPair(
            encode_example(tokenizer, description, shape, i, c, max_len, hits),
            encode_example(tokenizer, description, shape, i, r, max_len, hits),
        )
        for (i, c, r), hits in zip(rows, ctx, strict=True)
    ]
