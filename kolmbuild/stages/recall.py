"""Stage ``recall``: chunk and embed the task's corpus into ``index.sqlite`` (absent without one).

``recall.json`` (also the stage metrics) holds files, chunks, skipped files with reasons, the
embedder and its dimension: all functions of the corpus bytes and the spec. How many chunks were
embedded versus found in the embedding cache goes to the summary only, since it depends on what
earlier builds left in the cache.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any, TypeVar

from pydantic import BaseModel, ValidationError

from kolmbuild.config.models import RecallSpec
from kolmbuild.engine.stage import StageContext, StageResult
from kolmbuild.errors import ConfigError
from kolmbuild.recall.corpus import list_corpus
from kolmbuild.recall.index import build_index

M = TypeVar("M", bound=BaseModel)


def spec_from(model: type[M], raw: Any, key: str) -> M:
    """A config subtree as its pydantic model; ConfigError naming each bad key under ``key``."""
    try:
        return model.model_validate(raw or {})
    except ValidationError as exc:
        problems = "; ".join(f"{'.'.join([key, *map(str, e['loc'])])}: {e['msg']}" for e in exc.errors())
        raise ConfigError(problems) from exc


def cache_root(cache_dir: Path) -> Path:
    return cache_dir / "recall" / "embeddings"


def _write_json(path: Path, value: Any) -> None:
    path.write_text(json.dumps(value, sort_keys=True, indent=2) + "\n", encoding="utf-8")


def run(ctx: StageContext) -> StageResult:
    spec = spec_from(RecallSpec, ctx.param("task.recall"), "task.recall")
    location = ctx.param("task.corpus")
    if not location:
        metrics: dict[str, Any] = {"corpus": False, "files": 0, "chunks": 0, "skipped": [], "embedder": None}
        _write_json(ctx.output("recall.json"), metrics)
        return StageResult(metrics, "no corpus: no recall index")
    local = ctx.inputs.get("task.corpus")
    files = list_corpus(str(local) if local is not None else str(location), ctx.project_dir)
    ctx.progress.log(f"{len(files)} corpus files")
    stats = build_index(files, ctx.output("index.sqlite"), spec, cache_root(ctx.cache_dir), ctx.progress,
                        shared=ctx.shared)
    metrics = {"corpus": True, **stats.to_json()}
    _write_json(ctx.output("recall.json"), metrics)
    summary = f"{stats.chunks} chunks from {stats.files} files ({stats.embedded} embedded, {stats.cached} cached)"
    if stats.skipped:
        summary += f"; skipped {len(stats.skipped)}: " + ", ".join(s.file for s in stats.skipped)
    return StageResult(metrics, summary)
