"""Compare eval records (A/B), and score remote OpenAI-compatible endpoints into the same record."""

from __future__ import annotations

from kolmbuild.compare.diff import Change, Comparison, compare_records
from kolmbuild.compare.endpoint import eval_endpoint, read_jsonl_examples
from kolmbuild.compare.records import EvalCase, EvalRecord, load_eval, parse_eval, percentile, summarize

__all__ = [
    "Change",
    "Comparison",
    "EvalCase",
    "EvalRecord",
    "compare_records",
    "eval_endpoint",
    "load_eval",
    "parse_eval",
    "percentile",
    "read_jsonl_examples",
    "summarize",
]
