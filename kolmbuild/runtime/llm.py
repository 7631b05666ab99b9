"""The model route: llama-cpp-python with a base GGUF (+ a GGUF LoRA adapter), one at a time.

A llama context is not thread-safe, so one :class:`LlamaRunner` serializes generations with a
lock (a server's threads queue here). Prompts are rendered with the GGUF's own chat template and
tokenized here, so the recipe draft knows where the prompt ends.
"""

from __future__ import annotations

import codecs
import contextlib
import os
import threading
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from kolmbuild.errors import ArtifactError
from kolmbuild.runtime.constrain import NONE, Constraint, to_llama_grammar
from kolmbuild.runtime.parts import RuntimeOptions
from kolmbuild.runtime.types import Completion, Delta

CHATML = (
    "{% for message in messages %}{{'<|im_start|>' + message['role'] + '\n' + message['content'] + '<|im_end|>' + '\n'}}"
    "{% endfor %}{% if add_generation_prompt %}{{ '<|im_start|>assistant\n' }}{% endif %}"
)


@dataclass(frozen=True)
class GenRequest:
    """One generation. ``max_tokens`` None: up to the context; ``draft`` a DraftTable or None."""

    max_tokens: int | None = 256
    temperature: float = 0.0
    top_p: float = 0.95
    top_k: int = 40
    stop: tuple[str, ...] = ()
    seed: int | None = None
    constraint: Constraint = NONE
    draft: Any = None
    extra: dict[str, Any] = field(default_factory=dict)


@contextlib.contextmanager
def _quiet_stderr() -> Iterator[None]:
    """llama.cpp logs model loading on fd 2 even with verbose=False; keep the CLI's stderr clean."""
    try:
        saved = os.dup(2)
    except OSError:
        yield
        return
    devnull = os.open(os.devnull, os.O_WRONLY)
    try:
        os.dup2(devnull, 2)
        yield
    finally:
        os.dup2(saved, 2)
        os.close(saved)
        os.close(devnull)


class LlamaRunner:
    def __init__(self, base: Path, adapter: Path | None, options: RuntimeOptions, *, with_drafts: bool) -> None:
        from llama_cpp import Llama
        from llama_cpp.llama_chat_format import Jinja2ChatFormatter

        from kolmbuild.runtime.drafts import RecipeDraft

        self.base = base
        self.adapter = adapter
        self.draft = RecipeDraft(options.max_draft_tokens) if with_drafts else None
        kwargs: dict[str, Any] = {
            "model_path": str(base),
            "n_ctx": options.n_ctx,
            "n_batch": options.n_batch,
            "seed": options.seed,
            "verbose": False,
        }
        if options.n_threads:
            kwargs["n_threads"] = kwargs["n_threads_batch"] = options.n_threads
        if adapter is not None:
            from kolmbuild.runtime.adapter_check import check_adapter

            check_adapter(adapter, base)  # llama.cpp may crash on a malformed adapter instead of raising
            kwargs["lora_path"] = str(adapter)
        if self.draft is not None:
            kwargs["draft_model"] = self.draft
            kwargs["logits_all"] = True  # drafts need logits at every position
        try:
            with _quiet_stderr():
                self.llm = Llama(**kwargs)
        except (ValueError, RuntimeError) as exc:
            what = f"{base}" + (f" with adapter {adapter}" if adapter else "")
            raise ArtifactError(f"llama.cpp cannot load {what}: {exc}") from exc
        if self.draft is not None:
            self.draft.bind(self.llm)
        self._lock = threading.Lock()
        meta = self.llm.metadata
        template = meta.get("tokenizer.chat_template") or CHATML
        model = self.llm._model
        self.eos_text = model.token_get_text(self.llm.token_eos()) if self.llm.token_eos() != -1 else ""
        bos_text = model.token_get_text(self.llm.token_bos()) if self.llm.token_bos() != -1 else ""
        self._formatter = Jinja2ChatFormatter(template=template, eos_token=self.eos_text, bos_token=bos_text)
        self.model_name = Path(base).name

    # prompts -----------------------------------------------------------------------------------
    def render(self, messages: Sequence[dict[str, str]]) -> str:
        chat: list[Any] = list(messages)  # llama-cpp types each role's message dict apart
        return str(self._formatter(messages=chat).prompt)

    def tokenize(self, text: str) -> list[int]:
        return list(self.llm.tokenize(text.encode("utf-8"), add_bos=True, special=True))

    def chat_tokens(self, messages: Sequence[dict[str, str]]) -> list[int]:
        return self.tokenize(self.render(messages))

    # generation -------------------------------------------------------------------------------
    def _max_tokens(self, prompt_len: int, req: GenRequest) -> int:
        room = self.llm.n_ctx() - prompt_len
        if room <= 0:
            raise ArtifactError(f"the prompt is {prompt_len} tokens; the context holds {self.llm.n_ctx()}")
        return room if req.max_tokens is None else min(req.max_tokens, room)

    def stream(self, prompt: Sequence[int], req: GenRequest, *, logprobs: bool = False) -> Iterator[Delta]:
        """Generate from prompt tokens, one :class:`Delta` per token; holds the lock until the
        generator is exhausted or closed (close it when a client goes away)."""
        with self._lock:
            if self.draft is not None:
                self.draft.begin(req.draft, len(prompt))
            try:
                yield from self._decode(prompt, req, logprobs)
            finally:
                if self.draft is not None:
                    self.draft.begin(None, 0)

    def _decode(self, prompt: Sequence[int], req: GenRequest, logprobs: bool) -> Iterator[Delta]:
        import numpy as np
        from llama_cpp import LogitsProcessorList

        llm = self.llm
        budget = self._max_tokens(len(prompt), req)
        stops = [s for s in req.stop if s]
        last_scores: list[Any] = [None]

        def capture(_ids: Any, scores: Any) -> Any:
            last_scores[0] = scores
            return scores

        if req.seed is not None:
            llm.set_seed(req.seed)
        decoder = codecs.getincrementaldecoder("utf-8")(errors="replace")
        pending = ""
        n = 0
        gen = llm.generate(
            list(prompt),
            top_k=req.top_k,
            top_p=req.top_p,
            min_p=0.05,
            temp=req.temperature,
            repeat_penalty=1.0,
            grammar=to_llama_grammar(req.constraint),
            logits_processor=LogitsProcessorList([capture]) if logprobs else None,
        )
        try:
            for tok in gen:
                if llm._model.token_is_eog(tok) if hasattr(llm._model, "token_is_eog") else tok == llm.token_eos():
                    yield Delta(pending, "stop")
                    return
                n += 1
                lp: float | None = None
                if logprobs and last_scores[0] is not None:
                    row = np.asarray(last_scores[0], dtype=np.float64)
                    top = row.max()
                    lp = float(row[tok] - top - np.log(np.exp(row - top).sum()))
                pending += decoder.decode(llm.detokenize([tok]))
                cut = _stop_at(pending, stops)
                if cut is not None:
                    yield Delta(pending[:cut], "stop_sequence", tok, lp)
                    return
                keep = _held_suffix(pending, stops)
                release, pending = pending[: len(pending) - keep], pending[len(pending) - keep :]
                if n >= budget:
                    yield Delta(release + pending + decoder.decode(b"", final=True), "length", tok, lp)
                    return
                yield Delta(release, None, tok, lp)
            yield Delta(pending + decoder.decode(b"", final=True), "stop")
        finally:
            gen.close()

    def complete(self, prompt: Sequence[int], req: GenRequest) -> Completion:
        parts: list[str] = []
        n = 0
        reason: Any = "stop"
        for d in self.stream(prompt, req):
            parts.append(d.text)
            n += d.token_id >= 0
            reason = d.finish_reason or reason
        return Completion("".join(parts), len(prompt), n, reason)

    def count_tokens(self, text: str) -> int:
        return len(self.llm.tokenize(text.encode("utf-8"), add_bos=False, special=False)) if text else 0

    def close(self) -> None:
        close = getattr(self.llm, "close", None)
        if close is not None:
            close()


def _stop_at(text: str, stops: Sequence[str]) -> int | None:
    """Where the first stop string starts in ``text`` (None: no stop string there)."""
    hits = [i for i in (text.find(s) for s in stops) if i >= 0]
    return min(hits) if hits else None


def _held_suffix(text: str, stops: Sequence[str]) -> int:
    """Length of the longest end of ``text`` that could still grow into a stop string."""
    best = 0
    for s in stops:
        for k in range(min(len(s) - 1, len(text)), best, -1):
            if text.endswith(s[:k]):
                best = k
                break
    return best
