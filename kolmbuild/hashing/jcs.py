"""RFC 8785 JSON Canonicalization Scheme (JCS).

Objects: members sorted by the UTF-16 code units of their names; no insignificant whitespace;
strings escaped minimally (only ``"``, ``\\`` and controls below U+0020); numbers written as
ECMAScript's ``Number.prototype.toString`` writes them. NaN and infinities are not JSON and are
rejected, as are lone surrogates and integers outside the IEEE-754 exactly-representable range.
"""

from __future__ import annotations

import math
from typing import Any

_SHORT_ESCAPES = {'"': '\\"', "\\": "\\\\", "\b": "\\b", "\f": "\\f", "\n": "\\n", "\r": "\\r", "\t": "\\t"}
_MAX_SAFE_INT = 2**53


def canonical_json(value: Any) -> bytes:
    """Serialize ``value`` to its RFC 8785 canonical UTF-8 bytes."""
    parts: list[str] = []
    _write(value, parts)
    return "".join(parts).encode("utf-8")


def _write(value: Any, out: list[str]) -> None:
    if value is None:
        out.append("null")
    elif value is True:
        out.append("true")
    elif value is False:
        out.append("false")
    elif isinstance(value, str):
        out.append(_string(value))
    elif isinstance(value, int):
        if abs(value) > _MAX_SAFE_INT:
            raise ValueError(f"integer {value} is outside the range JSON numbers represent exactly")
        out.append(str(value))
    elif isinstance(value, float):
        out.append(_number(value))
    elif isinstance(value, dict):
        for key in value:
            if not isinstance(key, str):
                raise TypeError(f"JSON object keys must be strings, got {type(key).__name__}")
        items = sorted(value.items(), key=lambda kv: kv[0].encode("utf-16-be"))
        out.append("{")
        for i, (key, item) in enumerate(items):
            if i:
                out.append(",")
            out.append(_string(key))
            out.append(":")
            _write(item, out)
        out.append("}")
    elif isinstance(value, (list, tuple)):
        out.append("[")
        for i, item in enumerate(value):
            if i:
                out.append(",")
            _write(item, out)
        out.append("]")
    else:
        raise TypeError(f"{type(value).__name__} is not JSON-serializable")


def _string(s: str) -> str:
    buf = ['"']
    for ch in s:
        esc = _SHORT_ESCAPES.get(ch)
        if esc is not None:
            buf.append(esc)
        elif ch < " ":
            buf.append(f"\\u{ord(ch):04x}")
        elif "\ud800" <= ch <= "\udfff":
            raise ValueError("lone surrogate in string: not valid in canonical JSON")
        else:
            buf.append(ch)
    buf.append('"')
    return "".join(buf)


def _number(x: float) -> str:
    """ECMAScript Number::toString for a finite double."""
    if math.isnan(x) or math.isinf(x):
        raise ValueError("NaN and Infinity are not valid JSON numbers")
    if x == 0:
        return "0"
    sign = "-" if x < 0 else ""
    # repr() gives the shortest round-tripping digits; re-lay them out the ECMAScript way.
    r = repr(abs(x))
    mantissa, _, exp = r.partition("e")
    if "." in mantissa:
        int_part, frac = mantissa.split(".")
    else:
        int_part, frac = mantissa, ""
    digits = (int_part + frac).lstrip("0")
    lead_zeros = len(int_part + frac) - len((int_part + frac).lstrip("0"))
    # n: position of the decimal point relative to the digit string (ECMAScript's n).
    n = len(int_part) - lead_zeros + (int(exp) if exp else 0)
    digits = digits.rstrip("0") or "0"
    k = len(digits)
    if k <= n <= 21:
        return sign + digits + "0" * (n - k)
    if 0 < n <= 21:
        return sign + digits[:n] + "." + digits[n:]
    if -6 < n <= 0:
        return sign + "0." + "0" * (-n) + digits
    e = n - 1
    exp_str = ("+" if e >= 0 else "-") + str(abs(e))
    if k == 1:
        return sign + digits + "e" + exp_str
    return sign + digits[0] + "." + digits[1:] + "e" + exp_str
