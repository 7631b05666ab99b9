"""The ingest and decompose stages, called directly with a StageContext and inside a real build."""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner

from kolmbuild.config.models import ShapeSpec, VerifierSpec
from kolmbuild.data import Example, read_jsonl, write_json, write_jsonl
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


def _ingest(tmp: Path, examples: Path, eval_: Path | None, split: dict[str, Any] | None = None,
            unlabeled: Path | None = None) -> StageContext:
    params = {"task.examples": str(examples), "task.eval": str(eval_) if eval_ else None,
              "task.unlabeled": str(unlabeled) if unlabeled else None,
              "task.split": split or {}, "task.shape": {"input": "text", "output": "text"}}
    ctx = _ctx(tmp, "ingest", params, {"task.examples": examples, "task.eval": eval_, "task.unlabeled": unlabeled})
    return ctx


def _ids(ctx: StageContext, name: str) -> list[int]:
    return [r["id"] for r in read_jsonl(ctx.output(name))]


def test_ingest_with_an_eval_file(tmp_path: Path) -> None:
    """The eval rows are the test set; the examples split into train and select, and the manifest's
    metrics say which ids played which part."""
    ctx = _ingest(tmp_path, PHI / "train.jsonl", PHI / "eval.jsonl")
    result = ingest.run(ctx)
    train, select, held = (read_jsonl(ctx.output(n)) for n in ("train.jsonl", "select.jsonl", "heldout.jsonl"))
    assert len(train) + len(select) == 200 and len(held) == 60
    assert 25 <= len(select) <= 55  # 20% of 200, by hash
    assert sorted(r["id"] for r in train + select) == list(range(200)) and [r["id"] for r in held] == list(range(200, 260))
    assert result.metrics["split"] == {"kind": "eval-file", "seed": 0, "select": 0.2}
    assert result.metrics["rows"] == {"train": len(train), "select": len(select), "test": 60}
    assert result.metrics["heldout_in_train"] == 0
    parts = result.metrics["parts"]
    assert parts["test"] == [[200, 259]]
    expanded = {name: [i for lo, hi in parts[name] for i in range(lo, hi + 1)] for name in ("train", "select")}
    assert expanded == {"train": [r["id"] for r in train], "select": [r["id"] for r in select]}
    assert json.loads(ctx.output("ingest.json").read_text()) == result.metrics
    assert not ctx.output("unlabeled.jsonl").exists()
    # canonical JSON lines: sorted keys, no spaces
    assert ctx.output("train.jsonl").read_text().splitlines()[0].startswith('{"id":')


def test_ingest_seeded_split_is_recorded_and_reproducible(tmp_path: Path) -> None:
    a = _ingest(tmp_path / "a", PHI / "train.jsonl", None, {"holdout": 0.25, "seed": 3})
    b = _ingest(tmp_path / "b", PHI / "train.jsonl", None, {"holdout": 0.25, "seed": 3})
    ra, rb = ingest.run(a), ingest.run(b)
    assert ra.metrics["split"] == {"kind": "seeded", "seed": 3, "holdout": 0.25, "select": 0.2}
    rows = ra.metrics["rows"]
    assert sum(rows.values()) == 200 and 30 <= rows["test"] <= 70 and 20 <= rows["select"] <= 60
    for name in ("train.jsonl", "select.jsonl", "heldout.jsonl", "ingest.json"):
        assert a.output(name).read_bytes() == b.output(name).read_bytes()
    assert rb.metrics == ra.metrics
    ids = [set(_ids(a, n)) for n in ("train.jsonl", "select.jsonl", "heldout.jsonl")]
    assert set.union(*ids) == set(range(200)) and sum(len(x) for x in ids) == 200  # disjoint, complete


def test_the_three_way_split_is_stable_under_adding_rows_elsewhere(tmp_path: Path) -> None:
    """Rows keep their part (by input) when other rows are added to the file, before or after."""
    lines = (PHI / "train.jsonl").read_text().splitlines()
    small = write(tmp_path / "small.jsonl", "\n".join(lines[50:150]) + "\n")
    big = write(tmp_path / "big.jsonl", "\n".join(lines[:50] + lines[50:150] + lines[150:]) + "\n")

    def parts(path: Path, sub: str) -> dict[str, str]:
        ctx = _ingest(tmp_path / sub, path, None, {"seed": 5})
        ingest.run(ctx)
        return {r["input"]: part for part in ("train", "select", "heldout")
                for r in read_jsonl(ctx.output(f"{part}.jsonl"))}  # fmt: skip

    before, after = parts(small, "s"), parts(big, "b")
    assert len(before) == 100 and len(after) == 200
    assert {text: after[text] for text in before} == before
    assert set(before.values()) == {"train", "select", "heldout"}


def test_unlabelled_inputs_are_validated_deduplicated_and_never_copy_a_gold_input(tmp_path: Path) -> None:
    gold = json.loads((PHI / "eval.jsonl").read_text().splitlines()[3])["input"]
    src = write(tmp_path / "unl.jsonl", "\n".join(json.dumps(r) for r in [
        {"input": "call 555-010-7788 today"}, {"input": "nothing here", "seen": 3}, {"input": "call 555-010-7788 today"},
        {"input": gold},
    ]) + "\n")
    ctx = _ingest(tmp_path, PHI / "train.jsonl", PHI / "eval.jsonl", unlabeled=src)
    result = ingest.run(ctx)
    rows = read_jsonl(ctx.output("unlabeled.jsonl"))
    assert rows == [{"id": 260, "input": "call 555-010-7788 today", "line": 1}, {"id": 261, "input": "nothing here", "line": 2}]
    assert result.metrics["unlabeled"] == {"inputs": 2, "duplicates": 1, "gold": 1}
    assert result.metrics["rows"]["unlabeled"] == 2 and "2 unlabelled" in result.summary
    bad = write(tmp_path / "bad.jsonl", '{"input": "a"}\n{"text": "b"}\n{"input": "c", "output": "d"}\n{"input": 5}\n')
    with pytest.raises(DataError) as info:
        ingest.run(_ingest(tmp_path / "bad", PHI / "train.jsonl", None, unlabeled=bad))
    msg = info.value.message
    assert f"{bad}:2: missing key 'input'" in msg and f"{bad}:3: has an 'output'" in msg and f"{bad}:4: 'input' must be a string" in msg
    assert list((tmp_path / "bad" / "ingest").iterdir()) == []


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


def _distill_fixture(tmp: Path, train_rows: Path) -> dict[str, Path]:
    """What distill makes of ingest's train rows without a teacher: gold labels (plus one unverified row)."""
    shape = ShapeSpec()
    train = [Example(r["id"], r["input"], r["output"]) for r in read_jsonl(train_rows)]
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
    up = {"ingest": {"select.jsonl": ing.output("select.jsonl")}, "distill": _distill_fixture(tmp_path, ing.output("train.jsonl"))}
    params = {"task.recipes": {"kinds": ["span", "lookup"]}, "task.shape": {"input": "text", "output": "text"}}
    ctx = _ctx(tmp_path, "decompose", params, upstream=up)
    result = decompose.run(ctx)
    assert result.metrics == {"kept": ["span"], "coverage": 1.0, "accuracy": 1.0, "recipe_only": True, "drafts": 0}
    report = json.loads(ctx.output("decompose.json").read_text())
    # the unverified row was left out; recipes were chosen on the select rows, never the test rows
    assert report["coverage"] == 1.0 and report["train_rows"] == len(read_jsonl(ing.output("train.jsonl")))
    assert report["pack"]["heldout"] == len(read_jsonl(ing.output("select.jsonl")))
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
