"""Shared helpers for runtime tests (a uniquely named module: conftest names collide across folders)."""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

LABEL_TASK: dict[str, Any] = {
    "name": "sentiment",
    "description": "Classify the sentiment of the review.",
    "shape": {"input": "text", "output": "label", "labels": ["positive", "negative"]},
}


class TablePack:
    """A stand-in with the pinned RecipePack API for from_parts tests: exact-input lookups plus a
    draft table of (text so far → continuation) pairs."""

    def __init__(self, table: Mapping[str, Any], drafts: Mapping[str, str] | None = None) -> None:
        self.table = dict(table)
        self.drafts = _Drafts(drafts or {})
        self.batch_calls = 0

    def answer(self, value: Any) -> Any:
        return self.table.get(value) if isinstance(value, str) else None

    def answer_batch(self, values: Sequence[Any]) -> list[Any]:
        self.batch_calls += 1
        return [self.answer(v) for v in values]


class _Drafts:
    def __init__(self, pairs: Mapping[str, str]) -> None:
        self.pairs = dict(pairs)
        self.asked: list[str] = []

    def propose(self, text_so_far: str) -> str:
        self.asked.append(text_so_far)
        return self.pairs.get(text_so_far, "")


def tamper_manifest(path: Path, old: bytes, new: bytes) -> None:
    """Rewrite ``path`` with ``old`` replaced by ``new`` inside manifest.json (signatures kept)."""
    import zipfile

    with zipfile.ZipFile(path) as zf:
        members = [(info, zf.read(info)) for info in zf.infolist()]
    with zipfile.ZipFile(path, "w") as zf:
        for info, data in members:
            if info.filename == "manifest.json":
                assert old in data
                data = data.replace(old, new)
            zf.writestr(info, data)


MakeArtifact = Callable[..., Path]
