"""The teacher's estimated cost for a quote, before any call is made.

An upper estimate per request: the system prompt, the few-shot turns and the input at
:data:`INPUT_CHARS` characters each, the recalled passages (``top_k`` chunks of ``chunk_chars``)
when the task has a corpus, one token per 3 characters; and the teacher's ``max_tokens`` of
output, the same worst case the build's budget reserves before each call, so a build the quote
says fits does not stop short of its budget. Times ``k`` samples per example.
"""

from __future__ import annotations

import math

from kolmbuild.config.models import TaskSpec
from kolmbuild.teacher.budget import Prices
from kolmbuild.teacher.prompt import system_prompt

INPUT_CHARS = 400
SHOTS = 2
CHARS_PER_TOKEN = 3


def request_tokens(task: TaskSpec) -> tuple[int, int]:
    """(input tokens, output tokens) estimated for one teacher request of ``task``."""
    assert task.teacher is not None
    chars = len(system_prompt(task.description, task.shape, task.teacher.system_prompt))
    chars += (2 * SHOTS + 1) * INPUT_CHARS
    if task.corpus:
        chars += task.recall.top_k * task.recall.chunk_chars
    tokens_in = math.ceil(chars / CHARS_PER_TOKEN) + 8 * (2 * SHOTS + 2)
    tokens_out = task.teacher.max_tokens
    return tokens_in, tokens_out


def estimate_cost(task: TaskSpec, n_examples: int) -> float:
    """USD the teacher is expected to cost for ``n_examples`` examples (0.0 with no teacher)."""
    if task.teacher is None or n_examples <= 0:
        return 0.0
    tokens_in, tokens_out = request_tokens(task)
    prices = Prices(task.teacher.price_in_per_mtok, task.teacher.price_out_per_mtok)
    return n_examples * task.teacher.k * prices.cost(tokens_in, tokens_out)
