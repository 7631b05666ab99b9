"""The K-score and the gate.

K = 0.40·A + 0.15·S + 0.15·L + 0.15·C + 0.15·V (docs/k-score.md). ``run_cases`` judges a
predictor's answers with a verifier; ``score`` turns judged cases, component sizes and the
reference-machine model (``estimate``) into a :class:`KScore` with the gate's verdict.
"""

from __future__ import annotations

from kolmbuild.evaluate.cases import Case, CaseResult, cases_from_rows, run_case, run_cases
from kolmbuild.evaluate.estimate import ModelProfile, TeacherPrice, call_ms, teacher_price
from kolmbuild.evaluate.gate import Shortfall, check_gate, gate_error
from kolmbuild.evaluate.score import KScore, SizeInfo, score
from kolmbuild.evaluate.terms import WEIGHTS, Terms

__all__ = [
    "WEIGHTS",
    "Case",
    "CaseResult",
    "KScore",
    "ModelProfile",
    "Shortfall",
    "SizeInfo",
    "TeacherPrice",
    "Terms",
    "call_ms",
    "cases_from_rows",
    "check_gate",
    "gate_error",
    "run_case",
    "run_cases",
    "score",
    "teacher_price",
]
