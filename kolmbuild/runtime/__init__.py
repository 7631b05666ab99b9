"""The runtime: answer a compiled task's inputs offline.

Order of routes for one input: a recipe from the artifact's recipe pack when one covers it;
otherwise the base model (plus the LoRA adapter) through llama-cpp-python, with the task's
recall hits in the prompt, constrained decoding from the task's output shape, and the recipe
pack's deterministic-token table as a speculative draft; otherwise no answer (route ``none``).
Inputs no recipe covers are appended to the drift log (:mod:`kolmbuild.runtime.drift`).

Pinned API::

    Predictor.open(artifact_path, *, verify=True, pubkey=None) -> Predictor
    Predictor.from_parts(parts: RuntimeParts) -> Predictor
    Predictor.predict(input) -> Prediction(output, route, latency_ms)
    Predictor.predict_batch(inputs) -> list[Prediction]

Nothing here imports llama_cpp until a model is actually needed.
"""

from __future__ import annotations

from kolmbuild.runtime.parts import RuntimeOptions, RuntimeParts
from kolmbuild.runtime.predictor import Predictor
from kolmbuild.runtime.types import Prediction, Route

__all__ = ["Prediction", "Predictor", "Route", "RuntimeOptions", "RuntimeParts"]
