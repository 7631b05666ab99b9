"""``kolmbuild eval``: re-score a .kolm file on any examples file, as a ``kolm-eval`` v1 record.

The artifact is opened (signature verified first) by the runtime, its own verifier judges each
answer, and the K-score is computed with the same formula and reference-machine model as the
build, so on the artifact's own held-out set it reproduces the build's K. The record's case
latencies and summary p50/p95 are measured wall-clock (what ``kolmbuild compare`` puts side by
side); the K-score under ``kscore`` uses the estimates.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from kolmbuild.compare.records import summarize
from kolmbuild.config.models import GatesSpec, ShapeSpec
from kolmbuild.errors import ArtifactError
from kolmbuild.evaluate.cases import Case, CaseResult, run_cases
from kolmbuild.evaluate.profile import gates_of, model_profile, section, teacher_of
from kolmbuild.evaluate.score import KScore, SizeInfo, score
from kolmbuild.progress import Progress

KIND = "kolm-eval"
VERSION = 1


@dataclass(frozen=True)
class Rescore:
    record: dict[str, Any]
    kscore: KScore


def eval_record(subject: str, examples: str, results: Sequence[CaseResult], extra: Mapping[str, Any]) -> dict[str, Any]:
    """The ``kolm-eval`` v1 record (kolmbuild/compare/records.py) of judged cases."""
    cases: list[dict[str, Any]] = []
    for r in results:
        case: dict[str, Any] = {
            "id": r.id, "input": r.input, "expected": r.expected, "output": r.output,
            "passed": r.passed, "latency_ms": round(r.measured_ms, 3), "route": r.route,
        }  # fmt: skip
        if r.error:
            case["error"] = r.error
        cases.append(case)
    return {"kind": KIND, "version": VERSION, "subject": subject, "examples": examples, "cases": cases,
            "summary": summarize(cases), **extra}  # fmt: skip


def verifier_of(art: Any, where: str) -> Any:
    from kolmbuild.verifier import Verifier

    if not art.has("verifier"):
        raise ArtifactError(f"{where}: the artifact has no verifier component to judge answers with")
    try:
        doc = json.loads(art.read("verifier"))
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise ArtifactError(f"{where}: components/verifier.json is not JSON: {exc}") from exc
    return Verifier.from_json(doc)


def artifact_verifier(path: Path, pubkey: Any = None) -> Any:
    """The verifier a .kolm file ships (the file verified first), to judge other answers with."""
    from kolmbuild.artifact import open_artifact

    with open_artifact(path, verify=True, pubkey=pubkey) as art:
        return verifier_of(art, str(path))


def score_endpoint(url: str, examples_path: Path, *, model: str | None = None, artifact: Path | None = None,
                   pubkey: Any = None, timeout_s: float = 60.0, system_prompt: str | None = None) -> dict[str, Any]:
    """``kolmbuild eval --endpoint``: the ``kolm-eval`` record of an OpenAI-compatible endpoint on
    ``examples_path``, judged by ``artifact``'s verifier when given (the same judge as its own eval)."""
    from kolmbuild.compare.endpoint import check_endpoint_url, eval_endpoint

    check_endpoint_url(url)
    judge = artifact_verifier(artifact, pubkey) if artifact is not None else None
    return eval_endpoint(url, examples_path, model, judge, timeout_s=timeout_s, system_prompt=system_prompt)


def artifact_sizes(components: Mapping[str, Any]) -> dict[str, int]:
    """Shipped component sizes from the manifest (eval.json excluded, as in the build)."""
    return {name: int(c.size) for name, c in sorted(components.items()) if name != "eval"}


def rescore_artifact(
    path: Path,
    examples_path: Path,
    *,
    gates: GatesSpec | None = None,
    pubkey: Any = None,
    progress: Progress | None = None,
) -> Rescore:
    """Run ``path`` on ``examples_path`` and score it; ``gates`` None: the manifest's own gate."""
    from kolmbuild.artifact import open_artifact
    from kolmbuild.data import load_examples
    from kolmbuild.runtime import Predictor

    path, examples_path = Path(path), Path(examples_path)
    where = f"{path}: manifest.json"
    with Predictor.open(path, verify=True, pubkey=pubkey, drift=False) as predictor:
        # verified again: the verifier may embed user Python, and the file could have been swapped
        # since Predictor.open checked it
        with open_artifact(path, verify=True, pubkey=pubkey) as art:
            manifest = art.manifest
            verifier = verifier_of(art, str(path))
            sizes = artifact_sizes(art.components)
            ships_base = art.has("base_gguf")
            manifest_cid = art.manifest_cid
        task: Mapping[str, Any] = manifest["task"]
        shape = section(task, "shape", ShapeSpec, where=f"{where}: task")
        examples = load_examples(examples_path, shape)
        cases = [Case(e.id, e.input, e.output) for e in examples]
        results = run_cases(predictor.predict, verifier.check, cases, progress)
        # sizes now: files the runtime extracted go away when it closes
        base = predictor.parts.base_gguf.stat().st_size if predictor.parts.base_gguf else 0
        adapter = predictor.parts.adapter_gguf.stat().st_size if predictor.parts.adapter_gguf else 0
    weight_bytes = base + adapter
    external = 0 if ships_base else base
    has_index = "index" in sizes
    ks = score(
        results,
        size=SizeInfo(sizes, external),
        model=model_profile(task, weight_bytes=weight_bytes, has_index=has_index, where=f"{where}: task"),
        teacher=teacher_of(task, has_index=has_index, where=f"{where}: task"),
        gates=gates if gates is not None else gates_of(manifest.get("gates"), where=where),
    )
    extra = {
        "artifact": {"target": manifest["target"], "version": manifest["version"], "manifest": manifest_cid},
        "kscore": ks.to_json(),
    }
    return Rescore(eval_record(str(path), str(examples_path), results, extra), ks)
