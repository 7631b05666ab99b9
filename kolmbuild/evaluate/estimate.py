"""The reference-machine model: deterministic per-call latency and cost estimates.

A build's metrics must be a function of its inputs, so the K-score cannot use wall-clock latency
(it would differ run to run and break byte-identical artifacts). Instead each answered case is
priced by a fixed-work model of a reference CPU, from quantities that *are* functions of the
inputs: the route the runtime took, the lengths of the input and the output, the bytes of model
weights a decode step streams, and the recall context the prompt carries. docs/k-score.md
documents every constant below with worked examples. Measured wall-clock latencies are still
shown to the user (build log, ``kolmbuild eval``), never stored in the artifact.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass
from typing import Any

MODEL_ID = "ref-cpu-1"

CHARS_PER_TOKEN = 4  # the usual rule of thumb for English BPE vocabularies
RECIPE_MS = 0.01  # one recipe call: ~1 µs of matching plus Python call overhead, rounded up
MODEL_OVERHEAD_MS = 2.0  # tokenize, sample set-up, detokenize
PROMPT_TEMPLATE_TOKENS = 32  # chat template and instruction framing around the input
BANDWIDTH_BYTES_PER_MS = 10e9 / 1000.0  # decode streams every weight once per token: 10 GB/s
PREFILL_SPEEDUP = 8.0  # prompt tokens are batched: a prefill token costs 1/8 of a decode token
RECALL_MS = 20.0  # embed the query with MiniLM-L6 and search the index

POWER_W = 15.0  # the reference CPU's package power under load
USD_PER_KWH = 0.15
USD_PER_MS = POWER_W * 1e-3 / 3.6e6 * USD_PER_KWH  # joules per ms -> kWh -> USD

# A task without a priced teacher is compared with a small hosted model's list price (USD per 1M).
DEFAULT_TEACHER_PRICE_IN = 0.15
DEFAULT_TEACHER_PRICE_OUT = 0.60

ROUTES_ANSWERING = ("recipe", "model")


def tokens(value: Any) -> int:
    """Estimated token count of a text (or of a JSON value's compact serialization); 0 for None."""
    if value is None:
        return 0
    text = value if isinstance(value, str) else json.dumps(value, ensure_ascii=False, separators=(",", ":"))
    return math.ceil(len(text) / CHARS_PER_TOKEN)


@dataclass(frozen=True)
class ModelProfile:
    """What a model call costs on the reference machine.

    ``weight_bytes``: base GGUF plus adapter bytes (0 when the artifact has no model);
    ``context_tokens``: recalled chunks added to each prompt (0 without a corpus index);
    ``max_output_tokens``: assumed when a model call produced no output.
    """

    weight_bytes: int = 0
    context_tokens: int = 0
    recall: bool = False
    max_output_tokens: int = 256

    @property
    def decode_ms_per_token(self) -> float:
        return self.weight_bytes / BANDWIDTH_BYTES_PER_MS

    @property
    def prefill_ms_per_token(self) -> float:
        return self.decode_ms_per_token / PREFILL_SPEEDUP


def recall_context_tokens(top_k: int, chunk_chars: int) -> int:
    """Tokens the recalled chunks add to a prompt (top-k chunks of at most ``chunk_chars``)."""
    return math.ceil(top_k * chunk_chars / CHARS_PER_TOKEN)


def call_ms(route: str, input: Any, output: Any, model: ModelProfile) -> float:
    """Estimated milliseconds of one call on the reference machine.

    Every call first tries the recipes (``RECIPE_MS``); a model call adds its overhead, the
    recall lookup when the artifact has an index, the prefill of template + context + input and
    one decode step per output token (plus end-of-sequence).
    """
    ms = RECIPE_MS
    if route == "model":
        prompt = PROMPT_TEMPLATE_TOKENS + model.context_tokens + tokens(input)
        out = tokens(output) + 1 if output is not None else model.max_output_tokens
        ms += MODEL_OVERHEAD_MS + (RECALL_MS if model.recall else 0.0)
        ms += prompt * model.prefill_ms_per_token + out * model.decode_ms_per_token
    return ms


def local_call_usd(ms: float) -> float:
    """Energy cost of ``ms`` on the reference CPU: local inference is close to free."""
    return ms * USD_PER_MS


@dataclass(frozen=True)
class TeacherPrice:
    """The teacher's price per 1M tokens, and where it came from ("task" or "default")."""

    price_in: float = DEFAULT_TEACHER_PRICE_IN
    price_out: float = DEFAULT_TEACHER_PRICE_OUT
    source: str = "default"
    system_tokens: int = 0
    context_tokens: int = 0

    def call_usd(self, input: Any, expected: Any) -> float:
        """What the teacher would charge to answer this case once (prompt in, reference out)."""
        t_in = self.system_tokens + self.context_tokens + tokens(input)
        t_out = tokens(expected)
        return (t_in * self.price_in + t_out * self.price_out) / 1e6


def teacher_price(
    price_in: float | None, price_out: float | None, *, system_prompt: str | None = None, context_tokens: int = 0
) -> TeacherPrice:
    """The task teacher's price when it has one, else the documented default (a free or missing
    teacher would make every local answer look infinitely expensive)."""
    system = tokens(system_prompt) if system_prompt else 0
    if price_in is not None and price_out is not None and (price_in > 0 or price_out > 0):
        return TeacherPrice(price_in, price_out, "task", system, context_tokens)
    return TeacherPrice(system_tokens=system, context_tokens=context_tokens)
