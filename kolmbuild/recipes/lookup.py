"""Lookup recipes: exact input → output, for inputs that recur (canned queries, routing)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from kolmbuild.data.examples import Example
from kolmbuild.verifier.normalize import json_key


def lookup_key(value: Any) -> str:
    return value if isinstance(value, str) else json_key(value)


@dataclass(frozen=True)
class LookupRecipe:
    entries: tuple[tuple[str, Any], ...]  # (key, output), sorted by key
    _table: dict[str, Any] = field(init=False, repr=False, compare=False)

    kind = "lookup"

    def __post_init__(self) -> None:
        object.__setattr__(self, "_table", dict(self.entries))

    def answer(self, value: Any) -> Any | None:
        return self._table.get(lookup_key(value))

    def answer_batch(self, values: Sequence[Any]) -> list[Any | None]:
        get = self._table.get
        return [get(v if type(v) is str else lookup_key(v)) for v in values]

    def to_json(self) -> dict[str, Any]:
        return {"kind": "lookup", "entries": [[k, v] for k, v in self.entries]}

    @classmethod
    def from_json(cls, doc: dict[str, Any]) -> LookupRecipe:
        return cls(tuple((str(k), v) for k, v in doc["entries"]))


def learn_lookup(train: Sequence[Example]) -> LookupRecipe | None:
    """Every training input whose outputs agree (an input seen with two outputs is left out)."""
    table: dict[str, Any] = {}
    conflicted: set[str] = set()
    for e in train:
        key = lookup_key(e.input)
        if key in table and json_key(table[key]) != json_key(e.output):
            conflicted.add(key)
        table.setdefault(key, e.output)
    entries = tuple(sorted((k, v) for k, v in table.items() if k not in conflicted))
    return LookupRecipe(entries) if entries else None
