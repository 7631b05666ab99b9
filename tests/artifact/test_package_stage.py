"""The package stage: upstream outputs → a verified kolm/1 file; two builds give the same bytes."""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from kolmbuild.artifact import open_artifact, verify_artifact
from kolmbuild.artifact.keys import keys_dir
from kolmbuild.engine.stage import StageContext, StageReceipt
from kolmbuild.errors import ArtifactError
from kolmbuild.hashing.files import file_cid
from kolmbuild.stages import package

from .conftest import fixed_key, install_key

TASK = {"name": "phi", "version": "0.2.0", "shape": {"input": "text", "output": "text"},
        "base": {"name": "smollm2", "revision": "main", "quantize": "int8"}, "examples": "data/train.jsonl"}  # fmt: skip
BACKEND = {"name": "local-cpu", "kind": "local", "device": "cpu"}
EVAL = {"K": 0.875, "terms": {"A": 0.9, "S": 0.8, "L": 1.0, "C": 0.7, "V": 0.95}, "passed": True}


def _files(root: Path, trained: bool) -> dict[str, dict[str, Path]]:
    def put(stage: str, name: str, data: bytes) -> tuple[str, str, Path]:
        p = root / stage / name
        p.parent.mkdir(parents=True, exist_ok=True)
        p.write_bytes(data)
        return stage, name, p

    made = [
        put("ingest", "heldout.jsonl", b'{"id":0,"input":"a","output":"b"}\n'),
        put("ingest", "train.jsonl", b'{"id":1,"input":"c","output":"d"}\n'),
        put("distill", "verifier.json", b'{"kind":"exact"}'),
        put("distill", "labels.jsonl", b""),
        put("decompose", "recipes.json", b'{"recipes":[]}'),
        put("train", "train.json", json.dumps({"trained": trained, "reason": "x", "base": {
            "name": "smollm2", "sha256": "cd" * 32, "file": "SmolLM2.gguf", "extra": "dropped"}}).encode()),
        put("evaluate", "eval.json", json.dumps(EVAL).encode()),
    ]  # fmt: skip
    if trained:
        made.append(put("train", "adapter.gguf", b"GGUF" + bytes(64)))
        made.append(put("train", "adapter_model.safetensors", b"\x08\x00\x00\x00\x00\x00\x00\x00{}      "))
        made.append(put("train", "adapter_config.json", b'{"r":8}'))
        made.append(put("recall", "index.sqlite", b"SQLite format 3\x00" + bytes(100)))
    upstream: dict[str, dict[str, Path]] = {s: {} for s in ("ingest", "recall", "distill", "decompose", "train", "evaluate")}
    for stage, name, p in made:
        upstream[stage][name] = p
    return upstream


def _ctx(tmp_path: Path, trained: bool = False, evaluate_metrics: dict | None = None) -> StageContext:
    upstream = _files(tmp_path / "up", trained)
    stages = list(upstream)
    cids = {s: {n: str(file_cid(p)) for n, p in upstream[s].items()} for s in stages}
    receipts = {
        s: StageReceipt(s, 1, f"bkey{s}", cids[s], {"stage": s}, duration_s=12.5)
        for s in reversed(stages)  # insertion order must not matter
    }
    if evaluate_metrics is not None:
        receipts["evaluate"] = StageReceipt("evaluate", 1, "bkeyevaluate", cids["evaluate"], evaluate_metrics)
    receipts["unrelated"] = StageReceipt("unrelated", 1, "bkeyu", {}, {})  # not upstream: left out
    out = tmp_path / "out"
    out.mkdir()
    return StageContext(
        target="phi", stage="package", key="bkeypackage", project_dir=tmp_path, outdir=out,
        cache_dir=tmp_path / "cache",
        params={"target": "phi", "task": TASK, "gates": {"K_min": 0.7}, "backend": BACKEND, "budget": {"usd": None}},
        inputs={}, upstream=upstream, receipts=receipts,
    )  # fmt: skip


def test_package_gathers_upstream_outputs_into_a_verified_artifact(tmp_path: Path) -> None:
    install_key(fixed_key())
    ctx = _ctx(tmp_path, trained=True)
    result = package.run(ctx)
    path = ctx.output("artifact.kolm")
    report = verify_artifact(path)
    assert report.ok, report.failure_text()
    with open_artifact(path) as art:
        m = art.manifest
        assert set(art.components) == {"heldout", "verifier", "recipes", "eval", "adapter_gguf", "adapter",
                                       "adapter_config", "index"}  # fmt: skip
        assert m["absent"] == ["base_gguf"]
        assert art.read("recipes") == b'{"recipes":[]}'
        assert m["target"] == "phi" and m["version"] == "0.2.0" and m["task"] == TASK
        assert m["base"] == {"name": "smollm2", "sha256": "cd" * 32, "file": "SmolLM2.gguf", "revision": "main"}
        assert m["gates"] == {"K_min": 0.7}
        assert m["metrics"] == {"K": EVAL["K"], "terms": EVAL["terms"]}
        assert [r["stage"] for r in m["receipts"]] == ["ingest", "recall", "distill", "decompose", "train", "evaluate"]
        assert all("duration_s" not in r for r in m["receipts"])  # no wall clock in the manifest
        assert m["receipts"][0]["key"] == "bkeyingest"
        assert m["receipts"][0]["outputs"] == {n: str(file_cid(p)) for n, p in ctx.upstream["ingest"].items()}
        try:
            from kolmbuild.compute import compute_block
        except ImportError:
            assert m["compute"] == {"backend": "local-cpu", "device": "cpu"}
        else:
            assert m["compute"] == compute_block(dict(BACKEND), {s: ctx.receipts[s] for s in ctx.upstream})
            assert m["compute"]["backend"] == "local-cpu"
    assert result.metrics["manifest_cid"] == report.manifest_cid
    assert result.metrics["components"] == sorted(set(art.components))


def test_a_recipe_only_build_has_no_model_and_metrics_come_from_the_receipt(tmp_path: Path) -> None:
    install_key(fixed_key())
    ctx = _ctx(tmp_path, trained=False, evaluate_metrics={"K": 0.5, "terms": {"A": 0.5}, "other": 1})
    package.run(ctx)
    with open_artifact(ctx.output("artifact.kolm")) as art:
        assert set(art.components) == {"heldout", "verifier", "recipes", "eval"}
        assert {"adapter", "adapter_gguf", "base_gguf", "index"} <= set(art.manifest["absent"])
        assert art.manifest["metrics"] == {"K": 0.5, "terms": {"A": 0.5}}


def test_the_same_inputs_package_to_the_same_bytes(tmp_path: Path) -> None:
    install_key(fixed_key())
    a, b = _ctx(tmp_path / "a"), _ctx(tmp_path / "b")
    package.run(a)
    package.run(b)
    assert a.output("artifact.kolm").read_bytes() == b.output("artifact.kolm").read_bytes()


def test_a_component_that_disagrees_with_its_receipt_is_never_packaged(tmp_path: Path) -> None:
    """The recipes file changed after decompose recorded it (a damaged cache object): the package
    stage refuses to sign, and writes nothing."""
    install_key(fixed_key())
    ctx = _ctx(tmp_path)
    ctx.upstream["decompose"]["recipes.json"].write_bytes(b'{"recipes":["tampered"]}')
    with pytest.raises(ArtifactError, match=r"component 'recipes' is b\w+, but the decompose receipt's recipes.json is"):
        package.run(ctx)
    assert not ctx.output("artifact.kolm").exists()


def test_a_malformed_train_record_fails_the_stage_by_name(tmp_path: Path) -> None:
    from kolmbuild.errors import BuildFailed

    ctx = _ctx(tmp_path)
    ctx.upstream["train"]["train.json"].write_text("{not json")
    with pytest.raises(BuildFailed, match="train.json"):
        package.run(ctx)
    assert not ctx.output("artifact.kolm").exists()


# ------------------------------------------------------------------------- full builds


def _write(path: Path, text: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(textwrap.dedent(text).lstrip())


def _shell_rule(root: Path, name: str, after: list[str], outputs: list[str], shell: str, inputs: list[str] | None = None) -> None:
    _write(root / "rules" / f"{name}.yaml", f"""
        name: {name}
        version: 1
        after: {json.dumps(after)}
        inputs: {json.dumps(inputs or [])}
        outputs: {json.dumps(outputs)}
        shell: {json.dumps(shell)}
    """)


def make_project(root: Path) -> Path:
    """The real package rule after six shell stages that write small, fixed outputs."""
    _write(root / "kolmfile.yaml", """
        pipeline: [package]
        defaults:
          backend: box
        targets:
          phi:
            task: phi
    """)
    _write(root / "conf/task/phi.yaml", "name: phi\nversion: 0.3.0\nexamples: data/train.jsonl\n")
    _write(root / "conf/backend/box.yaml", "name: box\nkind: local\n")
    _write(root / "conf/gates/default.yaml", "K_min: 0.5\n")
    _write(root / "data/train.jsonl", '{"input": "Call John at 555-0100", "output": "Call [NAME] at [PHONE]"}\n')
    o = '"$KOLM_OUT"'
    _shell_rule(root, "ingest", [], ["train.jsonl", "heldout.jsonl", "ingest.json"],
                f'cp "$KOLM_IN_TASK_EXAMPLES" {o}/train.jsonl && cp "$KOLM_IN_TASK_EXAMPLES" {o}/heldout.jsonl && echo "{{}}" > {o}/ingest.json',
                inputs=["task.examples"])  # fmt: skip
    _shell_rule(root, "recall", [], ["index.sqlite?", "recall.json"], f'echo "{{}}" > {o}/recall.json')
    _shell_rule(root, "distill", ["ingest", "recall"], ["labels.jsonl", "verifier.json", "distill.json"],
                f'cp "$KOLM_UP_INGEST_TRAIN_JSONL" {o}/labels.jsonl && echo \'{{"kind":"exact"}}\' > {o}/verifier.json && echo "{{}}" > {o}/distill.json')  # fmt: skip
    _shell_rule(root, "decompose", ["ingest", "distill"], ["recipes.json", "decompose.json"],
                f'echo \'{{"recipes":[]}}\' > {o}/recipes.json && echo "{{}}" > {o}/decompose.json')  # fmt: skip
    _shell_rule(root, "train", ["ingest", "distill", "decompose"], ["train.json"],
                f'echo \'{{"trained":false,"base":{{"name":"smollm2","sha256":"{"ab" * 32}"}}}}\' > {o}/train.json')  # fmt: skip
    _shell_rule(root, "evaluate", ["ingest", "recall", "distill", "decompose", "train"], ["eval.json"],
                f'echo \'{{"K":0.8,"terms":{{"A":1.0,"S":0.5,"L":0.9,"C":0.6,"V":1.0}}}}\' > {o}/eval.json')  # fmt: skip
    return root


def _build(root: Path, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "kolmbuild"], cwd=root, env=env, capture_output=True, text=True, timeout=180)


def test_two_full_builds_give_byte_identical_artifacts(tmp_path: Path) -> None:
    env = dict(os.environ, SOURCE_DATE_EPOCH="1750000000")
    env.pop("KOLM_SIGNING_KEY", None)
    env.pop("KOLM_SIGNING_KEY_FILE", None)
    one, two = make_project(tmp_path / "one"), make_project(tmp_path / "two")
    first = _build(one, env)
    assert first.returncode == 0, first.stderr + first.stdout
    assert first.stderr.count("created a signing key pair") == 1  # first use: said once, on stderr
    second = _build(two, env)
    assert second.returncode == 0, second.stderr + second.stdout
    assert "created a signing key pair" not in second.stderr
    a, b = one / "artifacts/phi-0.3.0.kolm", two / "artifacts/phi-0.3.0.kolm"
    assert hashlib.sha256(a.read_bytes()).hexdigest() == hashlib.sha256(b.read_bytes()).hexdigest()
    assert verify_artifact(a).ok  # signed with the key the first build created
    assert (keys_dir() / "kolm-signing.pem").is_file()
    with open_artifact(a) as art:
        m = art.manifest
        assert m["created"] == "2025-06-15T15:06:40Z"
        assert m["metrics"] == {"K": 0.8, "terms": {"A": 1.0, "S": 0.5, "L": 0.9, "C": 0.6, "V": 1.0}}
        assert m["base"] == {"name": "smollm2", "sha256": "ab" * 32}
        assert [r["stage"] for r in m["receipts"]] == ["ingest", "recall", "distill", "decompose", "train", "evaluate"]
        assert set(art.components) == {"heldout", "verifier", "recipes", "eval"}
    # a rebuild with nothing changed runs nothing and leaves the file alone
    again = _build(one, env)
    assert again.returncode == 0 and a.read_bytes() == b.read_bytes()
