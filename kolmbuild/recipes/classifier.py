"""A small classifier head for label tasks: tf-idf features and multinomial logistic regression,
trained with numpy (full-batch gradient descent with momentum, L2), no scikit-learn.

Features are lower-cased word unigrams and bigrams (at most :data:`MAX_FEATURES`, by document
frequency). The head answers only when its top probability reaches ``threshold``, chosen on a
split of the training rows so that the answered share is at least ``min_accuracy`` accurate;
below it, the input is left to the model.
"""

from __future__ import annotations

import hashlib
import math
import re
from collections import Counter
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from kolmbuild.data.examples import Example
from kolmbuild.verifier.normalize import json_key

MAX_FEATURES = 2000
MAX_ROWS = 10_000  # training rows used (the first ones), to bound memory and time
EPOCHS = 300
L2 = 1e-4
_WORD = re.compile(r"[a-z0-9]+(?:'[a-z]+)?")


def _text(value: Any) -> str:
    return value if isinstance(value, str) else json_key(value)


LEARN_CHARS = 100_000  # characters of each training text read to choose the vocabulary


def features_of(text: str) -> Iterator[str]:
    """Lower-cased words, then each pair of adjacent words: a stream, so that counting features
    of a huge text keeps only the counts (not every token) in memory."""
    lowered = text.lower()
    yield from (m.group() for m in _WORD.finditer(lowered))
    prev = None
    for m in _WORD.finditer(lowered):
        word = m.group()
        if prev is not None:
            yield prev + " " + word
        prev = word


@dataclass(frozen=True)
class ClassifierRecipe:
    labels: tuple[str, ...]
    vocab: tuple[str, ...]
    idf: tuple[float, ...]
    weights: tuple[tuple[float, ...], ...]  # one row per feature, one column per label
    bias: tuple[float, ...]
    threshold: float
    _index: dict[str, int] = field(init=False, repr=False, compare=False)
    _idf: np.ndarray = field(init=False, repr=False, compare=False)
    _w: np.ndarray = field(init=False, repr=False, compare=False)
    _b: np.ndarray = field(init=False, repr=False, compare=False)

    kind = "classifier"

    def __post_init__(self) -> None:
        object.__setattr__(self, "_index", {f: i for i, f in enumerate(self.vocab)})
        object.__setattr__(self, "_idf", np.asarray(self.idf, dtype=np.float64))
        object.__setattr__(self, "_w", np.asarray(self.weights, dtype=np.float64).reshape(len(self.vocab), len(self.labels)))
        object.__setattr__(self, "_b", np.asarray(self.bias, dtype=np.float64))

    def _matrix(self, values: Sequence[Any]) -> np.ndarray:
        return tfidf_matrix([_text(v) for v in values], self._index, self._idf)

    def probabilities(self, values: Sequence[Any]) -> np.ndarray:
        return softmax(self._matrix(values) @ self._w + self._b)

    def answer_batch(self, values: Sequence[Any]) -> list[str | None]:
        if not values:
            return []
        probs = self.probabilities(values)
        best = probs.argmax(axis=1)
        return [self.labels[j] if probs[i, j] >= self.threshold else None for i, j in enumerate(best)]

    def answer(self, value: Any) -> str | None:
        return self.answer_batch([value])[0]

    def to_json(self) -> dict[str, Any]:
        return {
            "kind": "classifier",
            "labels": list(self.labels),
            "vocab": list(self.vocab),
            "idf": list(self.idf),
            "weights": [list(r) for r in self.weights],
            "bias": list(self.bias),
            "threshold": self.threshold,
        }

    @classmethod
    def from_json(cls, doc: dict[str, Any]) -> ClassifierRecipe:
        return cls(
            tuple(doc["labels"]), tuple(doc["vocab"]), tuple(float(x) for x in doc["idf"]),
            tuple(tuple(float(x) for x in r) for r in doc["weights"]), tuple(float(x) for x in doc["bias"]),
            float(doc["threshold"]),
        )  # fmt: skip


def tfidf_matrix(texts: Sequence[str], index: dict[str, int], idf: np.ndarray) -> np.ndarray:
    x = np.zeros((len(texts), len(index)), dtype=np.float32)
    for i, t in enumerate(texts):
        for f, n in Counter(f for f in features_of(t) if f in index).items():
            j = index[f]
            x[i, j] = (1.0 + math.log(n)) * idf[j]
    norms = np.linalg.norm(x, axis=1, keepdims=True)
    return x / np.where(norms == 0, 1.0, norms)


def softmax(z: np.ndarray) -> np.ndarray:
    z = z - z.max(axis=1, keepdims=True)
    e = np.exp(z)
    out: np.ndarray = e / e.sum(axis=1, keepdims=True)
    return out


def _fit(x: np.ndarray, y: np.ndarray, n_labels: int) -> tuple[np.ndarray, np.ndarray]:
    w = np.zeros((x.shape[1], n_labels))
    b = np.zeros(n_labels)
    vw, vb = np.zeros_like(w), np.zeros_like(b)
    onehot = np.eye(n_labels)[y]
    lr, mom = 2.0, 0.9
    for _ in range(EPOCHS):
        grad = (softmax(x @ w + b) - onehot) / len(y)
        gw = x.T @ grad + L2 * w
        gb = grad.sum(axis=0)
        vw = mom * vw - lr * gw
        vb = mom * vb - lr * gb
        w += vw
        b += vb
    return w, b


def _vocabulary(texts: Sequence[str]) -> tuple[dict[str, int], np.ndarray]:
    df: Counter[str] = Counter()
    for t in texts:
        df.update(set(features_of(t[:LEARN_CHARS])))
    feats = sorted(df, key=lambda f: (-df[f], f))[:MAX_FEATURES]
    feats.sort()
    n = len(texts)
    idf = np.array([math.log((1 + n) / (1 + df[f])) + 1.0 for f in feats])
    return {f: i for i, f in enumerate(feats)}, idf


def _is_validation(e: Example) -> bool:
    return hashlib.sha256(b"kolm-clf:" + json_key(e.input).encode()).digest()[0] < 52  # about 20%


def _train(rows: Sequence[Example], labels: list[str]) -> tuple[dict[str, int], np.ndarray, np.ndarray, np.ndarray]:
    texts = [_text(e.input) for e in rows]
    index, idf = _vocabulary(texts)
    y = np.array([labels.index(str(e.output)) for e in rows])
    w, b = _fit(tfidf_matrix(texts, index, idf), y, len(labels))
    return index, idf, w, b


def _threshold(probs: np.ndarray, truth: list[int], min_accuracy: float) -> float:
    """Lowest confidence cut whose answered share is at least ``min_accuracy`` accurate."""
    conf = probs.max(axis=1)
    right = probs.argmax(axis=1) == np.array(truth)
    for cut in sorted(set(np.round(conf, 6).tolist())):
        answered = conf >= cut
        if answered.any() and right[answered].mean() >= min_accuracy:
            return float(cut)
    return 1.01  # never confident enough: the model answers everything


def learn_classifier(train: Sequence[Example], min_accuracy: float) -> ClassifierRecipe | None:
    """None unless outputs are labels (strings) with at least two classes and ten rows."""
    if len(train) < 10 or not all(isinstance(e.output, str) for e in train):
        return None
    train = train[:MAX_ROWS]
    labels = sorted({str(e.output) for e in train})
    if len(labels) < 2 or len(labels) > max(2, len(train) // 3):
        return None
    fit_rows = [e for e in train if not _is_validation(e)]
    val_rows = [e for e in train if _is_validation(e)]
    if val_rows and len({e.output for e in fit_rows}) == len(labels):
        index, idf, w, b = _train(fit_rows, labels)
        probs = softmax(tfidf_matrix([_text(e.input) for e in val_rows], index, idf) @ w + b)
        threshold = _threshold(probs, [labels.index(str(e.output)) for e in val_rows], min_accuracy)
    else:
        threshold = 0.0
    index, idf, w, b = _train(train, labels)
    vocab = sorted(index, key=index.__getitem__)
    return ClassifierRecipe(
        labels=tuple(labels),
        vocab=tuple(vocab),
        idf=tuple(round(float(v), 6) for v in idf),
        weights=tuple(tuple(round(float(v), 6) for v in row) for row in w),
        bias=tuple(round(float(v), 6) for v in b),
        threshold=round(threshold, 6),
    )
