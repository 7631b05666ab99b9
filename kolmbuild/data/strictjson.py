"""Parse JSON from untrusted bytes: I-JSON (RFC 7493), bounded, with messages a user can act on.

Python's ``json`` accepts what RFC 8259 leaves open and what canonical JSON (RFC 8785) cannot
write: ``NaN``/``Infinity``, ``1e400`` (read as infinity), integers too large to be exact in a
double (and past 4,300 digits it raises a bare ValueError), lone surrogates (``"\\ud800"``),
duplicate object keys (the last one silently wins) and nesting deep enough to raise
RecursionError in whatever walks the value next. Every reader of untrusted bytes (examples,
manifests, signature files) goes through :func:`loads`, which refuses all of them with one
:class:`JSONRefused` whose message says what is wrong (the caller adds the file and line).

The standard library's parser is kept (rather than a faster third-party one) because its hooks
are enough to enforce every rule above and its errors carry line and column numbers.
"""

from __future__ import annotations

import json
import re
from typing import Any

MAX_DEPTH = 100  # arrays/objects inside each other; deep enough for any real schema or example
_MAX_SAFE_INT = 2**53  # canonical JSON writes only integers a double holds exactly
_SURROGATE_ESCAPE = re.compile(r"\\u[dD][89a-fA-F]")


class JSONRefused(ValueError):
    """Not JSON, or JSON outside the interoperable subset kolmbuild reads. ``str()`` is the reason."""


def _constant(name: str) -> Any:
    raise JSONRefused(f"not JSON: {name} is not a JSON number")


def _float(text: str) -> float:
    value = float(text)
    if value in (float("inf"), float("-inf")):
        raise JSONRefused(f"number {_clip(text)} is out of range (larger than a double holds)")
    return value


def _int(text: str) -> int:
    value = int(text) if len(text.lstrip("-")) <= 16 else None
    if value is None or not -_MAX_SAFE_INT <= value <= _MAX_SAFE_INT:
        raise JSONRefused(f"integer {_clip(text)} is out of range (JSON integers are exact up to ±2^53)")
    return value


def _object(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    out = dict(pairs)
    if len(out) != len(pairs):
        seen: set[str] = set()
        for key, _ in pairs:
            if key in seen:
                raise JSONRefused(f"duplicate key {_clip(repr(key))} in an object")
            seen.add(key)
    return out


def _clip(text: str, limit: int = 40) -> str:
    return text if len(text) <= limit else text[: limit - 1] + "…"


def _check_tree(value: Any, max_depth: int, check_strings: bool) -> None:
    """Depth of nesting, and (when the text had a surrogate escape) every string and key."""
    stack: list[tuple[Any, int]] = [(value, 1)]
    while stack:
        node, depth = stack.pop()
        if isinstance(node, dict):
            if depth > max_depth:
                raise JSONRefused(f"nested deeper than {max_depth} levels")
            for k, v in node.items():
                if check_strings:
                    _check_string(k)
                stack.append((v, depth + 1))
        elif isinstance(node, list):
            if depth > max_depth:
                raise JSONRefused(f"nested deeper than {max_depth} levels")
            stack.extend((v, depth + 1) for v in node)
        elif check_strings and isinstance(node, str):
            _check_string(node)


def _check_string(s: str) -> None:
    try:
        s.encode("utf-8")
    except UnicodeEncodeError as exc:
        raise JSONRefused(f"lone surrogate \\u{ord(s[exc.start]):04x} in a string (not Unicode text)") from None


def loads(data: str | bytes, *, max_depth: int = MAX_DEPTH) -> Any:
    """The JSON value of ``data`` (UTF-8 when bytes); :class:`JSONRefused` for anything else."""
    if isinstance(data, (bytes, bytearray, memoryview)):
        try:
            text = bytes(data).decode("utf-8")
        except UnicodeDecodeError as exc:
            raise JSONRefused(f"not UTF-8 text (byte {exc.start}: {exc.reason})") from None
    else:
        text = data
    try:
        value = json.loads(
            text, parse_constant=_constant, parse_float=_float, parse_int=_int, object_pairs_hook=_object
        )
    except JSONRefused:
        raise
    except json.JSONDecodeError as exc:
        where = f"line {exc.lineno} column {exc.colno}" if "\n" in text else f"column {exc.colno}"
        raise JSONRefused(f"not JSON: {exc.msg} ({where})") from None
    except RecursionError:
        raise JSONRefused(f"nested deeper than {max_depth} levels") from None
    except ValueError as exc:  # a hook's float()/int() on text the scanner accepted
        raise JSONRefused(f"not JSON: {exc}") from None
    deep = text.count("[") + text.count("{") > max_depth
    surrogates = _SURROGATE_ESCAPE.search(text) is not None
    if deep or surrogates:
        _check_tree(value, max_depth, surrogates)
    return value
