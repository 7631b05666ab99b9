"""Constrained decoding: a task's output shape (or a request's response_format) as a GBNF grammar.

* ``json_schema``: llama.cpp's JSON-schema converter (``LlamaGrammar.from_json_schema``);
* ``json``: any JSON object;
* ``choice``: exactly one of the task's labels;
* ``regex``: the whole output matches a pattern (llama.cpp's converter in raw-pattern mode).

Grammars are built as GBNF text (pure, testable without a model); :func:`to_llama_grammar`
makes a fresh ``LlamaGrammar`` per generation (grammar objects carry decoding state).
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from functools import lru_cache
from typing import Any, Literal

from kolmbuild.config.models import ShapeSpec
from kolmbuild.errors import UserInputError

ConstraintKind = Literal["none", "json", "json_schema", "choice", "regex"]


@dataclass(frozen=True)
class Constraint:
    kind: ConstraintKind = "none"
    schema: str | None = None  # canonical JSON text of the schema (hashable)
    choices: tuple[str, ...] = ()
    pattern: str | None = None

    @staticmethod
    def json_schema(schema: dict[str, Any]) -> Constraint:
        return Constraint("json_schema", schema=json.dumps(schema, sort_keys=True))

    @staticmethod
    def choice(options: Sequence[str]) -> Constraint:
        if not options:
            raise UserInputError("a label constraint needs at least one label")
        return Constraint("choice", choices=tuple(options))

    @staticmethod
    def regex(pattern: str) -> Constraint:
        return Constraint("regex", pattern=pattern)


NONE = Constraint()


def for_shape(shape: ShapeSpec, output_regex: str | None = None) -> Constraint:
    """The constraint a task's output shape implies."""
    if shape.output == "label" and shape.labels:
        return Constraint.choice(shape.labels)
    if shape.output == "json":
        return Constraint.json_schema(shape.schema_) if shape.schema_ else Constraint("json")
    if output_regex:
        return Constraint.regex(output_regex)
    return NONE


def _gbnf_literal(text: str) -> str:
    out = ['"']
    for ch in text:
        if ch in '"\\':
            out.append("\\" + ch)
        elif ch == "\n":
            out.append("\\n")
        elif ch == "\r":
            out.append("\\r")
        elif ch == "\t":
            out.append("\\t")
        elif ord(ch) < 0x20:
            out.append(f"\\x{ord(ch):02x}")
        else:
            out.append(ch)
    out.append('"')
    return "".join(out)


_CLASS_ESC = {"d": "0-9", "w": "0-9A-Za-z_", "s": "\\x20\\t\\n\\r"}
_NEG_ESC = {"D": "0-9", "W": "0-9A-Za-z_", "S": "\\x20\\t\\n\\r"}
_GBNF_ESC = set("ntr")


def normalize_regex(pattern: str) -> str:
    """Rewrite regex escapes into forms llama.cpp's GBNF parser accepts: ``\\d``/``\\w``/``\\s`` (and
    negations) become character classes; an escaped punctuation mark becomes a class (or ``\\xHH``)."""
    out: list[str] = []
    in_class = False
    i = 0
    while i < len(pattern):
        c = pattern[i]
        if c == "\\" and i + 1 < len(pattern):
            n = pattern[i + 1]
            i += 2
            if n in _CLASS_ESC:
                out.append(_CLASS_ESC[n] if in_class else f"[{_CLASS_ESC[n]}]")
            elif n in _NEG_ESC and not in_class:
                out.append(f"[^{_NEG_ESC[n]}]")
            elif n in _GBNF_ESC:
                out.append("\\" + n)
            elif n.isalnum():
                raise UserInputError(f"regex {pattern!r}: the escape \\{n} is not supported in constrained decoding")
            elif in_class or n in "]\\^-":
                hexed = f"\\x{ord(n):02x}"
                out.append(hexed if in_class else f"[{hexed}]")
            else:
                out.append(f"[{n}]")
            continue
        if c == "[" and not in_class:
            in_class = True
        elif c == "]" and in_class and out and out[-1] != "[":
            in_class = False
        out.append(c)
        i += 1
    return "".join(out)


def _schema_gbnf(schema: dict[str, Any], *, raw_pattern: bool = False) -> str:
    from llama_cpp.llama_grammar import SchemaConverter

    conv = SchemaConverter(prop_order={}, allow_fetch=False, dotall=False, raw_pattern=raw_pattern)
    schema = conv.resolve_refs(schema, "schema")
    conv.visit(schema, "")
    return str(conv.format_grammar())


@lru_cache(maxsize=64)
def gbnf(c: Constraint) -> str | None:
    """GBNF text for a constraint (None: unconstrained). Raises UserInputError for a bad schema/regex."""
    if c.kind == "none":
        return None
    if c.kind == "choice":
        return "root ::= " + " | ".join(_gbnf_literal(o) for o in c.choices) + "\n"
    try:
        if c.kind == "json":
            return _schema_gbnf({"type": "object"})
        if c.kind == "json_schema":
            return _schema_gbnf(json.loads(c.schema or "{}"))
        pattern = normalize_regex(c.pattern or "")
        anchored = ("" if pattern.startswith("^") else "^") + pattern + ("" if pattern.endswith("$") else "$")
        return _schema_gbnf({"type": "string", "pattern": anchored}, raw_pattern=True)
    except (AssertionError, KeyError, ValueError, TypeError, RecursionError) as exc:
        what = "JSON schema" if c.kind.startswith("json") else f"regex {c.pattern!r}"
        raise UserInputError(f"cannot turn this {what} into a grammar: {exc}") from exc


def to_llama_grammar(c: Constraint) -> Any:
    """A fresh ``llama_cpp.LlamaGrammar`` for ``c``, or None when unconstrained."""
    text = gbnf(c)
    if text is None:
        return None
    from llama_cpp import LlamaGrammar

    return LlamaGrammar.from_string(text, verbose=False)


def from_response_format(fmt: Any) -> Constraint | None:
    """OpenAI's ``response_format`` (and llama-cpp-python's json_object+schema form) as a constraint.

    ``{"type":"text"}`` → no constraint; ``{"type":"json_object"[, "schema": …]}``;
    ``{"type":"json_schema","json_schema":{"name":…, "schema":…, "strict":…}}``.
    None means the request did not say (the task's own constraint applies).
    """
    if fmt is None:
        return None
    if not isinstance(fmt, dict) or not isinstance(fmt.get("type"), str):
        raise UserInputError("response_format: expected an object with a 'type'")
    kind = fmt["type"]
    if kind == "text":
        return NONE
    if kind == "json_object":
        schema = fmt.get("schema")
        if schema is None:
            return Constraint("json")
        if not isinstance(schema, dict):
            raise UserInputError("response_format.schema: expected a JSON schema object")
        return Constraint.json_schema(schema)
    if kind == "json_schema":
        spec = fmt.get("json_schema")
        if not isinstance(spec, dict) or not isinstance(spec.get("schema", {}), dict):
            raise UserInputError("response_format.json_schema: expected {name, schema}")
        return Constraint.json_schema(spec.get("schema") or {"type": "object"})
    raise UserInputError(f"response_format.type: {kind!r} is not one of text, json_object, json_schema")
