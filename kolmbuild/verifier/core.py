"""The verifier synthesized from a task's examples, and the winner among k teacher samples.

Modes (``Verifier.mode``), chosen by :func:`synthesize` when the task says ``kind: auto``:

* ``label``   — the output is one of the labels; with a reference, case-folded equality.
* ``json``    — the output parses as JSON and validates against a schema (the task's, or one
  inferred from the example outputs, with enum/pattern field checks); with a reference, every
  field equal after normalizing strings.
* ``regex``   — patterned short outputs (dates, codes, numbers): the output fully matches the
  shape shared by the examples; with a reference, normalized equality.
* ``exact``   — short outputs, or outputs that are edits of the input (redaction, rewriting):
  a non-empty string of plausible length; with a reference, normalized equality (case-folded
  only for short outputs).
* ``similar`` — free-form long text: with a reference, token F1 ≥ ``threshold``.
* ``python``  — the user's ``verify(input, output, reference)``; its source is embedded.

``check(input, output, reference=None)``: with no reference only the shape checks apply.
"""

from __future__ import annotations

import difflib
import re
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from kolmbuild.config.models import ShapeSpec, VerifierSpec
from kolmbuild.data.examples import Example
from kolmbuild.errors import ConfigError
from kolmbuild.verifier.normalize import json_key, normalize_json, normalize_text, parse_json_output, token_f1
from kolmbuild.verifier.schema import infer_schema, schema_problems, validate
from kolmbuild.verifier.shape import shape_regex
from kolmbuild.verifier.user import UserVerifier, load_verifier_file
from kolmbuild.verifier.user import from_json as user_from_json

Mode = Literal["label", "json", "regex", "exact", "similar", "python"]
FORMAT = "kolm-verifier/1"
SHORT_CHARS = 80  # outputs up to this long (and one line) are "short"
EDIT_RATIO = 0.6  # median input/output similarity above which outputs are edits of the input
EDIT_WINDOW = 512  # characters of each side compared (difflib is quadratic)
EDIT_SAMPLE = 51  # example pairs compared at most
SIMILAR_THRESHOLD = 0.8


@dataclass(frozen=True)
class Verifier:
    mode: Mode
    casefold: bool = False
    labels: tuple[str, ...] = ()
    schema: dict[str, Any] | None = None
    pattern: str | None = None
    max_chars: int | None = None
    threshold: float | None = None
    user: UserVerifier | None = None
    _regex: re.Pattern[str] | None = field(default=None, init=False, repr=False, compare=False)
    _labels: frozenset[str] = field(default=frozenset(), init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        if self.pattern is not None:
            object.__setattr__(self, "_regex", re.compile(self.pattern))
        object.__setattr__(self, "_labels", frozenset(normalize_text(lb, casefold=True) for lb in self.labels))

    # ------------------------------------------------------------------ checking

    def parse(self, output: Any) -> Any:
        """The value an output stands for: parsed JSON in ``json`` mode, else the output itself."""
        if self.mode == "json":
            ok, value = parse_json_output(output)
            return value if ok else output
        return output

    def shape_ok(self, output: Any) -> bool:
        """The checks that need no reference."""
        if self.mode == "json":
            ok, value = parse_json_output(output)
            return ok and not validate(value, self.schema or {})
        if not isinstance(output, str) or not output.strip():
            return False
        if self.mode == "label":
            return not self._labels or normalize_text(output, casefold=True) in self._labels
        if self.mode == "regex":
            assert self._regex is not None
            return self._regex.fullmatch(output.strip()) is not None
        return self.max_chars is None or len(output) <= self.max_chars

    def matches(self, output: Any, reference: Any) -> bool:
        """Output agrees with the reference (after the mode's normalization)."""
        if self.mode == "json":
            ok, value = parse_json_output(output)
            ok_ref, ref = parse_json_output(reference)
            return ok and ok_ref and normalize_json(value) == normalize_json(ref)
        if not isinstance(output, str) or not isinstance(reference, str):
            return False
        if self.mode == "similar":
            return token_f1(output, reference) >= (self.threshold or SIMILAR_THRESHOLD)
        casefold = self.casefold or self.mode == "label"
        return normalize_text(output, casefold=casefold) == normalize_text(reference, casefold=casefold)

    def check(self, input: Any, output: Any, reference: Any = None) -> bool:
        if self.mode == "python":
            assert self.user is not None
            return self.user(input, output, reference)
        if not self.shape_ok(output):
            return False
        return reference is None or self.matches(output, reference)

    def vote_key(self, output: Any) -> str:
        """Outputs that count as the same answer in a majority vote share this key."""
        if self.mode == "json":
            ok, value = parse_json_output(output)
            return json_key(normalize_json(value)) if ok else "\x00" + repr(output)
        if isinstance(output, str):
            return normalize_text(output, casefold=self.casefold or self.mode == "label")
        return json_key(output)

    def choose_winner(self, input: Any, samples: Sequence[Any], reference: Any = None) -> Winner | None:
        return choose_winner(self, input, samples, reference)

    # ------------------------------------------------------------------ serialization

    def to_json(self) -> dict[str, Any]:
        doc: dict[str, Any] = {"format": FORMAT, "mode": self.mode, "casefold": self.casefold}
        if self.labels:
            doc["labels"] = list(self.labels)
        if self.schema is not None:
            doc["schema"] = self.schema
        if self.pattern is not None:
            doc["pattern"] = self.pattern
        if self.max_chars is not None:
            doc["max_chars"] = self.max_chars
        if self.threshold is not None:
            doc["threshold"] = self.threshold
        if self.user is not None:
            doc["python"] = self.user.to_json()
        return doc

    @classmethod
    def from_json(cls, doc: dict[str, Any]) -> Verifier:
        if not isinstance(doc, dict) or doc.get("format") != FORMAT:
            raise ConfigError(f"verifier.json: not a {FORMAT} document")
        mode = doc.get("mode")
        if mode not in ("label", "json", "regex", "exact", "similar", "python"):
            raise ConfigError(f"verifier.json: unknown mode {mode!r}")
        if mode == "regex" and not isinstance(doc.get("pattern"), str):
            raise ConfigError("verifier.json: regex mode without a pattern")
        try:
            return cls(
                mode=mode,
                casefold=bool(doc.get("casefold", False)),
                labels=tuple(doc.get("labels", ())),
                schema=doc.get("schema"),
                pattern=doc.get("pattern"),
                max_chars=doc.get("max_chars"),
                threshold=doc.get("threshold"),
                user=user_from_json(doc["python"]) if mode == "python" else None,
            )
        except re.error as exc:
            raise ConfigError(f"verifier.json: bad pattern: {exc}") from None


@dataclass(frozen=True)
class Winner:
    """The chosen sample: its parsed output, index among the samples, whether it verified (with
    the reference when one was given), and how many samples gave the same answer."""

    output: Any
    index: int
    passed: bool
    votes: int
    scores: tuple[int, ...]


def choose_winner(verifier: Verifier, input: Any, samples: Sequence[Any], reference: Any = None) -> Winner | None:
    """Best-verified sample; ties broken by majority vote (then by earliest sample).

    Score per sample: 2 = passes ``check`` with the reference (or, with no reference, passes
    the shape checks), 1 = passes the shape checks only, 0 = fails them. None when no samples.
    """
    if not samples:
        return None
    scores: list[int] = []
    for s in samples:
        if reference is not None and verifier.check(input, s, reference):
            scores.append(2)
        elif verifier.check(input, s, None):
            scores.append(2 if reference is None else 1)
        else:
            scores.append(0)
    best = max(scores)
    tied = [i for i, sc in enumerate(scores) if sc == best]
    keys = {i: verifier.vote_key(samples[i]) for i in tied}
    votes = Counter(keys.values())
    index = min(tied, key=lambda i: (-votes[keys[i]], i))
    return Winner(verifier.parse(samples[index]), index, best == 2, votes[keys[index]], tuple(scores))


# ---------------------------------------------------------------------- synthesis


def _is_edit_task(examples: Sequence[Example]) -> bool:
    """Whether outputs are edits of their inputs: the median character similarity of (at most
    :data:`EDIT_SAMPLE`, evenly spaced) pairs reaches :data:`EDIT_RATIO`. difflib is quadratic in
    the text, so each side is cut to :data:`EDIT_WINDOW` characters: the work is bounded whatever
    the examples' size (one 1 MB example took minutes uncut). A token-level ratio would be cheaper
    but scores short redactions much lower (0.43 against 0.63 for "Call 555-123-4567 now please"
    → "Call [PHONE] now please"), which would change which verifier a task gets."""
    pairs = [(e.input, e.output) for e in examples if isinstance(e.input, str) and isinstance(e.output, str)]
    if len(pairs) > EDIT_SAMPLE:
        step = len(pairs) / EDIT_SAMPLE
        pairs = [pairs[int(i * step)] for i in range(EDIT_SAMPLE)]
    ratios = sorted(
        difflib.SequenceMatcher(None, a[:EDIT_WINDOW], b[:EDIT_WINDOW], autojunk=False).ratio() for a, b in pairs
    )
    return bool(ratios) and ratios[len(ratios) // 2] >= EDIT_RATIO


def _text_verifier(examples: Sequence[Example], kind: str) -> Verifier:
    outputs = [e.output for e in examples if isinstance(e.output, str)]
    if not outputs:
        raise ConfigError("task.verifier: text outputs expected, the examples have none")
    longest = max(len(o) for o in outputs)
    max_chars = max(2 * longest, longest + 64)
    short = longest <= SHORT_CHARS and not any("\n" in o for o in outputs)
    pattern = shape_regex([o.strip() for o in outputs]) if len(outputs) >= 3 else None
    if kind == "regex":
        if pattern is None:
            raise ConfigError("task.verifier.kind: regex, but the example outputs share no pattern")
        return Verifier("regex", casefold=False, pattern=pattern)
    if _is_edit_task(examples):  # redaction, rewriting: the exact edit, case included
        return Verifier("exact", casefold=False, max_chars=max_chars)
    if kind == "auto" and short and pattern is not None:
        return Verifier("regex", casefold=False, pattern=pattern)
    if kind == "exact" or short:
        return Verifier("exact", casefold=short, max_chars=max_chars)
    return Verifier("similar", max_chars=max_chars, threshold=SIMILAR_THRESHOLD)


def _json_verifier(examples: Sequence[Example], shape: ShapeSpec) -> Verifier:
    if shape.schema_ is not None:
        problems = schema_problems(dict(shape.schema_), "task.shape.schema")
        if problems:
            raise ConfigError("; ".join(problems))
        return Verifier("json", schema=dict(shape.schema_))
    values = []
    for e in examples:
        ok, value = parse_json_output(e.output)
        if not ok:
            raise ConfigError(f"task.verifier: JSON outputs expected, example {e.id} is not JSON")
        values.append(value)
    return Verifier("json", schema=infer_schema(values))


def synthesize(examples: Sequence[Example], shape: ShapeSpec, spec: VerifierSpec, base_dir: Path) -> Verifier:
    """The verifier for a task, from its examples (see the module doc for the modes)."""
    if spec.path is not None:
        if spec.kind not in ("auto", "python"):
            raise ConfigError(f"task.verifier: path is set but kind is {spec.kind!r} (use python or auto)")
        user = load_verifier_file(spec.path, base_dir)
        for e in examples:
            try:
                ok = user.strict(e.input, e.output, e.output)
            except Exception as exc:
                raise ConfigError(
                    f"task.verifier.path: {spec.path}: verify() raised {type(exc).__name__}: {exc} "
                    f"on example {e.id}"
                ) from None
            if not ok:
                raise ConfigError(
                    f"task.verifier.path: {spec.path}: verify() rejects example {e.id} against its own output"
                )
        return Verifier("python", user=user)
    if spec.kind == "python":
        raise ConfigError("task.verifier.kind is python but task.verifier.path is not set")
    if not examples:
        raise ConfigError("task.verifier: cannot synthesize a verifier from zero examples")
    if spec.kind == "json" or (spec.kind == "auto" and shape.output == "json"):
        return _json_verifier(examples, shape)
    if shape.output == "label" and spec.kind in ("auto", "exact"):
        labels = shape.labels or sorted({str(e.output) for e in examples})
        return Verifier("label", casefold=True, labels=tuple(labels))
    return _text_verifier(examples, spec.kind)
