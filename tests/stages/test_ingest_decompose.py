"""The ingest and decompose stages, called directly with a StageContext and inside a real build."""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner

from kolmbuild.config.models import ShapeSpec, VerifierSpec
from kolmbuild.data import load_examples, read_jsonl, write_json, write_jsonl
from kolmbuild.engine.stage import StageContext
from kolmbuild.errors import DataError
from kolmbuild.recipes import RecipePack
from kolmbuild.stages import decompose, ingest
from kolmbuild.verifier import synthesize
from tests.conftest import write

REPO = Path(__file__).resolve().parents[2]
PHI = REPO / "examples" / "phi-redactor"


def _ctx(tmp: Path, stage: str, params: dict[str, Any], inputs: dict[str, Path | None] | None = None,
         upstream: dict[str, dict[str, Path]] | None = None) -> StageContext:
    out = tmp / stage
    out.mkdir(parents=True)
    return StageContext(target="t", stage=stage, key="k", project_dir=tmp, outdir=out, cache_dir=tmp / "cache",
                        params=params, inputs=inputs or {}, upstream=upstream or {}, receipts={})


def _ingest(tmp: Path, examples: Path, eval_: Path | None, split: dict[str, Any] | None = None) -> StageContext:
    params = {"task.examples": str(examples), "task.eval": str(eval_) if eval_ else None,
              "task.split": split or {}, "task.shape": {"input": "text", "output": "text"}}
    ctx = _ctx(tmp, "ingest", params, {"task.examples": examples, "task.eval": eval_})
    return ctx


def test_ingest_with_an_eval_file(tmp_path: Path) -> None:
    ctx = _ingest(tmp_path, PHI / "train.jsonl", PHI / "eval.jsonl")
    result = ingest.run(ctx)
    train, held = read_jsonl(ctx.output("train.jsonl")), read_jsonl(ctx.output("heldout.jsonl"))
    assert len(train) == 200 and len(held) == 60
    assert [r["id"] for r in train] == list(range(200)) and held[0]["id"] == 200
    assert result.metrics["split"] == {"kind": "eval-file"} and result.metrics["heldout_in_train"] == 0
    assert json.loads(ctx.output("ingest.json").read_text()) == result.metrics
    # canonical JSON lines: sorted keys, no spaces
    assert ctx.output("train.jsonl").read_text().splitlines()[0].startswith('{"id":0,"input":"Patient ')


def test_ingest_seeded_split_is_recorded_and_reproducible(tmp_path: Path) -> None:
    a = _ingest(tmp_path / "a", PHI / "train.jsonl", None, {"holdout": 0.25, "seed": 3})
    b = _ingest(tmp_path / "b", PHI / "train.jsonl", None, {"holdout": 0.25, "seed": 3})
    ra, rb = ingest.run(a), ingest.run(b)
    assert ra.metrics["split"] == {"kind": "seeded", "seed": 3, "holdout": 0.25}
    assert ra.metrics["rows"] == {"train": 150, "heldout": 50}
    for name in ("train.jsonl", "heldout.jsonl", "ingest.json"):
        assert a.output(name).read_bytes() == b.output(name).read_bytes()
    assert rb.metrics == ra.metrics


def test_ingest_rejects_bad_lines_and_writes_nothing(tmp_path: Path) -> None:
    bad = write(tmp_path / "bad.jsonl", '{"input": "a", "output": "b"}\n{"input": "a"}\nnope\n')
    ctx = _ingest(tmp_path, bad, None)
    with pytest.raises(DataError) as info:
        ingest.run(ctx)
    assert info.value.exit_code == 2
    assert f"{bad}:2: missing key 'output'" in info.value.message and f"{bad}:3: not JSON" in info.value.message
    assert list(ctx.outdir.iterdir()) == []
    one = write(tmp_path / "one.jsonl", '{"input": "a", "output": "b"}\n')
    with pytest.raises(DataError, match="nothing to hold out"):
        ingest.run(_ingest(tmp_path / "x", one, None))


def _distill_fixture(tmp: Path) -> dict[str, Path]:
    shape = ShapeSpec()
    train = load_examples(PHI / "train.jsonl", shape)
    verifier = synthesize(train, shape, VerifierSpec(), PHI)
    d = tmp / "distill"
    d.mkdir()
    rows = [{**e.to_row(), "source": "gold", "verified": True} for e in train]
    rows.append({"id": 999, "input": "unverified 123-45-6789", "output": "garbage", "source": "teacher", "verified": False})
    write_jsonl(d / "labels.jsonl", rows)
    write_json(d / "verifier.json", verifier.to_json())
    return {"labels.jsonl": d / "labels.jsonl", "verifier.json": d / "verifier.json"}


def test_decompose_learns_a_recipe_only_pack(tmp_path: Path) -> None:
    ing = _ingest(tmp_path, PHI / "train.jsonl", PHI / "eval.jsonl")
    ingest.run(ing)
    up = {"ingest": {"heldout.jsonl": ing.output("heldout.jsonl")}, "distill": _distill_fixture(tmp_path)}
    params = {"task.recipes": {"kinds": ["span", "lookup"]}, "task.shape": {"input": "text", "output": "text"}}
    ctx = _ctx(tmp_path, "decompose", params, upstream=up)
    result = decompose.run(ctx)
    assert result.metrics == {"kept": ["span"], "coverage": 1.0, "accuracy": 1.0, "recipe_only": True, "drafts": 0}
    report = json.loads(ctx.output("decompose.json").read_text())
    assert report["coverage"] == 1.0 and report["train_rows"] == 200  # the unverified row was left out
    pack = RecipePack.from_json(json.loads(ctx.output("recipes.json").read_text()))
    assert pack.answer("SSN 078-05-1120, born 1/2/1961") == "SSN [SSN], born [DATE]"
    assert "span" in result.summary and "100%" in result.summary


def test_decompose_needs_its_upstream(tmp_path: Path) -> None:
    from kolmbuild.errors import BuildFailed

    params = {"task.recipes": {}, "task.shape": {}}
    with pytest.raises(BuildFailed, match="verifier.json"):
        decompose.run(_ctx(tmp_path, "decompose", params))


def test_phi_redactor_builds_through_the_engine(tmp_path: Path) -> None:
    """ingest → recall → distill → decompose with the built-in rules, twice: the second is a no-op."""
    root = tmp_path / "proj"
    (root / "data").mkdir(parents=True)
    shutil.copy(PHI / "train.jsonl", root / "data/train.jsonl")
    shutil.copy(PHI / "eval.jsonl", root / "data/eval.jsonl")
    write(root / "kolmfile.yaml", """
        version: 1
        pipeline: [ingest, recall, distill, decompose]
        defaults:
          backend: local-cpu
        targets:
          phi:
            task: phi
    """)
    task = (REPO / "conf/task/phi-redactor.yaml").read_text()
    task = task.replace("examples/phi-redactor/", "data/")
    write(root / "conf/task/phi.yaml", task)
    from kolmbuild.cli.main import cli

    first = CliRunner().invoke(cli, ["-C", str(root)], catch_exceptions=False)
    assert first.exit_code == 0, first.output
    assert "decompose  ran" in first.output
    status = CliRunner().invoke(cli, ["-C", str(root), "status", "--json"], catch_exceptions=False)
    outputs = next(s["outputs"] for s in json.loads(status.output) if s["stage"] == "decompose")
    from kolmbuild.engine.store import Store

    store = Store(root / "cache")
    report = json.loads(store.path_of(outputs["decompose.json"]).read_text())
    assert report["coverage"] == 1.0 and report["accuracy"] == 1.0 and report["recipe_only"] is True
    pack = RecipePack.from_json(json.loads(store.path_of(outputs["recipes.json"]).read_text()))
    assert pack.answer("Reach me at 555.201.3344 or x@y.org.") == "Reach me at [PHONE] or [EMAIL]."
    again = CliRunner().invoke(cli, ["-C", str(root)], catch_exceptions=False)
    assert again.exit_code == 0 and "ran in" not in again.output


def test_phi_redactor_compiles_to_a_recipe_only_artifact_that_generalizes(tmp_path: Path) -> None:
    """The root example end to end (every stage, no teacher, no model): a small signed artifact
    whose answers on sentences from another generator seed are all right."""
    import importlib.util

    root = tmp_path / "proj"
    (root / "examples").mkdir(parents=True)
    shutil.copytree(PHI, root / "examples/phi-redactor")
    shutil.copy(REPO / "kolmfile.yaml", root / "kolmfile.yaml")
    write(root / "conf/task/phi-redactor.yaml", (REPO / "conf/task/phi-redactor.yaml").read_text())
    from kolmbuild.cli.main import cli

    res = CliRunner().invoke(cli, ["-C", str(root)], catch_exceptions=False)
    assert res.exit_code == 0, res.output
    artifact = root / "artifacts/phi-redactor-0.1.0.kolm"
    assert artifact.stat().st_size <= 30 * 1024
    spec = importlib.util.spec_from_file_location("phi_gen", PHI / "generate.py")
    assert spec is not None and spec.loader is not None
    gen = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(gen)
    seen = {json.loads(line)["input"] for line in (PHI / "train.jsonl").read_text().splitlines()}
    fresh = [r for r in gen.generate(seed=777, n=300) if r["input"] not in seen]
    from kolmbuild.runtime.predictor import Predictor

    predictor = Predictor.open(artifact)  # verifies the signature first
    got = [p.output for p in predictor.predict_batch([r["input"] for r in fresh])]
    assert got == [r["output"] for r in fresh]
    assert {p.route for p in predictor.predict_batch([fresh[0]["input"]])} == {"recipe"}


def test_a_bad_examples_file_stops_the_build_with_exit_2(tmp_path: Path) -> None:
    root = tmp_path / "proj"
    write(root / "kolmfile.yaml", """
        version: 1
        pipeline: [ingest]
        defaults:
          backend: local-cpu
        targets:
          t:
            task: t
    """)
    write(root / "conf/task/t.yaml", "name: t\nexamples: data/train.jsonl\n")
    write(root / "data/train.jsonl", '{"input": "a", "output": "b"}\n{"input": "c", "output": 7}\n{"input": "a", "output": "b"}\n')
    from kolmbuild.cli.main import cli

    res = CliRunner().invoke(cli, ["-C", str(root)])
    assert res.exit_code == 2
    assert "train.jsonl:2: 'output' must be a string" in res.output
    assert "train.jsonl:3: duplicate input (first seen on line 1)" in res.output
    assert "Traceback" not in res.output
