"""What a predictor is made of: the task block and the unpacked components of an artifact."""

from __future__ import annotations

import json
import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from kolmbuild.errors import ArtifactError


@dataclass(frozen=True)
class RuntimeOptions:
    """Knobs of the model route. ``n_threads`` None: llama.cpp's default (all cores)."""

    n_ctx: int = 2048
    n_threads: int | None = None
    n_batch: int = 512
    drafts: bool = True  # use the recipe pack's draft table when the task allows it
    max_draft_tokens: int = 16
    temperature: float = 0.0
    seed: int = 0
    recall_k: int | None = None  # None: the task's recall.top_k

    @staticmethod
    def from_env() -> RuntimeOptions:
        """Defaults, with ``KOLM_THREADS`` / ``KOLM_CTX`` applied when set."""
        threads = os.environ.get("KOLM_THREADS")
        ctx = os.environ.get("KOLM_CTX")
        return RuntimeOptions(
            n_threads=int(threads) if threads and threads.isdigit() else None,
            n_ctx=int(ctx) if ctx and ctx.isdigit() else 2048,
        )


@dataclass(frozen=True)
class RuntimeParts:
    """Unpacked components. ``recipes`` is a ``RecipePack`` (or anything with its API);
    ``drift_log`` None turns drift logging off (evaluation does not log drift)."""

    target: str
    task: Mapping[str, Any]
    recipes: Any = None
    base_gguf: Path | None = None
    adapter_gguf: Path | None = None
    index: Path | None = None
    drift_log: Path | None = None
    artifact_id: str | None = None
    options: RuntimeOptions = field(default_factory=RuntimeOptions)


def load_recipes(source: Path | bytes | Mapping[str, Any], *, where: str = "recipes.json") -> Any:
    """A RecipePack from its JSON (a file, bytes, or the parsed dict)."""
    from kolmbuild.recipes import RecipePack

    if isinstance(source, Path):
        where = str(source)
        try:
            source = source.read_bytes()
        except OSError as exc:
            raise ArtifactError(f"{where}: cannot read the recipe pack: {exc.strerror or exc}") from exc
    if isinstance(source, bytes):
        try:
            source = json.loads(source)
        except (UnicodeDecodeError, json.JSONDecodeError) as exc:
            raise ArtifactError(f"{where}: the recipe pack is not JSON: {exc}") from exc
    if not isinstance(source, Mapping):
        raise ArtifactError(f"{where}: the recipe pack must be a JSON object")
    try:
        return RecipePack.from_json(dict(source))
    except (KeyError, TypeError, ValueError) as exc:
        raise ArtifactError(f"{where}: not a valid recipe pack: {exc}") from exc
