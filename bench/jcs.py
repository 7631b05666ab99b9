"""Canonical JSON (RFC 8785): ``kolmbuild.hashing.canonical_json`` (on the ``rfc8785`` package)
against the hand-written serializer it replaced, kept below as the baseline.

Usage: python bench/jcs.py [--reps 7] [--out docs/bench/jcs.json]

Documents, each serialized by both (medians, one run):

  * ``examples``: every row of examples/*/*.jsonl as one list (string-heavy, like the labels,
    splits and recipe packs the stages hash);
  * ``manifest``: the manifest of a .kolm file written here (what the artifact CID is taken of);
  * ``numbers``: an eval-like record of 20 000 seeded floats and ints.

The record says, per document, both times, the ratio new/old (below 1: faster) and whether the
bytes are identical (they must be: artifacts and stage keys are CIDs of these bytes).
"""

from __future__ import annotations

import argparse
import json
import math
import os
import random
import tempfile
from pathlib import Path
from typing import Any

from _record import emit, machine, median_time  # noqa: E402  (bench/ is sys.path[0])

REPO = Path(__file__).resolve().parents[1]


def documents(tmp: Path) -> dict[str, Any]:
    os.environ["KOLM_CONFIG_DIR"] = str(tmp / "config")  # a throwaway signing key
    from kolmbuild.artifact import open_artifact, write_artifact

    rows = [json.loads(line) for f in sorted((REPO / "examples").glob("*/*.jsonl"))
            for line in f.read_text(encoding="utf-8").splitlines() if line.strip()]
    path = tmp / "bench.kolm"
    write_artifact(path, target="bench", version="1.0.0", task={"name": "bench", "shape": {"input": "text"}},
                   components={"recipes": json.dumps({"recipes": rows[:50]}).encode(),
                               "heldout": b"".join(json.dumps(r).encode() + b"\n" for r in rows[:100])},
                   metrics={"K": 0.91234, "terms": {"A": 0.95, "S": 0.5, "L": 1.0, "C": 0.25, "V": 1.0}})
    with open_artifact(path, verify=False) as art:
        manifest = art.manifest
    rng = random.Random(8785)
    numbers = {"cases": [{"id": i, "latency_ms": rng.random() * 10 ** rng.randint(-3, 4),
                          "score": rng.random(), "n": rng.randint(-(2**40), 2**40)} for i in range(5000)]}
    return {"examples": rows, "manifest": manifest, "numbers": numbers}


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--reps", type=int, default=7)
    ap.add_argument("--out", type=Path, default=None)
    a = ap.parse_args()
    from kolmbuild.hashing import canonical_json

    record: dict[str, Any] = {"bench": "jcs", "reps": a.reps, "machine": machine()}
    with tempfile.TemporaryDirectory() as tmp:
        docs = documents(Path(tmp))
    for name, doc in docs.items():
        new, old = canonical_json(doc), handwritten(doc)
        new_s = median_time(lambda d=doc: canonical_json(d), a.reps)
        old_s = median_time(lambda d=doc: handwritten(d), a.reps)
        record[name] = {"bytes": len(new), "identical": new == old, "rfc8785_ms": round(new_s * 1e3, 3),
                        "handwritten_ms": round(old_s * 1e3, 3), "ratio": round(new_s / old_s, 3)}
    emit(record, a.out)
    return 0 if all(v["identical"] for k, v in record.items() if k in docs) else 1


# ---------------------------------------------------------------- the baseline: the serializer replaced


_SHORT_ESCAPES = {'"': '\\"', "\\": "\\\\", "\b": "\\b", "\f": "\\f", "\n": "\\n", "\r": "\\r", "\t": "\\t"}
_MAX_SAFE_INT = 2**53


def handwritten(value: Any) -> bytes:
    """The hand-written RFC 8785 serializer kolmbuild used before rfc8785 (the baseline)."""
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


if __name__ == "__main__":
    raise SystemExit(main())
