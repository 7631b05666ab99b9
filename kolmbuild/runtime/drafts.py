"""The recipe pack's deterministic-token table as a llama.cpp speculative draft model.

llama-cpp-python calls the draft with every token so far (prompt + generated) after each
accepted step; the draft decodes the generated part, asks ``DraftTable.propose(text_so_far)`` for
the continuation every accepted output shares at that point (JSON keys, braces, fixed phrasing),
and returns it as tokens. The model verifies the proposal in one batch: a right guess costs one
forward pass for several tokens, a wrong one a little extra work. The model still picks every
token, but llama.cpp's batched evaluation sums floats in another order than one token at a time,
so a near-tie can resolve differently from plain greedy decoding (docs/bench/tps.json counts how
often). The Llama must be created with ``logits_all=True``, which also makes prompt evaluation
compute the output layer for every prompt token.
"""

from __future__ import annotations

import threading
from typing import Any, Protocol

import numpy as np
import numpy.typing as npt
from llama_cpp.llama_speculative import LlamaDraftModel

_EMPTY = np.array([], dtype=np.intc)


class DraftSource(Protocol):
    def propose(self, text_so_far: str) -> str: ...


class RecipeDraft(LlamaDraftModel):
    """Per-generation state (the table, where the prompt ends) is set by :meth:`begin` under the
    runner's lock; llama.cpp calls the instance from that same thread."""

    def __init__(self, max_tokens: int = 16) -> None:
        self.max_tokens = max_tokens
        self._llm: Any = None
        self._table: DraftSource | None = None
        self._prompt_len = 0
        self._local = threading.Lock()
        self.proposed_total = 0  # tokens proposed over this draft's life (stats, tests)

    def bind(self, llm: Any) -> None:
        self._llm = llm

    def begin(self, table: DraftSource | None, prompt_len: int) -> None:
        with self._local:
            self._table = table
            self._prompt_len = prompt_len

    def __call__(self, input_ids: npt.NDArray[np.intc], /, **kwargs: Any) -> npt.NDArray[np.intc]:
        table = self._table
        if table is None or self._llm is None or len(input_ids) <= self._prompt_len:
            return _EMPTY
        generated = input_ids[self._prompt_len :].tolist()
        text = self._llm.detokenize(generated).decode("utf-8", errors="ignore")
        proposal = table.propose(text)
        if not proposal:
            return _EMPTY
        tokens = self._continuation(generated, text, proposal)[: self.max_tokens]
        self.proposed_total += len(tokens)
        return np.asarray(tokens, dtype=np.intc) if tokens else _EMPTY

    def _continuation(self, generated: list[int], text: str, proposal: str) -> list[int]:
        """The proposal as the tokens the model would write next.

        BPE merges across the boundary ('": "' + 'S' may be one token fewer than apart), so the
        text written so far plus the proposal is tokenized together over a short window; when that
        reproduces the last generated tokens, what follows them is the draft. Otherwise the proposal
        is tokenized alone."""
        tokenize = self._llm.tokenize
        window = generated[-4:]
        tail = self._llm.detokenize(window).decode("utf-8", errors="ignore")
        if tail and text.endswith(tail):
            joint = tokenize((tail + proposal).encode("utf-8"), add_bos=False, special=False)
            if joint[: len(window)] == window:
                return list(joint[len(window) :])
        return list(tokenize(proposal.encode("utf-8"), add_bos=False, special=False))
