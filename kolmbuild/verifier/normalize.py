"""How outputs are compared: text normalization, canonical JSON keys, token F1."""

from __future__ import annotations

import json
import re
import unicodedata
from collections import Counter
from typing import Any

from kolmbuild.hashing.jcs import canonical_json

_SPACE = re.compile(r"\s+")
_TOKEN = re.compile(r"\w+|[^\w\s]", re.UNICODE)


def normalize_text(text: str, *, casefold: bool) -> str:
    """NFKC, trimmed, runs of whitespace as one space; case-folded when ``casefold``."""
    out = _SPACE.sub(" ", unicodedata.normalize("NFKC", text)).strip()
    return out.casefold() if casefold else out


def normalize_json(value: Any, *, casefold: bool = False) -> Any:
    """Strings inside a JSON value normalized like text; numbers 1 and 1.0 made equal."""
    if isinstance(value, str):
        return normalize_text(value, casefold=casefold)
    if isinstance(value, bool) or value is None:
        return value
    if isinstance(value, float) and value.is_integer():
        return int(value)
    if isinstance(value, dict):
        return {str(k): normalize_json(v, casefold=casefold) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [normalize_json(v, casefold=casefold) for v in value]
    return value


def json_key(value: Any) -> str:
    """A comparable key for a JSON value (RFC 8785 canonical form)."""
    try:
        return canonical_json(value).decode("utf-8")
    except (TypeError, ValueError):
        return repr(value)


def parse_json_output(output: Any) -> tuple[bool, Any]:
    """(ok, value): a JSON output may arrive as a value or as text (a model's raw answer)."""
    if isinstance(output, str):
        text = output.strip()
        if text.startswith("```"):  # a fenced block: ```json … ```
            text = text.strip("`")
            text = text[4:] if text.lower().startswith("json") else text
        try:
            return True, json.loads(text)
        except (json.JSONDecodeError, ValueError):
            return False, None
    return True, output


def token_f1(a: str, b: str) -> float:
    """F1 of the multiset overlap of word/punctuation tokens (case-folded)."""
    ta = Counter(t.casefold() for t in _TOKEN.findall(a))
    tb = Counter(t.casefold() for t in _TOKEN.findall(b))
    if not ta and not tb:
        return 1.0
    common = sum((ta & tb).values())
    if common == 0:
        return 0.0
    p = common / sum(ta.values())
    r = common / sum(tb.values())
    return 2 * p * r / (p + r)
