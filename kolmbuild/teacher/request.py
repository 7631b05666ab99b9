"""A teacher request as data, its content address, and the reply.

The canonical form of a request (provider, model, system prompt, messages, temperature,
max_tokens and the sample number) is hashed into a CID: the key of the request cache. It holds
nothing secret: the API key and the endpoint's URL are not part of it, so the same request to a
second target, or after a resumed build, is answered from the cache.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

from kolmbuild.hashing.cid import cid_of_json


@dataclass(frozen=True)
class Message:
    role: str  # "user" | "assistant"
    content: str


@dataclass(frozen=True)
class ChatRequest:
    provider: str
    model: str
    system: str
    messages: tuple[Message, ...]
    temperature: float
    max_tokens: int
    sample: int  # which of the k samples; OpenAI-compatible servers get it as the seed

    def canonical(self) -> dict[str, Any]:
        return {
            "provider": self.provider,
            "model": self.model,
            "system": self.system,
            "messages": [{"role": m.role, "content": m.content} for m in self.messages],
            "temperature": self.temperature,
            "max_tokens": self.max_tokens,
            "sample": self.sample,
        }

    def cid(self) -> str:
        """The request's CID, computed once per request (the cache lookup, the cache write and the
        log all ask; canonical JSON of a long prompt is not free)."""
        cached: str | None = self.__dict__.get("_cid")
        if cached is None:
            cached = str(cid_of_json(self.canonical()))
            object.__setattr__(self, "_cid", cached)  # a memo, not a field: equality ignores it
        return cached

    def prompt_chars(self) -> int:
        return len(self.system) + sum(len(m.content) for m in self.messages)

    def max_input_tokens(self) -> int:
        """A safe upper estimate of the prompt's tokens (no tokenizer for a remote model): one
        token per 3 characters (English averages about 4) plus a few per message for the template."""
        return math.ceil(self.prompt_chars() / 3) + 8 * (len(self.messages) + 1)


@dataclass(frozen=True)
class Reply:
    text: str
    input_tokens: int
    output_tokens: int
    model: str

    def to_json(self) -> dict[str, Any]:
        return {"text": self.text, "input_tokens": self.input_tokens, "output_tokens": self.output_tokens, "model": self.model}

    @classmethod
    def from_json(cls, doc: dict[str, Any]) -> Reply:
        return cls(str(doc["text"]), int(doc["input_tokens"]), int(doc["output_tokens"]), str(doc["model"]))
