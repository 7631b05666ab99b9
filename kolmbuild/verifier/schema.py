"""JSON Schema inferred from example outputs, and a validator for the keywords we use.

Inference: objects list their properties, the keys present in every example are ``required``
and no other keys are allowed; arrays type their items; strings with few distinct repeated values
become an ``enum``, strings that share a character-class shape get a ``pattern``; integers and
numbers keep their type. The validator covers type, enum, const, properties, required,
additionalProperties, items, min/maxItems, min/maxLength, pattern, minimum/maximum,
anyOf/oneOf/allOf; other keywords are ignored, as JSON Schema says of unknown keywords.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from functools import lru_cache
from typing import Any

from kolmbuild.verifier.normalize import json_key
from kolmbuild.verifier.shape import shape_regex

ENUM_MAX = 12


def _type_of(value: Any) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, int):
        return "integer"
    if isinstance(value, float):
        return "number"
    if isinstance(value, str):
        return "string"
    if isinstance(value, list):
        return "array"
    return "object"


def infer_schema(values: Sequence[Any]) -> dict[str, Any]:
    """The tightest schema (of the kinds above) that every value in ``values`` satisfies."""
    if not values:
        return {}
    types = sorted({_type_of(v) for v in values})
    if set(types) == {"integer", "number"}:
        types = ["number"]
    if len(types) > 1:
        return {"anyOf": [infer_schema([v for v in values if _matches_type(v, t)]) for t in types]}
    kind = types[0]
    if kind == "object":
        keys: dict[str, list[Any]] = {}
        for v in values:
            for k, item in v.items():
                keys.setdefault(k, []).append(item)
        required = sorted(k for k, items in keys.items() if len(items) == len(values))
        return {
            "type": "object",
            "properties": {k: infer_schema(items) for k, items in sorted(keys.items())},
            "required": required,
            "additionalProperties": False,
        }
    if kind == "array":
        items = [item for v in values for item in v]
        schema: dict[str, Any] = {"type": "array"}
        if items:
            schema["items"] = infer_schema(items)
        return schema
    if kind == "string":
        return _string_schema(values)
    return {"type": kind}


def _string_schema(values: Sequence[str]) -> dict[str, Any]:
    distinct = sorted(set(values))
    if len(values) >= 3 * len(distinct) and len(distinct) <= ENUM_MAX:
        return {"type": "string", "enum": distinct}
    pattern = shape_regex(values) if len(values) >= 3 else None
    if pattern is not None:
        return {"type": "string", "pattern": pattern}
    return {"type": "string"}


def _matches_type(value: Any, kind: str) -> bool:
    actual = _type_of(value)
    return actual == kind or (kind == "number" and actual == "integer")


_TYPES = frozenset({"null", "boolean", "integer", "number", "string", "array", "object"})


def schema_problems(schema: Any, where: str) -> list[str]:
    """What :func:`validate` cannot use in a user's schema (a bad pattern or type, a keyword of the
    wrong JSON type), each naming its place; [] when it can be used."""
    if isinstance(schema, bool):
        return []
    if not isinstance(schema, dict):
        return [f"{where}: a schema must be a mapping or a boolean, got {_type_of(schema)}"]
    out: list[str] = []
    kind = schema.get("type")
    if kind is not None:
        kinds = kind if isinstance(kind, list) else [kind]
        bad = [k for k in kinds if not isinstance(k, str) or k not in _TYPES]
        if bad:
            out.append(f"{where}.type: {bad[0]!r} is not a JSON Schema type ({', '.join(sorted(_TYPES))})")
    if "pattern" in schema:
        try:
            _compiled(schema["pattern"])
        except (re.error, TypeError) as exc:
            out.append(f"{where}.pattern: not a regular expression: {exc}")
    for key, want in (("properties", dict), ("required", list), ("enum", list), ("allOf", list), ("anyOf", list),
                      ("oneOf", list)):  # fmt: skip
        if key in schema and not isinstance(schema[key], want):
            out.append(f"{where}.{key}: must be {'a mapping' if want is dict else 'a list'}")
    for key in ("minimum", "maximum", "minLength", "maxLength", "minItems", "maxItems"):
        if key in schema and (isinstance(schema[key], bool) or not isinstance(schema[key], (int, float))):
            out.append(f"{where}.{key}: must be a number")
    if isinstance(schema.get("properties"), dict):
        for name, sub in schema["properties"].items():
            out += schema_problems(sub, f"{where}.properties.{name}")
    extra = schema.get("additionalProperties")
    if extra is not None:
        out += schema_problems(extra, f"{where}.additionalProperties")
    if "items" in schema:
        out += schema_problems(schema["items"], f"{where}.items")
    for key in ("allOf", "anyOf", "oneOf"):
        if isinstance(schema.get(key), list):
            for i, sub in enumerate(schema[key]):
                out += schema_problems(sub, f"{where}.{key}[{i}]")
    return out


@lru_cache(maxsize=256)
def _compiled(pattern: str) -> re.Pattern[str]:
    return re.compile(pattern)


def validate(value: Any, schema: dict[str, Any] | bool, where: str = "$") -> list[str]:
    """Every violation of ``schema`` by ``value``, each naming its JSON path; [] when valid."""
    if schema is True or schema == {}:
        return []
    if schema is False:
        return [f"{where}: not allowed"]
    errors: list[str] = []
    kind = schema.get("type")
    if kind is not None:
        kinds = kind if isinstance(kind, list) else [kind]
        if not any(_matches_type(value, k) for k in kinds):
            return [f"{where}: expected {'/'.join(kinds)}, got {_type_of(value)}"]
    if "enum" in schema and json_key(value) not in {json_key(e) for e in schema["enum"]}:
        errors.append(f"{where}: {value!r} is not one of {schema['enum']}")
    if "const" in schema and json_key(value) != json_key(schema["const"]):
        errors.append(f"{where}: must be {schema['const']!r}")
    if isinstance(value, dict):
        errors += _validate_object(value, schema, where)
    elif isinstance(value, list):
        errors += _validate_array(value, schema, where)
    elif isinstance(value, str):
        errors += _validate_string(value, schema, where)
    elif isinstance(value, (int, float)) and not isinstance(value, bool):
        if "minimum" in schema and value < schema["minimum"]:
            errors.append(f"{where}: {value} < minimum {schema['minimum']}")
        if "maximum" in schema and value > schema["maximum"]:
            errors.append(f"{where}: {value} > maximum {schema['maximum']}")
    for sub in schema.get("allOf", []):
        errors += validate(value, sub, where)
    if "anyOf" in schema and not any(not validate(value, s, where) for s in schema["anyOf"]):
        errors.append(f"{where}: matches none of anyOf")
    if "oneOf" in schema and sum(not validate(value, s, where) for s in schema["oneOf"]) != 1:
        errors.append(f"{where}: must match exactly one of oneOf")
    return errors


def _validate_object(value: dict[str, Any], schema: dict[str, Any], where: str) -> list[str]:
    errors = [f"{where}: missing required field {k!r}" for k in schema.get("required", []) if k not in value]
    props = schema.get("properties", {})
    extra = schema.get("additionalProperties", True)
    for k, item in value.items():
        if k in props:
            errors += validate(item, props[k], f"{where}.{k}")
        elif extra is False:
            errors.append(f"{where}: unexpected field {k!r}")
        elif isinstance(extra, dict):
            errors += validate(item, extra, f"{where}.{k}")
    return errors


def _validate_array(value: list[Any], schema: dict[str, Any], where: str) -> list[str]:
    errors: list[str] = []
    if "minItems" in schema and len(value) < schema["minItems"]:
        errors.append(f"{where}: fewer than {schema['minItems']} items")
    if "maxItems" in schema and len(value) > schema["maxItems"]:
        errors.append(f"{where}: more than {schema['maxItems']} items")
    items = schema.get("items")
    if isinstance(items, (dict, bool)):
        for i, item in enumerate(value):
            errors += validate(item, items, f"{where}[{i}]")
    return errors


def _validate_string(value: str, schema: dict[str, Any], where: str) -> list[str]:
    errors: list[str] = []
    if "minLength" in schema and len(value) < schema["minLength"]:
        errors.append(f"{where}: shorter than {schema['minLength']}")
    if "maxLength" in schema and len(value) > schema["maxLength"]:
        errors.append(f"{where}: longer than {schema['maxLength']}")
    if "pattern" in schema and not _compiled(schema["pattern"]).search(value):
        errors.append(f"{where}: does not match {schema['pattern']}")
    return errors
