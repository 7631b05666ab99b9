"""What the server does, without HTTP: route an input (recipe → model), shape OpenAI and LoRAX bodies.

One artifact per server. The client's last user message (chat), its prompt (completions) or its
``inputs`` (LoRAX) is the task's input; the compiled task supplies the system prompt, recall
context and output constraint, so client system messages are not used. ``model`` / ``adapter_id``
are accepted whatever they say (the answer names the artifact's target).

Two steps per request, so that the HTTP layer can keep the model's work off its event loop:
``*_start`` validates and picks the route (microseconds: the recipe pack answers, or not), and
returns a :class:`Generation`; on the model route its token stream is lazy and does nothing until
first iterated, in a worker thread, where it takes a llama.cpp context from the
:class:`~kolmbuild.serve.pool.ModelPool` (waiting in its bounded queue), builds the prompt (recall
included) and decodes. ``*_body`` / ``*_chunks`` / ``*_events`` then shape the OpenAI or LoRAX answer.
"""

from __future__ import annotations

import json
import time
import uuid
from collections.abc import Generator, Iterator
from dataclasses import dataclass
from typing import Any, cast

from kolmbuild.errors import UserInputError
from kolmbuild.runtime import Predictor
from kolmbuild.runtime.constrain import Constraint, from_response_format, gbnf
from kolmbuild.runtime.types import Delta
from kolmbuild.serve.metrics import Metrics
from kolmbuild.serve.pool import ModelPool
from kolmbuild.serve.protocol import (
    BadRequest,
    ChatRequest,
    CompletionRequest,
    LoraxRequest,
    Unavailable,
    load_json,
)


@dataclass
class Generation:
    """An answer in progress: its route, prompt size (known once the model route has built the
    prompt) and token stream (close it if abandoned)."""

    route: str
    prompt_tokens: int
    deltas: Iterator[Delta]

    @property
    def uses_model(self) -> bool:
        return self.route == "model"

    def close(self) -> None:
        close = getattr(self.deltas, "close", None)
        if close is not None:
            close()

    def collect(self) -> tuple[str, list[Delta], str]:
        """All text, the token deltas, and the finish reason."""
        text: list[str] = []
        toks: list[Delta] = []
        reason = "stop"
        try:
            for d in self.deltas:
                text.append(d.text)
                if d.token_id >= 0 or self.route == "recipe":
                    toks.append(d)
                reason = d.finish_reason or reason
        finally:
            self.close()
        return "".join(text), toks, reason


def _openai_reason(reason: str | None) -> str | None:
    return None if reason is None else ("length" if reason == "length" else "stop")


def _lorax_reason(reason: str) -> str:
    return {"length": "length", "stop_sequence": "stop_sequence"}.get(reason, "eos_token")


def _fits(answer: Any, constraint: Constraint | None) -> bool:
    """Whether a recipe's answer satisfies the response format a request asked for."""
    if constraint is None or constraint.kind == "none":
        return True
    if constraint.kind in ("json", "json_schema"):
        return isinstance(answer, (dict, list))
    return False


class Service:
    def __init__(self, predictor: Predictor, *, pool: ModelPool | None = None, metrics: Metrics | None = None) -> None:
        self.predictor = predictor
        self.pool = pool or ModelPool(predictor)
        self.metrics = metrics or Metrics()
        self.model_id = predictor.target
        self.started = int(time.time())

    # meta -----------------------------------------------------------------------------------------
    def models(self) -> dict[str, Any]:
        return {"object": "list", "data": [{"id": self.model_id, "object": "model", "created": self.started, "owned_by": "kolmbuild"}]}

    def health(self) -> dict[str, Any]:
        p = self.predictor
        return {"status": "ok", "model": self.model_id, "recipes": p.recipes is not None, "llm": p.has_model}

    def info(self) -> dict[str, Any]:
        """LoRAX's ``GET /info`` (the fields its clients read)."""
        return {"model_id": self.model_id, "model_dtype": "gguf", "max_input_length": self.predictor.options.n_ctx,
                "max_total_tokens": self.predictor.options.n_ctx, "version": "kolmbuild", "docker_label": None,
                "adapter_source": "kolm"}

    # core -----------------------------------------------------------------------------------------
    def _value(self, text: str) -> Any:
        if self.predictor.task.shape.input != "json":
            return text
        try:
            return load_json(text, "the input (this task takes JSON input)")
        except BadRequest as exc:
            raise BadRequest(exc.message, param="input") from None

    def start(
        self,
        text: str,
        *,
        max_tokens: int | None,
        temperature: float | None,
        top_p: float | None = None,
        top_k: int | None = None,
        stop: tuple[str, ...] = (),
        seed: int | None = None,
        response_format: Any = None,
        logprobs: bool = False,
    ) -> Generation:
        try:
            constraint = from_response_format(response_format)
            if constraint is not None:
                gbnf(constraint)  # a schema llama.cpp cannot compile is the client's error, found now
        except UserInputError as exc:
            raise BadRequest(exc.message, param="response_format") from exc
        value = self._value(text)
        p = self.predictor
        answer = p.answer_recipe(value)
        if answer is not None and _fits(answer, constraint):
            self.metrics.answered("recipe")
            out = answer if isinstance(answer, str) else json.dumps(answer, ensure_ascii=False)
            return Generation("recipe", 0, iter([Delta(out, "stop", -1, 0.0 if logprobs else None)]))
        if not p.has_model:
            p.log_drift([(value, "none")])
            self.metrics.answered("none")
            raise BadRequest("no recipe covers this input and the artifact has no model", status=422, param="input")
        self.metrics.answered("model")
        overrides = {"max_tokens": max_tokens, "temperature": temperature, "top_p": top_p, "top_k": top_k,
                     "seed": None if seed is None else seed & 0xFFFFFFFF,  # llama.cpp seeds are uint32
                     "constraint": constraint, "stop": stop}
        gen = Generation("model", 0, iter(()))
        gen.deltas = self._model_deltas(gen, value, overrides, logprobs)
        return gen

    def _model_deltas(self, gen: Generation, value: Any, overrides: dict[str, Any], logprobs: bool) -> Iterator[Delta]:
        """The model route, run lazily in a worker thread: wait for a context, build the prompt, decode."""
        p = self.predictor
        with self.pool.runner() as runner:
            t0 = time.perf_counter()
            p.log_drift([(value, "model")])
            tokens = runner.chat_tokens(p.messages(value))
            gen.prompt_tokens = len(tokens)
            n = 0
            stream = cast(Generator[Delta, None, None], runner.stream(tokens, p.request(**overrides), logprobs=logprobs))
            try:
                for d in stream:
                    n += d.token_id >= 0
                    yield d
                    if self.pool.stopping and not d.finish_reason:
                        raise Unavailable("the server is shutting down; the generation was cut short")
            finally:
                stream.close()
                self.metrics.generated(len(tokens), n, time.perf_counter() - t0)

    # OpenAI ---------------------------------------------------------------------------------------
    def openai_start(self, r: ChatRequest | CompletionRequest) -> Generation:
        limit = r.token_limit if isinstance(r, ChatRequest) else r.max_tokens
        return self.start(r.user_input(), max_tokens=limit, temperature=r.temperature, top_p=r.top_p, stop=r.stop,
                          seed=r.seed, response_format=r.response_format)

    def openai_body(self, r: ChatRequest | CompletionRequest, gen: Generation) -> dict[str, Any]:
        """A finished (non-stream) OpenAI answer: the chat or text_completion object."""
        text, toks, reason = gen.collect()
        n = sum(1 for d in toks if d.token_id >= 0)
        chat = isinstance(r, ChatRequest)
        choice: dict[str, Any] = {"index": 0, "logprobs": None, "finish_reason": _openai_reason(reason)}
        if chat:
            choice["message"] = {"role": "assistant", "content": text}
        else:
            choice["text"] = text
        return {
            "id": ("chatcmpl-" if chat else "cmpl-") + uuid.uuid4().hex,
            "object": "chat.completion" if chat else "text_completion",
            "created": int(time.time()),
            "model": self.model_id,
            "choices": [choice],
            "usage": {"prompt_tokens": gen.prompt_tokens, "completion_tokens": n, "total_tokens": gen.prompt_tokens + n},
            "system_fingerprint": f"kolm-{gen.route}",
        }

    def chat_chunks(self, gen: Generation, include_usage: bool) -> Iterator[dict[str, Any]]:
        cid, created = "chatcmpl-" + uuid.uuid4().hex, int(time.time())

        def chunk(delta: dict[str, Any], reason: str | None) -> dict[str, Any]:
            return {"id": cid, "object": "chat.completion.chunk", "created": created, "model": self.model_id,
                    "system_fingerprint": f"kolm-{gen.route}",
                    "choices": [{"index": 0, "delta": delta, "logprobs": None, "finish_reason": reason}]}

        n = 0
        try:
            first = True
            for d in gen.deltas:  # the role chunk goes out with the first token: errors before it get a status
                if first:
                    yield chunk({"role": "assistant", "content": ""}, None)
                    first = False
                n += d.token_id >= 0
                if d.text:
                    yield chunk({"content": d.text}, None)
                if d.finish_reason:
                    yield chunk({}, _openai_reason(d.finish_reason))
            if include_usage:
                yield {"id": cid, "object": "chat.completion.chunk", "created": created, "model": self.model_id,
                       "choices": [], "usage": {"prompt_tokens": gen.prompt_tokens, "completion_tokens": n,
                                                "total_tokens": gen.prompt_tokens + n}}
        finally:
            gen.close()

    def completion_chunks(self, gen: Generation) -> Iterator[dict[str, Any]]:
        cid, created = "cmpl-" + uuid.uuid4().hex, int(time.time())
        try:
            for d in gen.deltas:
                if d.text or d.finish_reason:
                    yield {"id": cid, "object": "text_completion", "created": created, "model": self.model_id,
                           "choices": [{"index": 0, "text": d.text, "logprobs": None,
                                        "finish_reason": _openai_reason(d.finish_reason)}]}
        finally:
            gen.close()

    # LoRAX ----------------------------------------------------------------------------------------
    def lorax_start(self, r: LoraxRequest, logprobs: bool) -> Generation:
        q = r.parameters
        temperature = (q.temperature if q.temperature is not None else 1.0) if q.do_sample else 0.0
        return self.start(r.inputs, max_tokens=q.max_new_tokens, temperature=temperature, top_p=q.top_p,
                          top_k=q.top_k, stop=q.stop, seed=q.seed, response_format=q.response_format, logprobs=logprobs)

    def _token(self, d: Delta) -> dict[str, Any]:
        return {"id": d.token_id, "text": d.text, "logprob": d.logprob if d.logprob is not None else 0.0, "special": False}

    def lorax_body(self, r: LoraxRequest, gen: Generation) -> dict[str, Any]:
        q = r.parameters
        text, toks, reason = gen.collect()
        out: dict[str, Any] = {"generated_text": (r.inputs + text) if q.return_full_text else text}
        if q.details:
            out["details"] = {"finish_reason": _lorax_reason(reason), "prompt_tokens": gen.prompt_tokens,
                              "generated_tokens": len(toks), "seed": q.seed, "prefill": [],
                              "tokens": [self._token(d) for d in toks]}
        return out

    def lorax_events(self, r: LoraxRequest, gen: Generation) -> Iterator[dict[str, Any]]:
        q = r.parameters
        text: list[str] = []
        n = 0
        try:
            for d in gen.deltas:
                text.append(d.text)
                if d.token_id < 0 and gen.route == "model":
                    if not d.finish_reason:
                        continue
                else:
                    n += 1
                event: dict[str, Any] = {"token": self._token(d), "generated_text": None, "details": None}
                if d.finish_reason:
                    full = "".join(text)
                    event["generated_text"] = (r.inputs + full) if q.return_full_text else full
                    event["details"] = {"finish_reason": _lorax_reason(d.finish_reason), "prompt_tokens": gen.prompt_tokens,
                                        "generated_tokens": n, "seed": q.seed}
                yield event
        finally:
            gen.close()
