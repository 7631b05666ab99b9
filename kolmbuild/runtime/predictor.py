"""Predictor: recipes first, then the model, for one input or a batch."""

from __future__ import annotations

import shutil
import tempfile
import threading
import time
from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path
from types import TracebackType
from typing import Any

from kolmbuild.errors import ArtifactError
from kolmbuild.runtime.constrain import Constraint, for_shape
from kolmbuild.runtime.drift import DriftLog, drift_log_path
from kolmbuild.runtime.llm import GenRequest, LlamaRunner
from kolmbuild.runtime.parts import RuntimeOptions, RuntimeParts, load_recipes
from kolmbuild.runtime.prompt import ContextHit, build_messages
from kolmbuild.runtime.shape import TaskView, decode_output, input_text, task_view
from kolmbuild.runtime.types import Completion, Delta, Prediction


class Predictor:
    """Answers inputs of one compiled task. Thread-safe; close it (or use ``with``) when done."""

    def __init__(self, parts: RuntimeParts, *, workdir: Path | None = None, where: str = "task") -> None:
        self.parts = parts
        self.target = parts.target
        self.task: TaskView = task_view(parts.task, where=where)
        self.options: RuntimeOptions = parts.options
        self.recipes = parts.recipes
        self._workdir = workdir
        self._drift = DriftLog(parts.drift_log, parts.target, parts.artifact_id) if parts.drift_log else None
        self._runner: LlamaRunner | None = None
        self._index: Any = None
        self._load_lock = threading.Lock()
        self.default_constraint: Constraint = for_shape(self.task.shape, self.task.output_regex)

    # construction --------------------------------------------------------------------------------
    @classmethod
    def from_parts(cls, parts: RuntimeParts) -> Predictor:
        return cls(parts)

    @classmethod
    def open(
        cls,
        artifact_path: Path | str,
        *,
        verify: bool = True,
        pubkey: Any = None,
        hmac_key: bytes | str | None = None,
        options: RuntimeOptions | None = None,
        drift: bool = True,
    ) -> Predictor:
        """Open a .kolm file: verify it first (refusing on any failed check), then unpack what the
        runtime needs into a private temp folder (removed by :meth:`close`)."""
        from kolmbuild.artifact import open_artifact

        path = Path(artifact_path)
        workdir = Path(tempfile.mkdtemp(prefix="kolm-run-"))
        try:
            with open_artifact(path, verify=verify, pubkey=pubkey, hmac_key=hmac_key) as art:
                manifest = art.manifest
                where = f"{path}: manifest.json"
                recipes = (
                    load_recipes(art.read("recipes"), where=f"{path}: components/recipes.json")
                    if art.has("recipes")
                    else None
                )
                adapter = art.extract("adapter_gguf", workdir) if art.has("adapter_gguf") else None
                index = art.extract("index", workdir) if art.has("index") else None
                if art.has("base_gguf"):
                    base: Path | None = art.extract("base_gguf", workdir)
                else:
                    base = _resolve_base_ref(manifest.get("base"), where) if manifest.get("base") or adapter else None
                if adapter is not None and base is None:
                    raise ArtifactError(f"{where}: the artifact ships a LoRA adapter but names no base model")
                parts = RuntimeParts(
                    target=str(manifest["target"]),
                    task=manifest["task"],
                    recipes=recipes,
                    base_gguf=base,
                    adapter_gguf=adapter,
                    index=index,
                    drift_log=drift_log_path(str(manifest["target"])) if drift else None,
                    artifact_id=art.manifest_cid,
                    options=options or RuntimeOptions.from_env(),
                )
            return cls(parts, workdir=workdir, where=where)
        except BaseException:
            shutil.rmtree(workdir, ignore_errors=True)
            raise

    # lifecycle -----------------------------------------------------------------------------------
    def __enter__(self) -> Predictor:
        return self

    def __exit__(self, t: type[BaseException] | None, e: BaseException | None, tb: TracebackType | None) -> None:
        self.close()

    def close(self) -> None:
        with self._load_lock:
            if self._runner is not None:
                self._runner.close()
                self._runner = None
            index, self._index = self._index, None
        if index is not None and hasattr(index, "close"):
            index.close()
        if self._workdir is not None:
            shutil.rmtree(self._workdir, ignore_errors=True)
            self._workdir = None

    # what it can do ------------------------------------------------------------------------------
    @property
    def has_model(self) -> bool:
        return self.parts.base_gguf is not None

    @property
    def model_name(self) -> str:
        return self.target

    def runner(self) -> LlamaRunner:
        """The llama.cpp runner, loaded on first use."""
        with self._load_lock:
            if self._runner is None:
                self._runner = self.new_runner()
            return self._runner

    def new_runner(self) -> LlamaRunner:
        """Another llama.cpp context on the same files (the weights are memory-mapped, so the pages
        are shared); the caller closes it. ``serve --parallel N`` holds N of them."""
        if self.parts.base_gguf is None:
            raise ArtifactError(f"{self.target}: this artifact has no model (recipes only)")
        with_drafts = bool(self.options.drafts and self.task.drafts and self.recipes is not None)
        return LlamaRunner(self.parts.base_gguf, self.parts.adapter_gguf, self.options, with_drafts=with_drafts)

    def _recall(self, value: Any) -> list[ContextHit]:
        if self.parts.index is None:
            return []
        with self._load_lock:
            if self._index is None:
                from kolmbuild.recall import open_index

                self._index = open_index(self.parts.index)
            index = self._index
        k = self.options.recall_k or self.task.top_k
        return [ContextHit(h.text, h.source, float(h.score)) for h in index.search(input_text(value), k)]

    def messages(self, value: Any) -> list[dict[str, str]]:
        """The chat messages the model gets for ``value`` (recall hits included)."""
        return build_messages(self.task.description, self.task.shape, value, self._recall(value))

    def drafts(self) -> Any:
        if not (self.options.drafts and self.task.drafts) or self.recipes is None:
            return None
        return getattr(self.recipes, "drafts", None)

    def request(self, **overrides: Any) -> GenRequest:
        base: dict[str, Any] = {
            "max_tokens": self.task.shape.max_output_tokens,
            "temperature": self.options.temperature,
            "seed": self.options.seed,
            "constraint": self.default_constraint,
            "draft": self.drafts(),
        }
        base.update({k: v for k, v in overrides.items() if v is not None})
        return GenRequest(**base)

    # routes --------------------------------------------------------------------------------------
    def answer_recipe(self, value: Any) -> Any:
        return None if self.recipes is None else self.recipes.answer(value)

    def log_drift(self, values: Sequence[tuple[Any, str]]) -> None:
        if self._drift is not None and values:
            self._drift.append(values)

    def generate(self, value: Any, req: GenRequest | None = None) -> Completion:
        """The model's raw completion for ``value`` (no recipe, no drift log)."""
        runner = self.runner()
        return runner.complete(runner.chat_tokens(self.messages(value)), req or self.request())

    def generate_stream(self, value: Any, req: GenRequest | None = None) -> Iterator[Delta]:
        runner = self.runner()
        tokens = runner.chat_tokens(self.messages(value))
        return runner.stream(tokens, req or self.request())

    # the pinned API ------------------------------------------------------------------------------
    def predict(self, value: Any) -> Prediction:
        t0 = time.perf_counter()
        answer = self.answer_recipe(value)
        if answer is not None:
            return Prediction(answer, "recipe", (time.perf_counter() - t0) * 1000.0)
        return self._fallback(value, t0)

    def _fallback(self, value: Any, t0: float) -> Prediction:
        if not self.has_model:
            self.log_drift([(value, "none")])
            return Prediction(None, "none", (time.perf_counter() - t0) * 1000.0)
        self.log_drift([(value, "model")])
        out = decode_output(self.generate(value).text, self.task.shape)
        return Prediction(out, "model", (time.perf_counter() - t0) * 1000.0)

    def predict_batch(self, values: Sequence[Any]) -> list[Prediction]:
        """Recipes answer the whole batch at once; the rest go to the model one by one, in order."""
        values = list(values)
        t0 = time.perf_counter()
        answers = self.recipes.answer_batch(values) if self.recipes is not None else [None] * len(values)
        if len(answers) != len(values):
            raise ArtifactError(f"{self.target}: the recipe pack answered {len(answers)} of {len(values)} inputs")
        per_item = (time.perf_counter() - t0) * 1000.0 / max(1, len(values))
        new = tuple.__new__  # Prediction's own __new__ is a Python function: a third of the cost per answer
        return [
            new(Prediction, (answer, "recipe", per_item)) if answer is not None else self._fallback(value, time.perf_counter())
            for value, answer in zip(values, answers, strict=True)
        ]


def _resolve_base_ref(ref: Mapping[str, Any] | None, where: str) -> Path:
    """The base GGUF an artifact names but does not ship, found on this machine and checked."""
    from kolmbuild.config.models import BaseModelSpec
    from kolmbuild.models import resolve_base

    if not ref or not isinstance(ref.get("name"), str):
        raise ArtifactError(f"{where}: base: expected {{name, sha256}}")
    model = resolve_base(BaseModelSpec(name=ref["name"], revision=ref.get("revision")))
    if model.gguf_path is None:
        raise ArtifactError(f"{where}: base {ref['name']!r} resolves to a model folder, but the runtime needs a GGUF")
    want = ref.get("sha256")
    if want and want != model.sha256:
        raise ArtifactError(
            f"{where}: base {ref['name']!r} on this machine ({model.gguf_path}) is not the one the artifact was "
            f"built with (sha256 {model.sha256[:16]}…, expected {want[:16]}…)"
        )
    return model.gguf_path
